"""`vitbench run`, the main job: plan -> jobs -> records -> CSVs and reports.

    cfg = RunConfig(checkpoints=("vit_base_patch16_224.augreg2_in21k_ft_in1k",), datasets=("imagenet",), ...)
    plan(cfg)   # [Job(checkpoint, dataset, precision, record), ...]
    run(cfg)    # 0 when nothing failed, 1 when a job failed, 2 for a bad config

Per checkpoint: its stats record and its throughput record (unless cfg.bench is off). Then the eval
jobs: a job whose record says 'ok' is skipped (so a rerun resumes where an interrupted one stopped); a
job that cannot run here (no weights, no data) gets a 'not_run' record saying why and how to fix it,
and a later successful run replaces it. The jobs that can run go to the engine (vitbench.engine),
which decodes each image once per preprocessing key and feeds every checkpoint of that key, with one
ImageNet-val forward serving imagenet, real, r-clean and a-clean; each job still gets its own record.
Every record is written atomically, under the results folder's lock; the passes in flight are the only
thing an interrupt loses. Under torchrun (vitbench.distributed) rank 0 alone writes.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from vitbench import distributed, records
from vitbench.precision import PRECISIONS
from vitbench.records import EvalRecord, WeightsInfo, eval_path, write_record

log = logging.getLogger(__name__)

DEFAULT_BATCH = {"cuda": 256, "cpu": 32}
_ROUND = 4   # decimals kept for percentages in records


@dataclass(frozen=True)
class RunConfig:
    checkpoints: tuple[str, ...]
    datasets: tuple[str, ...]                  # vitbench names; r and a add their -clean baselines
    data_root: Path | None                     # one folder per dataset (DESIGN.md), or None
    data_overrides: tuple[tuple[str, str], ...]   # (dataset, PATH | hf:ID) pairs from --data
    device: str                                # cpu | cuda | cuda:N
    precision: str                             # fp32 | amp_bf16 | amp_fp16 | bf16
    batch_size: int | None                     # None: 256 on cuda, 32 on cpu
    workers: int
    limit: int | None                          # first N images per dataset (smoke run)
    weights_dir: Path | None
    results_dir: Path
    reports_dir: Path
    force: bool                                # rerun jobs that have an 'ok' record
    skip_bad_images: bool
    bench: bool                                # also measure throughput per checkpoint
    report: bool                               # render cards/tables/plots at the end
    bench_time_budget: float | None = None     # seconds of timing per checkpoint (None: device default)
    shard: tuple[int, int] | None = None       # (i, n): run only checkpoints i, i+n, i+2n, ... (0-based)
    pass_memory_gb: float | None = None        # weights one decode pass may hold; None: half the device

    @property
    def device_type(self) -> str:
        return self.device.split(":", 1)[0]

    @property
    def eval_batch_size(self) -> int:
        return self.batch_size or DEFAULT_BATCH.get(self.device_type, 32)


@dataclass(frozen=True)
class Job:
    checkpoint: str
    dataset: str
    precision: str
    record: Path       # where its EvalRecord goes


class RunConfigError(ValueError):
    """A RunConfig that cannot run (bad device, unknown dataset, --data path that does not exist)."""


# ---------------------------------------------------------------------------- plan

def _expand(datasets) -> list[str]:
    from vitbench.data.datasets import expand_datasets

    return list(dict.fromkeys(expand_datasets(list(datasets))))


def shard_checkpoints(cfg: RunConfig) -> tuple[str, ...]:
    """The checkpoints of this run's --shard i/n: every n-th from the i-th. A checkpoint's jobs stay
    together, so one forward still serves ImageNet-val and its derived sets."""
    if cfg.shard is None:
        return cfg.checkpoints
    i, n = cfg.shard
    return cfg.checkpoints[i::n]


def plan(cfg: RunConfig) -> list[Job]:
    """One job per checkpoint x dataset (r and a expanded to their clean baseline first)."""
    datasets = _expand(cfg.datasets)
    return [Job(c, d, cfg.precision, eval_path(cfg.results_dir, d, c, cfg.precision))
            for c in shard_checkpoints(cfg) for d in datasets]


def check_config(cfg: RunConfig) -> None:
    """Raise RunConfigError with a clear message for anything that would fail every job."""
    import torch

    from vitbench.data.datasets import DATASETS
    from vitbench.data.layouts import parse_source

    if cfg.precision not in PRECISIONS:
        raise RunConfigError(f"--precision {cfg.precision!r}: expected one of {', '.join(PRECISIONS)}")
    try:
        dev = torch.device(cfg.device)
    except RuntimeError:
        raise RunConfigError(f"--device {cfg.device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise RunConfigError(f"--device {cfg.device!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunConfigError(f"--device {cfg.device}: no CUDA device is available "
                             f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu")
    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise RunConfigError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 1:
        raise RunConfigError(f"--limit must be >= 1, got {cfg.limit}")
    if cfg.workers < 0:
        raise RunConfigError(f"--workers must be >= 0, got {cfg.workers}")
    unknown = [d for d in cfg.datasets if d not in DATASETS]
    if unknown:
        raise RunConfigError(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    for name, target in cfg.data_overrides:
        if name not in DATASETS:
            raise RunConfigError(f"--data {name}={target}: unknown dataset {name!r}; "
                                 f"choose from {', '.join(DATASETS)}")
        path, _ = parse_source(target)
        if not path.startswith("hf:") and not Path(path).expanduser().exists():
            raise RunConfigError(f"--data {name}={target}: {path} does not exist "
                                 f"(give an existing folder or file, or hf:DATASET_ID; @split picks a split)")
    if cfg.data_root is not None and not Path(cfg.data_root).is_dir():
        raise RunConfigError(f"--data-root {cfg.data_root}: not a folder")
    if cfg.shard is not None and not (cfg.shard[1] >= 1 and 0 <= cfg.shard[0] < cfg.shard[1]):
        raise RunConfigError(f"--shard {cfg.shard[0]}/{cfg.shard[1]}: expected i/n with 0 <= i < n")
    if cfg.pass_memory_gb is not None and not cfg.pass_memory_gb > 0:
        raise RunConfigError(f"--pass-memory-gb must be > 0, got {cfg.pass_memory_gb}")


# ---------------------------------------------------------------------------- summary

@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # (job, [(group, reason), ...]): a job can lack both weights and data
    not_run: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)         # (what, error)
    extra: list[str] = field(default_factory=list)                      # stats/bench/CSV lines
    # (architecture, img size) -> the throughput record timed in this run, reused by its other tags
    bench_by_arch: dict[tuple[str, int], object] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"done: {len(self.done)}   skipped (had a record): {len(self.skipped)}   "
                 f"not run: {len(self.not_run)}   failed: {len(self.failed)}"]
        lines += [f"  {x}" for x in self.extra]
        if self.not_run:
            lines.append("not run (no data or weights on this machine; not a failure, exit status stays 0):")
            groups: dict[str, list[tuple[str, str]]] = {}
            for job, reasons in self.not_run:
                for group, reason in reasons:
                    groups.setdefault(group, []).append((job, reason))
            for group, items in groups.items():
                lines.append(f"  {group}: {len(items)} job(s), e.g. {items[0][0]}")
                lines += [f"    {ln}" for ln in items[0][1].splitlines()]
            lines.append("  (each not-run record holds its full reason)")
        if self.failed:
            lines.append("failed:")
            lines += [f"  {what}: {err.splitlines()[0] if err else ''}" for what, err in self.failed]
        return "\n".join(lines)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


# ---------------------------------------------------------------------------- records helpers

def _read_existing(path: Path):
    if not path.is_file():
        return None
    try:
        return records.read_record(path)
    except ValueError as e:
        log.warning("%s; the job reruns", e)
        return None


def _why_rerun(rec, cfg: RunConfig, fingerprint) -> str | None:
    """None when `rec` stands for the job: an 'ok' record made on the same data (same fingerprint)
    by a full run, or by a --limit run with this job's limit. Otherwise why the job runs again."""
    if rec is None or rec.status != "ok":
        return "no 'ok' record"
    if rec.limit is not None and rec.limit != cfg.limit:
        return f"its record is of a --limit {rec.limit} run"
    old = rec.provenance.data_fingerprint if rec.provenance else None
    if old is None:
        return "its record does not say which data it was measured on (made before data fingerprints)"
    why = old.mismatch(fingerprint)
    return f"its record was measured on other data ({why})" if why else None


