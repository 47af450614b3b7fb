"""`vitbench run`, the main job: plan -> jobs -> records -> CSVs and reports.

    cfg = RunConfig(checkpoints=("vit_base_patch16_224.augreg2_in21k_ft_in1k",), datasets=("imagenet",))
    run(cfg)    # 0 when nothing failed, 1 when a job failed, 2 for a bad config

A `Run` holds what one run carries across its steps: the config, this process's place in a torchrun
group, the record store (read once) and the summary. Per checkpoint: its stats record and its
throughput record (unless the config turns them off). Then the eval jobs: a job whose record stands
(`resume.eval_rerun_reason`) is skipped, so a rerun resumes where an interrupted one stopped; a job
that cannot run here (no weights, no data) is counted in the summary with the reason and how to fix
it, and leaves no record (that is a fact about this machine, not a measurement). The jobs that can run
go to the engine (`vitbench.eval.engine`), which decodes each image once per preprocessing key and
feeds every checkpoint of that key; each job still gets its own record. Every record is written
atomically under the results folder's lock; under torchrun rank 0 alone writes.

A job is a checkpoint on a dataset at a setting: the precision with any +compile / +channels_last
(`RunConfig.setting`); the record is named by the setting (`records.eval_path`), so records of one
checkpoint at several settings live side by side and the resume rule finds each by its path. A record
gets its expected calibration error (`ece`) once, when it is made; A and R also their 1000-way top-1.
After the records: the CSVs, the per-class accuracy files (`run.outputs`) and the reports.
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
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from vitbench.eval import distributed
from vitbench.eval.distributed import World
from vitbench.records import (
    EvalRecord,
    Reason,
    RecordStore,
    bench_path,
    eval_path,
    provenance,
    same_but_when,
    setting_name,
)
from vitbench.records.io import stats_path
from vitbench.run import resume
from vitbench.run.config import RunConfig, RunConfigError
from vitbench.run.summary import Summary

log = logging.getLogger(__name__)

_ROUND = 4   # decimals kept for percentages in records


@dataclass(frozen=True)
class Job:
    checkpoint: str
    dataset: str
    precision: str
    record: Path                   # where its EvalRecord goes (named by `setting`)
    compile: bool = False          # evaluated torch.compile'd
    channels_last: bool = False    # evaluated with channels-last weights and inputs

    @property
    def setting(self) -> str:
        """'fp32', 'amp_bf16+compile', ...: the record's file name and its label in messages."""
        return setting_name(self.precision, self.compile, self.channels_last)


class CheckpointSource:
    """A registered checkpoint as the engine's ModelSource: its weights are found once (or why not),
    its model built on first use and shared by its datasets; a build error sticks."""

    def __init__(self, name: str, weights_dir: Path | None):
        self.name, self.weights_dir = name, weights_dir
        self._resolved, self._missing, self._model, self._error = None, None, None, None
        self._looked = False

    def missing_weights(self) -> Reason | None:
        """Why there are no weights on this machine (None when there are), asked once."""
        from vitbench.weights import WeightsNotFoundError, resolve_weights

        if not self._looked:
            self._looked = True
            try:
                self._resolved = resolve_weights(self.name, weights_dir=self.weights_dir)
            except WeightsNotFoundError as e:
                self._missing = Reason.from_error("weights", str(e))
        return self._missing

    def weights_sha256(self) -> str | None:
        """sha256 of the weight file found (cached by path, size and mtime: a rerun reads no gigabytes)."""
        return self._resolved.sha256() if self._resolved is not None else None

    def crop_key(self) -> tuple | None:
        """The key before the model is built (the registry, or a transformers folder's preprocessor
        config); None when it cannot be told. The built model's own data config has the last word."""
        from vitbench.data.config import DataConfig, resolve_data_config
        from vitbench.eval.engine import crop_key

        try:
            path = Path(self._resolved.path) if self._resolved is not None else None
            if path is not None and (path / "preprocessor_config.json").is_file():
                return crop_key(DataConfig.from_preprocessor_config(path / "preprocessor_config.json"))
            return crop_key(resolve_data_config(self.name))
        except Exception:  # noqa: BLE001 - a name the registry does not know: told once built
            return None

    def build(self):
        """The checkpoint with its resolved weights, loaded strictly (through create_model, so a
        transformers folder is built from its own config.json and preprocessor_config.json)."""
        from vitbench import models

        if self._error is not None:
            raise self._error
        if self._model is None:
            try:
                model = models.create_model(self.name, weights=self._resolved.path)
            except Exception as e:
                self._error = e
                raise
            # where the weights were found (weights-dir / hf-cache / hf-hub), not just 'file'
            model.weights_info = self._resolved.info(entry=getattr(model, "weights_entry", None))
            self._model = model.eval()
        return self._model

    def release(self) -> None:
        self._model = None


