"""The results and benchmark CSVs (timm's `results/*.csv` layout, timm's columns first), written from
the record store's frames:

    results/<timm file name>.csv                       one per dataset that has 'ok' records
    results/benchmark-infer-<precision>-<device>.csv   one per (precision, device) with throughput records

A file is rewritten only when its bytes differ. Nothing here recomputes a number: the store's frames
(RecordStore.results_frame / benchmark_frame) are the only input, the results frames with the
analyses' columns (report.analyses.results_frame: effective_robustness, ece, top1_1000way).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from vitbench.data.specs import DATASETS
from vitbench.records import RecordStore, atomic_write_text
from vitbench.report.analyses import results_frame


def _write(path: Path, df: pd.DataFrame) -> Path:
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))
    return path


def write_results_csvs(store: RecordStore) -> list[Path]:
    """results/<timm file name>.csv for every dataset that has 'ok' records, in dataset order."""
    present = {r.dataset for r in store.ok()}
    return [_write(store.results_dir / f"{spec.csv}.csv", results_frame(store, ds))
            for ds, spec in DATASETS.items() if ds in present]


def write_benchmark_csvs(store: RecordStore) -> list[Path]:
    """results/benchmark-infer-<precision>-<device>.csv per (precision, device) that has records."""
    return [_write(store.results_dir / f"benchmark-infer-{precision}-{device}.csv",
                   store.benchmark_frame(precision, device)) for precision, device in store.bench_groups()]


def write_csvs(store: RecordStore) -> list[Path]:
    """Every results and benchmark CSV of the store; returns the paths written."""
    return write_results_csvs(store) + write_benchmark_csvs(store)
