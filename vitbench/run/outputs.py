"""Files a run writes from its records besides the CSVs and reports: per-class accuracy.

    write_per_class(store) -> list[Path]     results/per-class/<checkpoint>__<setting>.csv

One file per 'ok' ImageNet-val record, read from its predictions parquet
(`vitbench.analysis.per_class.per_class_accuracy`): one row per class the record has images of, by
class index, with columns class, wnid, name, images, correct (top-1 right), top1 and top5 (percent, 3
decimals). A file is written atomically and only when its bytes differ, so a rerun that finds nothing
new changes nothing; a file whose record is gone (or no longer 'ok') is removed, as the folder is
regenerated from the records.
"""
from __future__ import annotations

import logging
from pathlib import Path

from vitbench.catalog.registry import safe_name
from vitbench.records import RecordStore, atomic_write_text

log = logging.getLogger(__name__)

PER_CLASS = "per-class"
PER_CLASS_DATASET = "imagenet"
_DECIMALS = 3


def per_class_path(results_dir: Path, checkpoint: str, setting: str) -> Path:
    """results/per-class/<checkpoint>__<setting>.csv ('/' of a Hub id stored as '--', as records are)."""
    return Path(results_dir) / PER_CLASS / f"{safe_name(checkpoint)}__{setting}.csv"


def per_class_csv(frame) -> str:
    """The CSV text of one prediction frame's per-class accuracy."""
    from vitbench.analysis.per_class import per_class_accuracy

    table = per_class_accuracy(frame)
    table["top1"] = table["top1"].round(_DECIMALS)
    table["top5"] = table["top5"].round(_DECIMALS)
    return table.to_csv(index=False, lineterminator="\n")


def write_per_class(store: RecordStore) -> list[Path]:
    """results/per-class/<checkpoint>__<setting>.csv for every 'ok' ImageNet-val record whose predictions
    are on disk; returns the paths (each rewritten only when its bytes differ)."""
    from vitbench.eval.predictions import read_predictions

    written, kept = [], set()
    for rec in store.ok(PER_CLASS_DATASET):
        path = per_class_path(store.results_dir, rec.checkpoint, rec.setting)
        kept.add(path)
        preds = store.predictions_path(rec)
        if preds is None:
            log.warning("%s %s: no predictions file beside the record; per-class accuracy not written",
                        rec.checkpoint, rec.setting)
            continue
        frame = read_predictions(preds, columns=("target", "top5_idx"))
        atomic_write_text(path, per_class_csv(frame))
        written.append(path)
    folder = Path(store.results_dir) / PER_CLASS
    for stale in sorted(set(folder.glob("*.csv")) - kept) if folder.is_dir() else []:
        stale.unlink()          # its record is gone or no longer 'ok'
    return written


__all__ = ["PER_CLASS", "per_class_path", "per_class_csv", "write_per_class"]
