"""Results CSVs regenerated from the records (timm's `results/*.csv` layout, timm's columns first).

    results/results-<set>.csv                     one per dataset that has 'ok' EvalRecords
    results/benchmark-infer-<precision>-<device>.csv  one per (precision, device) with BenchRecords

Shift sets carry `top1_diff, top5_diff, rank_diff` against their baseline, as timm's published files
do: ImageNet-val for real / v2 / sketch, and the 200-class clean baselines for r and a.
`rank_diff = baseline_rank - rank` (positive: the model climbs on the shifted set), the convention of
timm's `results/generate_csv_results.py`, checked against the published rows in tests/test_results.py.
Nothing here recomputes a number from a model: the records are the only input.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from vitbench.catalog import published_top1
from vitbench.data.specs import DATASETS
from vitbench.records import (
    BenchRecord,
    EvalRecord,
    StatsRecord,
    atomic_write_text,
    load_records,
)

TIMM_RESULT_COLUMNS = [
    "model", "img_size", "top1", "top1_err", "top5", "top5_err", "param_count", "crop_pct", "interpolation",
]
DIFF_COLUMNS = ["top1_diff", "top5_diff", "rank_diff"]
VITBENCH_RESULT_COLUMNS = [
    "n", "top1_ci_low", "top1_ci_high", "complete", "precision", "published_top1", "published_delta", "subset",
]
TIMM_BENCH_COLUMNS = [
    "model", "infer_img_size", "infer_samples_per_sec", "infer_step_time", "infer_batch_size",
    "param_count", "infer_gmacs", "infer_macts",
]
VITBENCH_BENCH_COLUMNS = [
    "gmacs_no_attn", "macts_no_attn", "peak_memory_mb", "latency_ms_bs1", "samples_per_sec_min", "samples_per_sec_max",
    "precision", "compile", "channels_last", "device_name", "torch_version", "checkpoint",
]



def _r(x: float | None, nd: int) -> float:
    return float("nan") if x is None else round(float(x), nd)


# ---------------------------------------------------------------------------- record lookups

def eval_records(results_dir: Path, dataset: str | None = None, status: str | None = "ok") -> list[EvalRecord]:
    """EvalRecords (optionally of one dataset / status), in path order."""
    return [
        r for r in load_records(results_dir, "eval")
        if (dataset is None or r.dataset == dataset) and (status is None or r.status == status)
    ]


def stats_by_checkpoint(results_dir: Path) -> dict[str, StatsRecord]:
    return {s.checkpoint: s for s in load_records(results_dir, "stats")}


def bench_records(results_dir: Path) -> list[BenchRecord]:
    return load_records(results_dir, "bench")


def param_count_m(stats: StatsRecord | None) -> float:
    """Parameters in millions, 2 decimals (timm's `param_count`)."""
    return _r(stats.param_count / 1e6, 2) if stats is not None else float("nan")


# ---------------------------------------------------------------------------- results

def _published_top1(dataset: str, checkpoint: str) -> float:
    top1 = published_top1(dataset, checkpoint)
    return float("nan") if top1 is None else top1


def _base_frame(results_dir: Path, dataset: str, stats: dict[str, StatsRecord]) -> pd.DataFrame:
    """One row per (checkpoint, precision) of the 'ok' records, ranked by top1 (ties by name)."""
    rows = []
    for rec in eval_records(results_dir, dataset):
        dc = rec.data_config or {}
        top1, top5 = _r(rec.top1, 3), _r(rec.top5, 3)
        ci = rec.top1_ci or (None, None)
        published = _published_top1(dataset, rec.checkpoint)
        rows.append({
            "model": rec.checkpoint,
            "img_size": rec.img_size,
            "top1": top1,
            "top1_err": _r(100.0 - top1, 3),
            "top5": top5,
            "top5_err": _r(100.0 - top5, 3),
            "param_count": param_count_m(stats.get(rec.checkpoint)),
            "crop_pct": dc.get("crop_pct"),
            "interpolation": dc.get("interpolation"),
            "n": rec.n_scored if rec.n_scored is not None else rec.n_images,
            "top1_ci_low": _r(ci[0], 3),
            "top1_ci_high": _r(ci[1], 3),
            "complete": bool(rec.complete),
            "precision": rec.precision,
            "published_top1": published,
            # a subset is not compared with a full-set figure (EvalRecord.comparable_to_published)
            "published_delta": _r(top1 - published, 3)
            if not math.isnan(published) and rec.comparable_to_published else float("nan"),
            "subset": rec.subset_label or "",
        })
    cols = TIMM_RESULT_COLUMNS + VITBENCH_RESULT_COLUMNS
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows, columns=cols)
    df = df.sort_values(["top1", "model", "precision"], ascending=[False, True, True], kind="mergesort")
    return df.reset_index(drop=True)