_WORLD = distributed.World()     # this process's place in a torchrun group (set by run)


def _write(cfg: RunConfig, path: Path, rec) -> None:
    """Write a record under the results lock; under torchrun only rank 0 writes."""
    if _WORLD.is_main:
        with distributed.results_lock(cfg.results_dir):
            write_record(path, rec)


def _write_unless_ok(job: Job, rec: EvalRecord, cfg: RunConfig) -> None:
    """A not_run/failed record never replaces an 'ok' one (a --force rerun that fails keeps the old
    numbers), and one that says what the record on disk already says leaves it untouched (no new
    timestamp: a rerun on the same machine changes no file). Rank 0 alone writes, under the lock."""
    if not _WORLD.is_main:
        return
    with distributed.results_lock(cfg.results_dir):
        old = _read_existing(job.record)
        if old is not None and old.status == "ok":
            log.warning("%s: keeping the existing 'ok' record (%s)", job.record, rec.status)
            return
        if old is not None and records.same_but_when(old, rec):
            return
        write_record(job.record, rec)


def _base_record(job: Job, cfg: RunConfig, **kw) -> EvalRecord:
    from vitbench.catalog.registry import get_checkpoint, is_registered

    ck = get_checkpoint(job.checkpoint) if is_registered(job.checkpoint) else None
    return EvalRecord(
        checkpoint=job.checkpoint, dataset=job.dataset, precision=job.precision,
        architecture=ck.architecture if ck else None, img_size=ck.img_size if ck else None,
        batch_size=cfg.eval_batch_size, limit=cfg.limit, **{"provenance": records.provenance(cfg.device), **kw})