class ModuleSource:
    """A model the caller built in Python (any module mapping [B, 3, H, W] to 1000 logits) as the
    engine's ModelSource. No weights file: its records say source 'python', and the resume rule reuses
    them only when the caller vouches for the weights with a hash."""

    def __init__(self, name: str, model, data_config, weights_sha256: str | None = None):
        from vitbench.weights import WeightsInfo

        self.name, self.model = name, model
        self.model.data_config = data_config
        self.info = WeightsInfo(source="python", path=None, sha256=weights_sha256)

    def missing_weights(self) -> Reason | None:
        return None

    def weights_sha256(self) -> str | None:
        return self.info.sha256

    def crop_key(self) -> tuple | None:
        from vitbench.eval.engine import crop_key

        return crop_key(self.model.data_config)

    def build(self):
        self.model.weights_info = self.info
        return self.model.eval()

    def release(self) -> None:
        pass


class Run:
    """One `vitbench run` (or the stats/throughput part of it): config, process group, records, summary.
    `sources` gives a checkpoint its model another way than the registry (`evaluate_model`)."""

    def __init__(self, cfg: RunConfig, world: World | None = None, sources: dict | None = None):
        self.cfg = cfg
        self.sources = dict(sources or {})
        self.world = world or World(device=cfg.device)
        self.store = RecordStore.load(cfg.results_dir)
        self.summary = Summary()
        self._timed: dict[tuple[str, int], object] = {}   # (architecture, img size) -> timed in this run
        self.benched: dict[str, str] = {}   # checkpoint -> 'measured' | 'shared' | 'skipped' | 'failed'

    # ------------------------------------------------------------------ writing

    def write(self, path: Path, rec) -> None:
        """Write a record under the results lock; under torchrun only rank 0 writes."""
        if self.world.is_main:
            with distributed.results_lock(self.cfg.results_dir):
                self.store.put(path, rec)

    def _record(self, job: Job, **kw) -> EvalRecord:
        from vitbench.catalog.registry import get_checkpoint, is_registered

        ck = get_checkpoint(job.checkpoint) if is_registered(job.checkpoint) else None
        kw.setdefault("provenance", provenance(self.world.device, self.world.world_size))
        return EvalRecord(checkpoint=job.checkpoint, dataset=job.dataset, precision=job.precision,
                          compile=job.compile, channels_last=job.channels_last,
                          architecture=ck.architecture if ck else None, img_size=ck.img_size if ck else None,
                          batch_size=self.cfg.eval_batch_size, limit=self.cfg.limit, **kw)

    # ------------------------------------------------------------------ stats and throughput

    def measure_stats(self, name: str) -> None:
        from vitbench import stats

        path = stats_path(self.cfg.results_dir, name)
        if resume.stats_current(self.store.get(path)) and not self.cfg.force and name not in self.sources:
            return
        try:
            source = self.sources.get(name)
            rec = stats.measure(name) if source is None else stats.measure_model(source.model, name)
        except Exception as e:  # noqa: BLE001 - one bad model must not stop the others
            log.error("stats %s failed: %s: %s", name, type(e).__name__, e)
            self.summary.failed.append((f"stats {name}", f"{type(e).__name__}: {e}"))
            return
        self.write(path, rec)
        log.debug("stats %s: %.2fM params, %.2f GMACs", name, rec.param_count / 1e6, rec.gmacs)

    def measure_bench(self, name: str) -> None:
        """The checkpoint's throughput here; tags of one architecture at one input size share one
        timing per run (random weights: throughput is the architecture's), recorded as measured_as."""
        from vitbench import bench
        from vitbench.catalog.registry import get_checkpoint

        cfg = self.cfg
        path = bench_path(cfg.results_dir, name, cfg.precision, cfg.device_type)
        if resume.bench_measured_here(self.store.get(path), cfg.device, cfg.bench) and not cfg.force:
            self.benched[name] = "skipped"
            return
        ckpt = get_checkpoint(name)
        # a user checkpoint may differ from its architecture (model_args, a transformers config): timed alone
        key = (ckpt.architecture, ckpt.img_size, name if ckpt.lineage == "user" else "")
        if key in self._timed:
            timed = self._timed[key]
            rec = replace(timed, checkpoint=name, measured_as=timed.measured_as or timed.checkpoint)
            self.benched[name] = "shared"
            log.debug("bench %s: the figures of %s (same architecture and input size)", name, rec.measured_as)
        else:
            try:
                rec = bench.measure(name, cfg.device, cfg.precision, cfg.bench, self.world.world_size)
            except Exception as e:  # noqa: BLE001 - one failure must not stop the run
                log.error("%s: benchmark failed: %s: %s", name, type(e).__name__, e)
                self.summary.failed.append((f"bench {name}", f"{type(e).__name__}: {e}"))
                self.benched[name] = "failed"
                return
            finally:
                if cfg.device_type == "cuda":
                    bench.empty_cuda_cache()
            self._timed[key] = rec
            self.benched[name] = "measured"
            log.debug("bench %s: %.1f img/s at batch %d on %s", name, rec.samples_per_sec, rec.batch_size,
                      cfg.device)
        self.write(path, rec)

    def measure(self, bar=None) -> None:
        """Stats and throughput of this run's checkpoints (rank 0; the others wait at the eval)."""
        if not self.world.is_main:
            return
        for name in self.cfg.own_checkpoints:
            if bar is not None:
                bar.set_postfix_str(f"stats/bench {name}", refresh=False)
            # the benchmark CSV takes GMACs/activations from the stats record: throughput brings one
            if self.cfg.stats or self.cfg.bench is not None:
                self.measure_stats(name)
            if self.cfg.bench is not None and name not in self.sources:   # random weights: a registered architecture
                self.measure_bench(name)

    # ------------------------------------------------------------------ evaluation

    def plan(self) -> list[Job]:
        """One job per checkpoint x dataset (r and a expanded to their clean baseline first), at the
        run's setting, each record named by it."""
        cfg = self.cfg
        return [Job(c, d, cfg.precision, eval_path(cfg.results_dir, d, c, cfg.setting), cfg.compile, cfg.channels_last)
                for c in cfg.own_checkpoints for d in cfg.all_datasets]

    def _open(self, dataset: str):
        """The dataset, checked (layout, class set) but with no transform yet: the model's data config
        sets it, and the model is built only for jobs that can run."""
        from vitbench.data.datasets import open_dataset, resolve_override

        cfg, world = self.cfg, self.world
        override = resolve_override(dataset, dict(cfg.data_overrides))
        # under torchrun every rank opens the same datasets in the same order: local rank 0 of each
        # node downloads what the Hub has to give while the others wait at the barrier
        return open_dataset(dataset, data_root=cfg.data_root, override=override, limit=cfg.limit,
                            skip_bad_images=cfg.skip_bad_images, is_local_main=world.local_rank == 0,
                            barrier=(lambda: distributed.barrier(world)) if world.distributed else None)

    def prepare(self, job: Job, source: CheckpointSource, opened: dict):
        """The job for the engine, or None after counting why it cannot run (or that its record stands).
        `opened` keeps each dataset (or its error) for the jobs of other checkpoints."""
        from vitbench.data.datasets import DatasetLayoutError, DatasetNotFoundError
        from vitbench.eval.engine import EngineJob

        old = None if self.cfg.force else self.store.get(job.record)
        if job.dataset not in opened:           # list each dataset once per run (its jobs share it)
            try:
                opened[job.dataset] = self._open(job.dataset)
            except Exception as e:  # noqa: BLE001 - kept, and answered for every job of the dataset
                log.debug("opening %s failed", job.dataset, exc_info=True)
                opened[job.dataset] = e
        ds = opened[job.dataset]
        if isinstance(ds, DatasetNotFoundError):
            if old is not None and old.status == "ok":      # nothing here to check it against: kept
                self.summary.skipped.append(f"{job.checkpoint} {job.dataset}")
                return None
            missing = source.missing_weights()
            return self.not_run(job, ([missing] if missing else []) + [Reason.from_error("data", str(ds))])
        if isinstance(ds, DatasetLayoutError):
            return self.failed(job, f"dataset layout: {ds}")
        if isinstance(ds, Exception):
            return self.failed(job, f"reading the dataset failed: {type(ds).__name__}: {ds}")
        missing = source.missing_weights()
        if missing:
            if old is not None and old.status == "ok" and resume.eval_rerun_reason(
                    old, self.cfg.limit, ds.fingerprint, old.weights.sha256 if old.weights else None) is None:
                self.summary.skipped.append(f"{job.checkpoint} {job.dataset}")   # no weights to check it against
                return None
            return self.not_run(job, [missing])
        why = resume.eval_rerun_reason(old, self.cfg.limit, ds.fingerprint, source.weights_sha256())
        if why is None:
            self.summary.skipped.append(f"{job.checkpoint} {job.dataset}")
            return None
        if old is not None and old.status == "ok":
            log.info("rerun %s %s %s: %s", job.checkpoint, job.dataset, job.setting, why)
        return EngineJob(job, source, ds)

    def not_run(self, job: Job, reasons: list[Reason]) -> None:
        """Counted in the summary; no record (a not-run record of an older vitbench is removed)."""
        old = self.store.get(job.record)
        if old is not None and old.status == "not_run" and self.world.is_main:
            with distributed.results_lock(self.cfg.results_dir):
                self.store.forget(job.record)
        self.summary.not_run.append((job.checkpoint, job.dataset, reasons))
        log.debug("not run %s %s: %s", job.checkpoint, job.dataset, "; ".join(r.kind for r in reasons))

    def failed(self, job: Job, error: str, tb: str | None = None) -> None:
        """A 'failed' record, unless an 'ok' one is there (a --force rerun that fails keeps the old
        numbers) or the record on disk already says the same (a rerun changes no file)."""
        self.summary.failed.append((f"{job.checkpoint} {job.dataset} {job.setting}", error))
        log.error("failed %s %s: %s", job.checkpoint, job.dataset, error)
        if tb:
            log.debug(tb)
        if not self.world.is_main:
            return
        rec = self._record(job, status="failed", reasons=[Reason("error", error)])
        with distributed.results_lock(self.cfg.results_dir):
            old = self.store.get(job.record)
            if old is not None and old.status == "ok":
                log.warning("%s: keeping the existing 'ok' record (failed)", job.record)
            elif old is None or not same_but_when(old, rec):
                self.store.put(job.record, rec)

    def succeeded(self, job: Job, outcome) -> None:
        """The job's record and its predictions parquet, from the engine's result."""
        from vitbench.eval.predictions import write_predictions
        from vitbench.eval.scoring import EvalSpec, top1_confidence

        ds, result, model = outcome.job.dataset, outcome.result, outcome.model
        data_config = model.data_config
        spec = EvalSpec.for_dataset(ds, data_config)
        pred_path = job.record.with_suffix(".parquet")
        with distributed.results_lock(self.cfg.results_dir):
            write_predictions(pred_path, result, files=ds.files, label_sets=spec.label_sets)
        complete = bool(ds.complete) and not result.skipped_files and result.n == ds.n_expected
        prov = replace(provenance(self.world.device, self.world.world_size), data_fingerprint=ds.fingerprint)
        rec = self._record(
            job, status="ok", provenance=prov, data_config=data_config.to_dict(),
            weights=getattr(model, "weights_info", None), dataset_root=str(ds.root) or None,
            n_images=result.n, n_expected=ds.n_expected, n_scored=result.n_scored, complete=complete,
            skipped_files=list(result.skipped_files), top1=_pct(result.top1), top5=_pct(result.top5),
            top1_ci=tuple(_pct(x) for x in result.top1_ci), top5_ci=tuple(_pct(x) for x in result.top5_ci),
            top1_1000way=_pct(result.top1_1000way), ece=_ece(*top1_confidence(result.predictions, spec.label_sets)),
            predictions_file=pred_path.name, wall_time_s=round(result.wall_time_s, 3),
            images_per_sec=round(result.images_per_sec, 2))
        self.write(job.record, rec)
        self.summary.done.append(f"{job.checkpoint} {job.dataset} {job.setting}")
        log.debug("done %s %s: top1 %s top5 %s (%d images scored of %d, %.1f img/s)", job.checkpoint,
                  job.dataset, rec.top1, rec.top5, rec.n_scored, rec.n_images, rec.images_per_sec)

    def evaluate(self, bar) -> None:
        """Count the jobs that cannot run, and hand the others to the engine. Every rank decides from
        the same files; a job runs only where every rank can run it."""
        from vitbench.eval.engine import Engine, PassSettings

        cfg, jobs = self.cfg, self.plan()
        sources = {n: self.sources.get(n) or CheckpointSource(n, cfg.weights_dir)
                   for n in dict.fromkeys(j.checkpoint for j in jobs)}
        opened: dict = {}
        ready = [self.prepare(job, sources[job.checkpoint], opened) for job in jobs]
        everywhere = distributed.all_gather(self.world, [rj is not None for rj in ready])
        for k, rj in enumerate(ready):
            missing = [r for r, flags in enumerate(everywhere) if not flags[k]]
            if rj is not None and missing:
                self.failed(rj.ref, f"the job cannot run on rank(s) {missing} (no weights or data there); "
                                    f"every rank of a torchrun group needs the same files")
                ready[k] = None
        bar.update(sum(rj is None for rj in ready))               # skipped, not run or failed
        budget = int(cfg.pass_memory_gb * 2**30) if cfg.pass_memory_gb else None
        engine = Engine(PassSettings(precision=cfg.precision, batch_size=cfg.eval_batch_size,
                                     workers=cfg.workers, world=self.world, budget=budget,
                                     compile=cfg.compile, channels_last=cfg.channels_last))
        try:
            for outcome in engine.run([rj for rj in ready if rj is not None]):
                if outcome.error is None:
                    self.succeeded(outcome.job.ref, outcome)
                else:
                    self.failed(outcome.job.ref, outcome.error, outcome.traceback)
                bar.update(1)
        finally:
            for source in sources.values():
                source.release()
        if engine.passes:
            decoded = sum(p.decoded for p in engine.passes)
            self.summary.extra.append(f"eval: {len(engine.passes)} decode pass(es), {decoded} image decode(s) "
                                      f"for {sum(p.jobs for p in engine.passes)} job(s)")

    # ------------------------------------------------------------------ outputs

    def write_outputs(self) -> None:
        """CSVs, per-class accuracy files (and the reports) from the store, re-read for what other
        processes wrote meanwhile."""
        from vitbench import report
        from vitbench.run.outputs import write_per_class

        with distributed.results_lock(self.cfg.results_dir):
            self.store.refresh()
            steps = [("CSVs", lambda: report.write_csvs(self.store)),
                     ("per-class CSVs", lambda: write_per_class(self.store))]
            if self.cfg.report:
                steps.append(("reports", lambda: report.render_reports(self.store, self.cfg.reports)))
            for what, step in steps:
                try:
                    written = step()
                except Exception as e:  # noqa: BLE001 - the records are safe; say what did not render
                    log.debug("%s failed", what, exc_info=True)
                    self.summary.failed.append((what, f"{type(e).__name__}: {e}"))
                    continue
                self.summary.extra.append(f"{what}: {len(written)} file(s)")

    def execute(self) -> int:
        """Measure, evaluate, write the outputs; the exit status (0, or 1 when something failed)."""
        cfg, world = self.cfg, self.world
        jobs = len(cfg.own_checkpoints) * len(cfg.all_datasets)
        t0 = time.perf_counter()
        log.info("%d checkpoint(s) x %d dataset(s) = %d job(s) on %s, %s; results in %s%s",
                 len(cfg.own_checkpoints), len(cfg.all_datasets), jobs, world.device, cfg.setting,
                 cfg.results_dir, f"; rank {world.rank} of {world.world_size}" if world.distributed else "")
        with _sigterm_as_interrupt(), _progress(jobs) as bar, logging_redirect_tqdm():
            self.measure(bar)
            if jobs:
                bar.set_postfix_str("eval", refresh=False)
                self.evaluate(bar)
            if world.is_main:
                bar.set_postfix_str("CSVs and reports")
                self.write_outputs()
        status = distributed.broadcast(world, self.summary.exit_status)
        if world.is_main:
            self.summary.extra.append(f"wall time {time.perf_counter() - t0:.1f} s; records under "
                                      f"{Path(cfg.results_dir) / 'records'}")
        return status


