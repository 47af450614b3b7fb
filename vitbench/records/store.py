"""The record store: every record under a results folder, read once and indexed.

    store = RecordStore.load(results_dir)     # one scan of results/records/
    store.best("deit_tiny_patch16_224.fb_in1k", "imagenet")   # the preferred 'ok' record (fp32 first)
    store.results_frame("v2")                  # timm's results CSV rows, with diffs against the baseline
    store.benchmark_frame("fp32", "cpu")       # timm's benchmark CSV rows
    store.put(path, record)                    # write atomically and keep the index current

A run loads its store once, answers every resume question from it and writes through it; `refresh()`
reads only the files other processes wrote since (a shared results folder under --shard). Reports
render from one store. Records of jobs that could not run here (status 'not_run', schema 1) are not
measurements: the store leaves them out.

The frames are timm's `results/*.csv` layout, timm's columns first. Shift sets carry `top1_diff,
top5_diff, rank_diff` against their baseline as timm's published files do: ImageNet-val for real / v2 /
sketch, the 200-class clean baselines for r and a. `rank_diff = baseline_rank - rank` (positive: the
model climbs on the shifted set), the convention of timm's `results/generate_csv_results.py`.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from vitbench.data.specs import DATASETS, published_top1
from vitbench.records.io import RECORDS, read_record, write_record
from vitbench.records.schema import BenchRecord, EvalRecord, StatsRecord

log = logging.getLogger(__name__)

PRECISION_PREFERENCE = ("fp32", "amp_bf16", "amp_fp16", "bf16")   # which record a report shows first

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


def _nan_if_none(x: float | None) -> float:
    return float("nan") if x is None else x


def param_count_m(stats: StatsRecord | None) -> float:
    """Parameters in millions, 2 decimals (timm's `param_count`)."""
    return _r(stats.param_count / 1e6, 2) if stats is not None else float("nan")


class RecordStore:
    """The records under one results folder, read once; lookups cost a dict access."""

    def __init__(self, results_dir: Path):
        self.results_dir = Path(results_dir)
        self._files: dict[Path, tuple[tuple[int, int], object]] = {}   # path -> ((mtime_ns, size), record)
        self._index = None

    @classmethod
    def load(cls, results_dir: Path) -> "RecordStore":
        store = cls(results_dir)
        store.refresh()
        return store

    # ------------------------------------------------------------------ reading

    def refresh(self) -> "RecordStore":
        """Read the record files that are new or changed since the last read (all, the first time);
        a corrupt one is skipped with a warning naming it (its job reruns)."""
        root = self.results_dir / RECORDS
        seen = set()
        for p in sorted(root.rglob("*.json")) if root.is_dir() else []:
            st = p.stat()
            key = (st.st_mtime_ns, st.st_size)
            seen.add(p)
            if p in self._files and self._files[p][0] == key:
                continue
            try:
                rec = read_record(p)
            except ValueError as e:
                log.warning("%s; its job reruns", e)
                self._files.pop(p, None)
                continue
            self._files[p] = (key, rec)
        for p in set(self._files) - seen:
            del self._files[p]
        self._index = None
        return self

    def get(self, path: Path):
        """The record at `path` (as read or written through this store), or None."""
        hit = self._files.get(Path(path))
        return hit[1] if hit else None

    def put(self, path: Path, record) -> None:
        """Write `record` at `path` atomically and index it."""
        write_record(path, record)
        st = Path(path).stat()
        self._files[Path(path)] = ((st.st_mtime_ns, st.st_size), record)
        self._index = None

    def forget(self, path: Path) -> None:
        """Delete the record at `path` (and its predictions file) if there is one."""
        path = Path(path)
        path.unlink(missing_ok=True)
        self._files.pop(path, None)
        self._index = None

    def _build(self):
        if self._index is None:
            order = {p: i for i, p in enumerate(PRECISION_PREFERENCE)}
            evals, stats, bench = [], {}, []
            for rec in (r for _, r in (self._files[p] for p in sorted(self._files))):
                if rec.kind == "eval" and rec.status != "not_run":
                    evals.append(rec)
                elif rec.kind == "stats":
                    stats[rec.checkpoint] = rec
                elif rec.kind == "bench":
                    bench.append(rec)
            by_job: dict[tuple[str, str], list[EvalRecord]] = {}
            # fp32 first, and at one precision the plain record before +compile / +channels_last
            for r in sorted(evals, key=lambda r: (order.get(r.precision, 99), r.precision, r.compile,
                                                  r.channels_last)):
                by_job.setdefault((r.checkpoint, r.dataset), []).append(r)
            by_ckpt: dict[str, list[BenchRecord]] = {}
            for b in bench:
                by_ckpt.setdefault(b.checkpoint, []).append(b)
            self._index = (evals, stats, bench, by_job, by_ckpt)
        return self._index

    @property
    def evals(self) -> list[EvalRecord]:
        """Every eval record ('ok' and 'failed'), in path order."""
        return self._build()[0]

    @property
    def stats(self) -> dict[str, StatsRecord]:
        return self._build()[1]

    @property
    def bench(self) -> list[BenchRecord]:
        return self._build()[2]

    @property
    def empty(self) -> bool:
        return not (self.evals or self.stats or self.bench)

    def ok(self, dataset: str | None = None) -> list[EvalRecord]:
        """The 'ok' eval records (of one dataset), in path order."""
        return [r for r in self.evals if r.status == "ok" and (dataset is None or r.dataset == dataset)]

    def evals_of(self, checkpoint: str, dataset: str) -> list[EvalRecord]:
        """The checkpoint's records on a dataset, preferred precision (fp32) first, the plain setting
        before +compile / +channels_last."""
        return self._build()[3].get((checkpoint, dataset), [])

    def bench_of(self, checkpoint: str) -> list[BenchRecord]:
        return self._build()[4].get(checkpoint, [])

    def best(self, checkpoint: str, dataset: str, precision: str | None = None) -> EvalRecord | None:
        """The 'ok' record of a checkpoint on a dataset: `precision` if given and present, else the
        preferred precision (fp32 first)."""
        ok = [r for r in self.evals_of(checkpoint, dataset) if r.status == "ok"]
        same = [r for r in ok if r.precision == precision]
        return (same or ok or [None])[0]

    def bench_groups(self) -> list[tuple[str, str]]:
        """The (precision, device) pairs that have throughput records, sorted."""
        return sorted({(b.precision, b.device) for b in self.bench})

    def predictions_path(self, rec: EvalRecord) -> Path | None:
        """The per-image predictions parquet of an 'ok' record, when it is on disk."""
        if not rec.predictions_file:
            return None
        path = self.results_dir / RECORDS / rec.dataset / rec.predictions_file
        return path if path.is_file() else None

    # ------------------------------------------------------------------ frames

    def results_frame(self, dataset: str) -> pd.DataFrame:
        """timm-style results table of one dataset from its 'ok' records, ranked by top-1; a shift
        set gets its diffs against its baseline."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
        df = _base_frame(self, dataset)
        baseline = DATASETS[dataset].baseline
        if baseline:
            df = add_diffs(df, _base_frame(self, baseline))
            return df[TIMM_RESULT_COLUMNS + DIFF_COLUMNS + VITBENCH_RESULT_COLUMNS]
        return df

    def benchmark_frame(self, precision: str, device: str) -> pd.DataFrame:
        """timm-style inference benchmark table for one (precision, device), one row per BenchRecord.

        `model` is the architecture name (timm's benchmark CSVs); `checkpoint` tells rows of checkpoints
        sharing an architecture apart. Sorted by samples/s descending, ties by model then checkpoint.
        """
        stats = self.stats
        rows = []
        for b in self.bench:
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


def _base_frame(store: "RecordStore", dataset: str) -> pd.DataFrame:
    """One row per (checkpoint, precision) of the 'ok' records, ranked by top1 (ties by name)."""
    rows = []
    stats = store.stats
    for rec in store.ok(dataset):
        dc = rec.data_config or {}
        top1, top5 = _r(rec.top1, 3), _r(rec.top5, 3)
        ci = rec.top1_ci or (None, None)
        published = _nan_if_none(published_top1(dataset, rec.checkpoint))
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
            "precision": rec.setting,          # fp32, amp_bf16+compile, ...: one row per setting
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
    key = list(zip(base["model"], base["precision"], strict=True))
    base_rank = {k: i for i, k in enumerate(key)}
    base_top1 = dict(zip(key, base["top1"], strict=True))
    base_top5 = dict(zip(key, base["top5"], strict=True))
    t1, t5, rd = [], [], []
    for rank, k in enumerate(zip(df["model"], df["precision"], strict=True)):
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