def _pct(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), _ROUND)


# ---------------------------------------------------------------------------- stats and bench

def _stats(name: str, cfg: RunConfig, summary: Summary) -> None:
    from vitbench import stats

    path = records.stats_path(cfg.results_dir, name)
    if stats.is_current(path) and not cfg.force:
        return
    try:
        rec = stats.stats_record(name)
    except Exception as e:  # noqa: BLE001 - one bad model must not stop the others
        log.error("stats %s failed: %s: %s", name, type(e).__name__, e)
        summary.failed.append((f"stats {name}", f"{type(e).__name__}: {e}"))
        return
    if rec.provenance is None:
        rec = replace(rec, provenance=records.provenance("cpu"))
    _write(cfg, path, rec)
    log.debug("stats %s: %.2fM params, %.2f GMACs", name, rec.param_count / 1e6, rec.gmacs)


def _bench(name: str, cfg: RunConfig, summary: Summary) -> None:
    from vitbench import bench

    path = records.bench_path(cfg.results_dir, name, cfg.precision, cfg.device_type)
    if bench.measured_here(path, cfg.device) and not cfg.force:
        return
    from vitbench.catalog.registry import get_checkpoint

    ckpt = get_checkpoint(name)
    key = (ckpt.architecture, ckpt.img_size)
    if key in summary.bench_by_arch:       # another tag of this architecture was timed in this run
        timed = summary.bench_by_arch[key]
        rec = replace(timed, checkpoint=name, measured_as=timed.measured_as or timed.checkpoint)
        _write(cfg, path, rec)
        log.debug("bench %s: the figures of %s (same architecture and input size)", name, rec.measured_as)
        return
    bcfg = bench.BenchConfig(checkpoints=(name,), device=cfg.device, precision=cfg.precision,
                             batch_size=None, compile=False, channels_last=False,   # bench defaults
                             results_dir=cfg.results_dir, force=cfg.force, time_budget_s=cfg.bench_time_budget)
    try:
        rec = bench.benchmark_checkpoint(name, bcfg)
    except Exception as e:  # noqa: BLE001
        log.error("bench %s failed: %s: %s", name, type(e).__name__, e)
        summary.failed.append((f"bench {name}", f"{type(e).__name__}: {e}"))
        return
    if rec.provenance is None:
        rec = replace(rec, provenance=records.provenance(cfg.device))
    summary.bench_by_arch[key] = rec
    _write(cfg, path, rec)
    log.debug("bench %s: %.1f img/s at batch %d on %s", name, rec.samples_per_sec, rec.batch_size, cfg.device)


# ---------------------------------------------------------------------------- eval jobs

class _ModelSlot:
    """The checkpoint's model, built on first use and shared by its datasets; a build error sticks."""

    def __init__(self, name: str, cfg: RunConfig):
        self.name, self.cfg = name, cfg
        self.resolved = None
        self.weights_reason: str | None = None
        self.model = None
        self.error: str | None = None
        self._resolved_once = False

    def resolve(self) -> str | None:
        """Find the weights once; the not-run reason when there are none."""
        from vitbench.weights import WeightsNotFoundError, resolve_weights

        if not self._resolved_once:
            self._resolved_once = True
            try:
                self.resolved = resolve_weights(self.name, weights_dir=self.cfg.weights_dir)
            except WeightsNotFoundError as e:
                self.weights_reason = str(e)
        return self.weights_reason

    def get(self):
        if self.model is None and self.error is None:
            try:
                self.model = _build_model(self.name, self.resolved)
            except Exception as e:  # noqa: BLE001 - recorded as failed for each of its jobs
                log.debug("building %s failed", self.name, exc_info=True)
                self.error = f"building the model / loading weights failed: {type(e).__name__}: {e}"
        return self.model

    def release(self) -> None:
        self.model = None
        if self.cfg.device_type == "cuda":
            import torch

            torch.cuda.empty_cache()