def _pct(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), _ROUND)


def _ece(top1_prob, correct) -> float | None:
    """Expected calibration error of the top-1 confidence (15 bins, L1), a fraction to 4 decimals;
    None with no scored image."""
    from vitbench.analysis.calibration import N_BINS, ece

    return round(ece(top1_prob, correct, N_BINS), _ROUND) if len(top1_prob) else None


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


def _in_group(cfg: RunConfig, body) -> int:
    """Validate `cfg`, join the torchrun group (when there is one), run `body(Run)`, leave the group."""
    try:
        cfg.validate()
    except RunConfigError as e:
        print(f"vitbench run: error: {e}", file=sys.stderr)
        return 2
    world = distributed.init(cfg.device)
    if not world.is_main:                       # rank 0 speaks for the group
        logging.getLogger("vitbench").setLevel(logging.WARNING)
    try:
        status = body(Run(replace(cfg, device=world.device), world))
        # every rank finishes before the group is torn down: gloo aborts (SIGABRT) a process that
        # destroys its group while a peer is still using it or has already left
        distributed.barrier(world)
        return status
    finally:
        distributed.teardown(world)


def run(cfg: RunConfig) -> int:
    """The main job; returns the exit status (0 ok, 1 a job failed, 2 a bad config)."""
    def body(r: Run) -> int:
        status = r.execute()
        if r.world.is_main:
            print(r.summary.render())
        return status

    return _in_group(cfg, body)