def add_diffs(df: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """top1_diff / top5_diff / rank_diff of `df` against `base`, both ranked frames (row order = rank).

    Rows are matched on (model, precision); rank_diff = base rank - rank (timm's convention), so a
    model that climbs on the shifted set gets a positive number. Unmatched rows get NaN.
    """
    key = list(zip(base["model"], base["precision"]))
    base_rank = {k: i for i, k in enumerate(key)}
    base_top1 = dict(zip(key, base["top1"]))
    base_top5 = dict(zip(key, base["top5"]))
    t1, t5, rd = [], [], []
    for rank, k in enumerate(zip(df["model"], df["precision"])):
        if k in base_rank:
            t1.append(_r(df["top1"].iat[rank] - base_top1[k], 3))
            t5.append(_r(df["top5"].iat[rank] - base_top5[k], 3))
            rd.append(base_rank[k] - rank)
        else:
            t1.append(float("nan"))
            t5.append(float("nan"))
            rd.append(pd.NA)
    out = df.copy()
    out["top1_diff"] = t1
    out["top5_diff"] = t5
    out["rank_diff"] = pd.array(rd, dtype="Int64")
    return out


def results_frame(results_dir: Path, dataset: str) -> pd.DataFrame:
    """timm-style results table for one vitbench dataset name, built from its 'ok' EvalRecords."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    stats = stats_by_checkpoint(results_dir)
    df = _base_frame(results_dir, dataset, stats)
    baseline = DATASETS[dataset].baseline
    if baseline:
        df = add_diffs(df, _base_frame(results_dir, baseline, stats))
        return df[TIMM_RESULT_COLUMNS + DIFF_COLUMNS + VITBENCH_RESULT_COLUMNS]
    return df


def _to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


def write_results_csvs(results_dir: Path) -> list[Path]:
    """results/<timm file name>.csv for every dataset that has 'ok' records; atomic writes."""
    results_dir = Path(results_dir)
    present = {r.dataset for r in eval_records(results_dir)}
    written = []
    for dataset, spec in DATASETS.items():
        if dataset not in present:
            continue
        path = results_dir / f"{spec.csv}.csv"
        atomic_write_text(path, _to_csv(results_frame(results_dir, dataset)))
        written.append(path)
    return written


# ---------------------------------------------------------------------------- benchmarks

def benchmark_frame(results_dir: Path, precision: str, device: str) -> pd.DataFrame:
    """timm-style inference benchmark table for one (precision, device), one row per BenchRecord.

    `model` is the architecture name (timm's benchmark CSVs); `checkpoint` tells rows of checkpoints
    sharing an architecture apart. Sorted by samples/s descending, ties by model then checkpoint.
    """
    stats = stats_by_checkpoint(results_dir)
    rows = []
    for b in bench_records(results_dir):
        if b.precision != precision or b.device != device:
            continue
        s = stats.get(b.checkpoint)
        lo, hi = b.samples_per_sec_spread or (None, None)
        prov = b.provenance
        rows.append({
            "model": b.architecture,
            "infer_img_size": b.img_size,
            "infer_samples_per_sec": _r(b.samples_per_sec, 2),
            "infer_step_time": _r(b.step_time_ms, 3),
            "infer_batch_size": b.batch_size,
            "param_count": param_count_m(s),
            "infer_gmacs": _r(s.gmacs, 2) if s else float("nan"),
            "infer_macts": _r(s.macts, 2) if s else float("nan"),
            "gmacs_no_attn": _r(s.gmacs_no_attn, 2) if s else float("nan"),
            "macts_no_attn": _r(s.macts_no_attn, 2) if s and s.macts_no_attn is not None else float("nan"),
            "peak_memory_mb": _r(b.peak_memory_mb, 1),
            "latency_ms_bs1": _r(b.latency_ms_bs1, 3),
            "samples_per_sec_min": _r(lo, 2),
            "samples_per_sec_max": _r(hi, 2),
            "precision": b.precision,
            "compile": bool(b.compile),
            "channels_last": bool(b.channels_last),
            "device_name": prov.device_name if prov else None,
            "torch_version": prov.torch_version if prov else None,
            "checkpoint": b.checkpoint,
        })
    cols = TIMM_BENCH_COLUMNS + VITBENCH_BENCH_COLUMNS
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows, columns=cols)
    df = df.sort_values(["infer_samples_per_sec", "model", "checkpoint"], ascending=[False, True, True],
                        kind="mergesort")
    return df.reset_index(drop=True)


def bench_groups(results_dir: Path) -> list[tuple[str, str]]:
    """The (precision, device) pairs that have BenchRecords, sorted."""
    return sorted({(b.precision, b.device) for b in bench_records(results_dir)})


def write_benchmark_csvs(results_dir: Path) -> list[Path]:
    """results/benchmark-infer-<precision>-<device>.csv per (precision, device); atomic writes."""
    results_dir = Path(results_dir)
    written = []
    for precision, device in bench_groups(results_dir):
        path = results_dir / f"benchmark-infer-{precision}-{device}.csv"
        atomic_write_text(path, _to_csv(benchmark_frame(results_dir, precision, device)))
        written.append(path)
    return written


__all__ = [
    "results_frame", "write_results_csvs", "benchmark_frame", "write_benchmark_csvs", "add_diffs",
    "TIMM_RESULT_COLUMNS", "DIFF_COLUMNS", "VITBENCH_RESULT_COLUMNS", "TIMM_BENCH_COLUMNS",
    "VITBENCH_BENCH_COLUMNS",
]