def _build_model(name: str, resolved):
    """The checkpoint with its resolved weights, loaded strictly. Through create_model, so a
    transformers folder is built from its own config.json and preprocessor_config.json."""
    from vitbench.models import create_model

    model = create_model(name, weights=resolved.path)
    # keep where the weights were found (weights-dir / hf-cache / hf-hub), not just 'file'
    model.weights_info = WeightsInfo(source=resolved.source, path=str(resolved.path), sha256=resolved.sha256())
    return model.eval()


def _open(job: Job, cfg: RunConfig):
    """The job's dataset, checked (layout, class set) but with no transform yet: the model's data
    config sets it, and the model is built only for jobs that can run."""
    from vitbench.data.datasets import open_dataset, resolve_override

    # --data for this dataset, else for the images it reads (real, r-clean, a-clean read imagenet)
    override = resolve_override(job.dataset, dict(cfg.data_overrides))
    return open_dataset(job.dataset, data_root=cfg.data_root, override=override,
                        limit=cfg.limit, skip_bad_images=cfg.skip_bad_images)


def _prepare_job(job: Job, slot: _ModelSlot, cfg: RunConfig, summary: Summary, opened: dict):
    """The job ready to run (an engine.ReadyJob), or None after recording why it cannot run.
    `opened` caches each dataset (or its error) for the jobs of other checkpoints."""
    from vitbench.data.datasets import DatasetLayoutError, DatasetNotFoundError
    from vitbench.engine import ReadyJob

    tag = f"{job.checkpoint} {job.dataset} {job.precision}"
    old = None if cfg.force else _read_existing(job.record)
    if job.dataset not in opened:           # list each dataset once per run (its jobs share it)
        try:
            opened[job.dataset] = _open(job, cfg)
        except Exception as e:  # noqa: BLE001 - kept, and answered for every job of the dataset
            log.debug("opening %s failed", job.dataset, exc_info=True)
            opened[job.dataset] = e
    ds = opened[job.dataset]
    if isinstance(ds, DatasetNotFoundError):
        if old is not None and old.status == "ok":      # nothing here to check it against: kept
            summary.skipped.append(f"{job.checkpoint} {job.dataset}")
            log.debug("skip %s: its data is not on this machine; the 'ok' record is kept", tag)
            return None
        weights_reason = slot.resolve()
        weights = [("no weights found", weights_reason)] if weights_reason else []
        return _not_run(job, cfg, summary, weights + [(f"dataset {job.dataset!r} not found", str(ds))])
    if isinstance(ds, DatasetLayoutError):
        return _failed(job, cfg, summary, f"dataset layout: {ds}")
    if isinstance(ds, Exception):
        return _failed(job, cfg, summary, f"reading the dataset failed: {type(ds).__name__}: {ds}")
    why = _why_rerun(old, cfg, ds.fingerprint)
    if why is None:
        summary.skipped.append(f"{job.checkpoint} {job.dataset}")
        return None
    if old is not None and old.status == "ok":
        log.info("rerun %s: %s", tag, why)
    weights_reason = slot.resolve()
    if weights_reason:
        return _not_run(job, cfg, summary, [("no weights found", weights_reason)])
    return ReadyJob(job, slot, ds)


def _on_ok(rj, model, data_config, result, cfg: RunConfig, summary: Summary) -> None:
    job, ds = rj.job, rj.dataset
    tag = f"{job.checkpoint} {job.dataset} {job.precision}"
    rec = _evaluate_job(job, model, ds, data_config, result, cfg)
    _write(cfg, job.record, rec)
    summary.done.append(tag)
    log.debug("done %s: top1 %s top5 %s (%d images scored of %d, %.1f img/s)", tag, rec.top1, rec.top5,
             rec.n_scored, rec.n_images, rec.images_per_sec)