def measure_only(cfg: RunConfig) -> Run:
    """Stats (and throughput, when `cfg.bench`) of `cfg.checkpoints` with no evaluation and no reports:
    what `vitbench stats --results-dir` and `vitbench bench` do, through the same skip rules and lock.
    Returns the Run, whose store holds the records and whose summary says what failed."""
    cfg = replace(cfg, datasets=(), report=False)
    cfg.validate()
    r = Run(cfg)
    with _sigterm_as_interrupt():
        r.measure()
        r.write_outputs()
    return r


def evaluate_model(model, datasets=("imagenet",), data_config=None, name: str = "python_model",
                   results_dir: str | Path = "results", *, weights_sha256: str | None = None, **options) -> dict:
    """Evaluate a model built in Python and write the same records a run writes, so it joins the
    results CSVs and the reports under `name`.

    Args:
        model: any nn.Module mapping a normalized float batch [B, 3, H, W] to 1000 ImageNet logits.
        datasets: vitbench dataset names (imagenet, real, v2, sketch, r, a).
        data_config: its eval preprocessing (`vitbench.DataConfig`, or a registered checkpoint name to
            take it from); None: the model's own `data_config` attribute.
        name: the name its records, CSV rows and report rows carry.
        results_dir: where the records go.
        weights_sha256: a hash of the weights, when the caller has one: a later call with the same hash
            reuses the records (without it a record from Python is never reused: nothing says the
            weights are the same).
        **options: any other RunConfig field (device, precision, batch_size, workers, limit, data_root,
            data_overrides, force, report, ...).

    Returns:
        {dataset: EvalRecord} of the jobs that have a record after the call.

    Raises:
        RunConfigError: a bad option (unknown dataset, missing --data path, no CUDA, ...).
    """
    from vitbench.data.config import DataConfig, resolve_data_config

    dc = data_config if isinstance(data_config, DataConfig) or data_config is None else resolve_data_config(data_config)
    dc = dc or getattr(model, "data_config", None)
    if not isinstance(dc, DataConfig):
        raise RunConfigError(f"evaluate_model({name!r}): give data_config (a vitbench.DataConfig or a registered "
                             f"checkpoint name): the model has no data_config of its own")
    options = {"report": False, "bench": None, **options}
    cfg = RunConfig(checkpoints=(name,), datasets=tuple(datasets), results_dir=Path(results_dir), **options)
    cfg.validate()
    r = Run(cfg, sources={name: ModuleSource(name, model, dc, weights_sha256)})
    with _sigterm_as_interrupt():
        r.execute()
    log.info("%s", r.summary.render())
    return {j.dataset: rec for j in r.plan() if (rec := r.store.get(j.record)) is not None}