def _error_text(e: BaseException, cfg: RunConfig) -> str:
    """One readable line for a failed job. An error raised in a DataLoader worker arrives as
    "Caught X in DataLoader worker process N. Original Traceback ..."; its last line is the error."""
    text = f"{type(e).__name__}: {e}"
    if "DataLoader worker" in text and "Original Traceback" in text:
        text = [ln for ln in str(e).splitlines() if ln.strip()][-1].strip()
        text = text.replace("vitbench.data.datasets.", "")
    if "out of memory" in text.lower():
        text += f" (lower --batch-size, now {cfg.eval_batch_size})"
    return text


def _evaluate_job(job: Job, model, ds, data_config, result, cfg: RunConfig) -> EvalRecord:
    """The job's record from its EvalResult (the engine ran it); its predictions parquet is written."""
    from vitbench.evaluate import EvalSpec, write_predictions

    spec = EvalSpec.for_dataset(ds, data_config)
    pred_path = job.record.with_suffix(".parquet")
    with distributed.results_lock(cfg.results_dir):
        write_predictions(pred_path, result, files=getattr(ds, "files", None), label_sets=spec.label_sets)
    n_expected = getattr(ds, "n_expected", None)
    complete = bool(getattr(ds, "complete", True)) and not result.skipped_files and (
        n_expected is None or result.n == n_expected)
    prov = replace(records.provenance(cfg.device), data_fingerprint=ds.fingerprint)
    return _base_record(
        job, cfg, status="ok", provenance=prov,
        data_config=data_config.to_dict(),
        weights=getattr(model, "weights_info", None),
        dataset_root=str(getattr(ds, "root", "")) or None,
        n_images=result.n, n_expected=n_expected, n_scored=result.n_scored, complete=complete,
        skipped_files=list(result.skipped_files),
        top1=_pct(result.top1), top5=_pct(result.top5),
        top1_ci=tuple(_pct(x) for x in result.top1_ci), top5_ci=tuple(_pct(x) for x in result.top5_ci),
        predictions_file=pred_path.name,
        wall_time_s=round(result.wall_time_s, 3), images_per_sec=round(result.images_per_sec, 2),
    )


def _not_run(job: Job, cfg: RunConfig, summary: Summary, reasons: list[tuple[str, str]]) -> None:
    """reasons: (group, reason) pairs; the record's reason holds them all, each saying how to fix it."""
    reason = "\n\n".join(r for _, r in reasons)   # independent reasons, a blank line apart
    _write_unless_ok(job, _base_record(job, cfg, status="not_run", reason=reason), cfg)
    summary.not_run.append((f"{job.checkpoint} {job.dataset}", reasons))
    log.debug("not run %s %s: %s", job.checkpoint, job.dataset, "; ".join(g for g, _ in reasons))


def _failed(job: Job, cfg: RunConfig, summary: Summary, error: str, tb: str | None = None) -> None:
    _write_unless_ok(job, _base_record(job, cfg, status="failed", reason=error), cfg)
    summary.failed.append((f"{job.checkpoint} {job.dataset} {job.precision}", error))
    log.error("failed %s %s: %s", job.checkpoint, job.dataset, error)
    if tb:
        log.debug(tb)


def _run_evals(jobs: list[Job], cfg: RunConfig, summary: Summary, bar) -> None:
    """Record the jobs that cannot run, and hand the others to the engine (one decode per image and
    preprocessing key). Every rank decides from the same files; a job runs only where every rank
    can run it."""
    from vitbench import engine

    slots = {name: _ModelSlot(name, cfg) for name in dict.fromkeys(j.checkpoint for j in jobs)}
    opened: dict = {}        # dataset -> EvalDataset (or why it could not be opened), shared by its jobs
    ready = [_prepare_job(job, slots[job.checkpoint], cfg, summary, opened) for job in jobs]
    everywhere = distributed.all_gather(_WORLD, [rj is not None for rj in ready])
    for k, rj in enumerate(ready):
        missing = [r for r, flags in enumerate(everywhere) if not flags[k]]
        if rj is not None and missing:
            _failed(rj.job, cfg, summary, f"the job cannot run on rank(s) {missing} (no weights or data "
                                          f"there); every rank of a torchrun group needs the same files")
            ready[k] = None
    bar.update(sum(rj is None for rj in ready))               # skipped, or recorded as not run/failed
    ready = [rj for rj in ready if rj is not None]

    def ok(rj, model, dc, result):
        _on_ok(rj, model, dc, result, cfg, summary)
        bar.update(1)

    def failed(rj, error, tb):
        _failed(rj.job, cfg, summary, error, tb=tb)
        bar.update(1)

    budget = int(cfg.pass_memory_gb * 2**30) if cfg.pass_memory_gb else None
    try:
        passes = engine.evaluate_jobs(
            ready, cfg, _WORLD,
            on_ok=ok, on_failed=failed,
            describe=lambda e: _error_text(e, cfg), budget=budget)
    finally:
        for slot in slots.values():
            slot.release()
    if passes:
        decoded = sum(p.decoded for p in passes)
        summary.extra.append(f"eval: {len(passes)} decode pass(es), {decoded} image decode(s) for "
                             f"{sum(p.jobs for p in passes)} job(s)")


# ---------------------------------------------------------------------------- outputs and entry point

def _write_outputs(cfg: RunConfig, summary: Summary) -> None:
    with distributed.results_lock(cfg.results_dir):
        _write_outputs_locked(cfg, summary)


def _write_outputs_locked(cfg: RunConfig, summary: Summary) -> None:
    from vitbench import results

    steps = [("results CSVs", lambda: results.write_results_csvs(cfg.results_dir)),
             ("benchmark CSVs", lambda: results.write_benchmark_csvs(cfg.results_dir))]
    if cfg.report:
        from vitbench import report

        steps.append(("reports", lambda: report.render_reports(cfg.results_dir, cfg.reports_dir)))
    for what, step in steps:
        try:
            written = step()
        except Exception as e:  # noqa: BLE001 - the records are safe; say what did not render
            log.debug("%s failed", what, exc_info=True)
            summary.failed.append((what, f"{type(e).__name__}: {e}"))
            continue
        summary.extra.append(f"{what}: {len(written)} file(s)")


def _progress(total: int):
    """One bar over the run's jobs (per-job lines go to -v); off when stderr is not a terminal."""
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("TQDM_DISABLE")) or not sys.stderr.isatty()
    return tqdm(total=total, desc="vitbench run", unit="job", disable=disable, dynamic_ncols=True)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """`kill` stops the run like Ctrl-C: the job in flight is dropped, temp files are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        # Workers that got the same signal die with it; the DataLoader's SIGCHLD handler would turn
        # that into a "worker killed by signal" traceback while we unwind. We are stopping anyway.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(cfg: RunConfig) -> int:
    """The main job; returns the exit status (0 ok, 1 a job failed, 2 a bad config)."""
    try:
        check_config(cfg)
    except RunConfigError as e:
        print(f"vitbench run: error: {e}", file=sys.stderr)
        return 2
    global _WORLD
    _WORLD = distributed.init(cfg.device)
    if not _WORLD.is_main:                       # rank 0 speaks for the group
        logging.getLogger("vitbench").setLevel(logging.WARNING)
    try:
        status = _run(replace(cfg, device=_WORLD.device))
        # every rank finishes before the group is torn down: gloo aborts (SIGABRT) a process that
        # destroys its group while a peer is still using it or has already left
        distributed.barrier(_WORLD)
        return status
    finally:
        distributed.teardown(_WORLD)
        _WORLD = distributed.World()


def _run(cfg: RunConfig) -> int:
    jobs = plan(cfg)
    names = shard_checkpoints(cfg)
    summary = Summary()
    t0 = time.perf_counter()
    log.info("%d checkpoint(s) x %d dataset(s) = %d job(s) on %s, %s; results in %s%s",
             len(names), len(jobs) // max(len(names), 1), len(jobs), cfg.device, cfg.precision,
             cfg.results_dir, f"; rank {_WORLD.rank} of {_WORLD.world_size}" if _WORLD.distributed else "")
    with _sigterm_as_interrupt(), _progress(len(jobs)) as bar, logging_redirect_tqdm():
        if _WORLD.is_main:
            for name in names:
                bar.set_postfix_str(f"stats/bench {name}", refresh=False)
                _stats(name, cfg, summary)
                if cfg.bench:
                    _bench(name, cfg, summary)
        bar.set_postfix_str("eval", refresh=False)
        _run_evals(jobs, cfg, summary, bar)
        if _WORLD.is_main:
            bar.set_postfix_str("CSVs and reports")
            _write_outputs(cfg, summary)
    status = distributed.broadcast(_WORLD, summary.exit_status)
    if not _WORLD.is_main:
        return status
    summary.extra.append(f"wall time {time.perf_counter() - t0:.1f} s; records under "
                         f"{Path(cfg.results_dir) / 'records'}")
    print(summary.render())
    return status
