"""The evaluation engine: one decode per image and preprocessing key, one forward per source.

    engine = Engine(PassSettings(precision="amp_bf16", batch_size=256, workers=8, world=world))
    for outcome in engine.run(jobs):          # EngineJob(ref, model: ModelSource, dataset)
        ...                                   # Outcome(job, result | error), on rank 0 only

The unit of decoding is (source, preprocessing key), not the job:

- a **preprocessing key** is what the uint8 crop depends on: input size, crop_pct, crop_mode,
  interpolation and (transformers' processors) the resize size (`crop_key`). Mean and std are not in
  it: normalization happens on the device, per model, from the same uint8 batch.
- a **source** is the images a dataset reads: imagenet, real, r-clean and a-clean all read
  ImageNet-val from one root (`source_of`), so one forward over ImageNet-val serves all four. Each
  keeps its own scorer: ReaL scores the kept top-5 against its label sets, the clean baselines
  restrict the logits to their 200 classes over the images of those classes.

Models come from `ModelSource`s (a checkpoint to build, or a module the caller already has), grouped
by key; a group's models are held on the device together, in chunks whose weights fit the memory
budget (half the device's memory by default; each further chunk decodes the images again). For each
source a `Pass` decodes each image once (`UnionDataset`: the union of the datasets' images) and feeds
every batch to every model of the chunk; predictions are sorted back into each dataset's own order, so
they equal what one model on one dataset gives (`vitbench.eval.evaluate`, a one-member pass).

Under torchrun each rank reads its share of the union (ShardSampler: no padding, each image once), the
torchmetrics states sync on compute(), and the per-image predictions (and A/R's 1000-way counts) are
gathered to rank 0, which alone gets the outcomes.

`PassSettings.compile` runs every model `torch.compile`d (static shapes: a short last batch is padded
to the full batch and its extra rows dropped, so a model compiles once); `channels_last` puts the
models' weights and every input batch in channels-last memory format. The outcome's model is the
plain module (its data_config and weights_info), never the compiled wrapper.
"""
from __future__ import annotations

import copy
import logging
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol

import numpy as np
import torch
import torch.nn as nn

from vitbench.eval.distributed import World, all_gather, all_max
from vitbench.eval.loader import build_loader
from vitbench.eval.precision import autocast, input_dtype
from vitbench.eval.scoring import (
    EvalResult,
    EvalSpec,
    Predictions,
    Scorer,
    aggregate,
    compile_model,
    prepare_model,
)

if TYPE_CHECKING:
    from vitbench.data.datasets import EvalDataset

log = logging.getLogger(__name__)


def crop_key(data_config) -> tuple:
    """What the uint8 crop of an image depends on: (input_size, crop_pct, crop_mode, interpolation,
    resize_size); resize_size is None for timm's crop modes and set for transformers' processors."""
    resize = getattr(data_config, "resize_size", None)
    return (tuple(data_config.input_size), float(data_config.crop_pct), data_config.crop_mode,
            data_config.interpolation, None if resize is None else tuple(resize))


def source_of(dataset) -> tuple[str, str]:
    """The images an opened dataset reads: (the dataset they belong to, where they were read from).
    Datasets with the same source share one listing, so one decode serves them all."""
    return (dataset.spec.based_on or dataset.spec.name, str(dataset.root))


@dataclass(frozen=True)
class PassSettings:
    """How a pass runs: precision and backend (torch.compile, channels-last), batch, loader workers, the
    process (its device and torchrun group), and the bytes of weights one chunk of models may hold on
    the device (None: half its memory)."""
    precision: str = "fp32"
    batch_size: int = 32
    workers: int = 0
    world: World = field(default_factory=World)
    budget: int | None = None
    compile: bool = False          # torch.compile each model (static shapes, one compile per model)
    channels_last: bool = False    # channels-last weights and inputs


class ModelSource(Protocol):
    """Where a pass gets a model: a checkpoint to build, or a module the caller already has."""
    name: str

    def crop_key(self) -> tuple | None:
        """The preprocessing key before the model is built (None when it cannot be told yet)."""

    def build(self) -> nn.Module:
        """The model, with its `data_config`; an exception fails every job of this model."""

    def release(self) -> None:
        """Drop the built model (the pass is done with it)."""


@dataclass(frozen=True)
class EngineJob:
    ref: object               # the caller's handle for the job (the run's Job), returned with its outcome
    model: ModelSource
    dataset: EvalDataset      # opened and checked, with no transform yet


@dataclass(frozen=True)
class Outcome:
    """A job's result (with the model that made it: its weights_info and data_config), or its error."""
    job: EngineJob
    result: EvalResult | None = None
    model: nn.Module | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class PassStats:
    source: str
    key: tuple
    checkpoints: tuple[str, ...]
    jobs: int
    images: int             # distinct images the datasets of the pass hold
    decoded: int            # images this process decoded (its shard under torchrun)
    wall_time_s: float


def describe_error(e: BaseException, batch_size: int | None = None) -> str:
    """One readable line for a failed job. An error raised in a DataLoader worker arrives as
    "Caught X in DataLoader worker process N. Original Traceback ..."; its last line is the error."""
    text = f"{type(e).__name__}: {e}"
    if "DataLoader worker" in text and "Original Traceback" in text:
        text = [ln for ln in str(e).splitlines() if ln.strip()][-1].strip()
        text = text.replace("vitbench.data.datasets.", "")
    if "out of memory" in text.lower() and batch_size:
        text += f" (lower --batch-size, now {batch_size})"
    return text


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("TQDM_DISABLE")) or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="img", disable=disable, dynamic_ncols=True, leave=False)



# ---------------------------------------------------------------------------- the images of a pass

class UnionDataset(torch.utils.data.Dataset):
    """The images of several datasets that read one source, each image once.

    Items `(uint8 crop, 0, u)`: u indexes the union; `positions(ds)` maps u to the item of `ds`
    (-1 when the image is not in it). Datasets of one source share one listing, so an image is
    identified by its listing row."""

    def __init__(self, datasets, transform):
        from vitbench.data.datasets import DatasetLayoutError

        self.members = []
        for ds in datasets:
            m = copy.copy(ds)                      # the same files, this pass's crop
            m.transform = transform
            self.members.append(m)
        first: dict[int, tuple[int, int]] = {}     # listing row -> (member, item)
        for k, ds in enumerate(self.members):
            for i, r in enumerate(ds.rows):
                if r not in first:
                    first[r] = (k, i)
                elif self.members[first[r][0]].files[first[r][1]] != ds.files[i]:
                    raise DatasetLayoutError(
                        f"{ds.spec.name} and {self.members[first[r][0]].spec.name} read the same source "
                        f"but list different files at row {r}; rerun with --force after fixing the folder")
        self.items = list(first.values())
        self._u_of_row = {r: u for u, r in enumerate(first)}
        self.files = [self.members[k].files[i] for k, i in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def positions(self, ds) -> torch.Tensor:
        """long [U]: the item of `ds` that union item u is, or -1."""
        pos = torch.full((len(self.items),), -1, dtype=torch.long)
        pos[[self._u_of_row[r] for r in ds.rows]] = torch.arange(len(ds.rows))
        return pos

    def __getitem__(self, u: int):
        from vitbench.data.datasets import BadImage

        k, i = self.items[u]
        out = self.members[k][i]
        if isinstance(out, BadImage):
            return BadImage(out.file, u, out.reason)
        return out[0], 0, u



# ---------------------------------------------------------------------------- one pass

@dataclass
class Member:
    """One (model, dataset) a pass scores. `pos` maps a union item to the dataset's item (-1: not in
    it) and `targets` are the dataset's; both None: the loader's own targets and indices count."""
    model: str
    scorer: Scorer
    label: str                            # '<model> <dataset>', for messages
    pos: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    n_items: int | None = None            # items the dataset holds (each is scored or skipped once)
    job: EngineJob | None = None

    def score(self, logits: torch.Tensor, idx: torch.Tensor, batch_targets: torch.Tensor, dev) -> None:
        """The rows of the batch that belong to this member's dataset."""
        if self.pos is None:
            self.scorer.update(logits, torch.as_tensor(batch_targets).long(), idx)
            return
        p = self.pos[idx]
        keep = p >= 0
        if not bool(keep.any()):
            return
        if bool(keep.all()):
            self.scorer.update(logits, self.targets[p], p)
            return
        sel = keep.nonzero().squeeze(1)
        self.scorer.update(logits.index_select(0, sel.to(dev)), self.targets[p[sel]], p[sel])

    def skip(self, u: int | None, file: str) -> None:
        i = -1 if self.pos is None or u is None else int(self.pos[u])
        if self.pos is None or i >= 0:
            self.scorer.skipped.append((i, file))


@dataclass(frozen=True)
class MemberResult:
    member: Member
    result: EvalResult | None = None
    error: str | None = None
    exception: BaseException | None = None     # this rank's exception (None when it came from another)
    traceback: str | None = None


class Pass:
    """One decode of a loader's images feeding every model of a chunk: the batch loop (`feed`), then
    the results, agreed across ranks (`finish`). `models` are prepared (on the device, in eval mode)."""

    def __init__(self, models: dict[str, nn.Module], members: list[Member], settings: PassSettings,
                 desc: str = "eval", files: list[str] | None = None):
        self.models, self.members, self.settings, self.desc = models, members, settings, desc
        self.feeds: dict[str, list[Member]] = {}
        for m in members:
            self.feeds.setdefault(m.model, []).append(m)
        self.u_of_file = {f: u for u, f in enumerate(files)} if files is not None else {}
        self.errors: dict[str, BaseException] = {}
        self.pass_error: BaseException | None = None
        self.decoded = 0
        self.wall_time_s = 0.0

    def run(self, loader, total: int) -> list[MemberResult]:
        t0 = time.perf_counter()
        self.feed(loader, total)
        self.wall_time_s = time.perf_counter() - t0
        return self.finish()

    def feed(self, loader, total: int) -> None:
        """The batch loop. A model that raises drops out (its jobs fail); an error of the loader (an
        unreadable image) ends the pass for every model."""
        from vitbench.data.transforms import normalize_batch

        s = self.settings
        dev = torch.device(s.world.device)
        names = [n for n in self.models if n in self.feeds]
        try:
            with torch.inference_mode(), _progress(total, self.desc) as bar:
                for images, targets, idx, skipped_files in loader:
                    self.decoded += len(idx) + len(skipped_files)
                    for f in skipped_files:
                        for m in self.members:
                            m.skip(self.u_of_file.get(str(f)), str(f))
                    if len(idx) == 0:
                        continue
                    x8 = images.to(dev, non_blocking=dev.type == "cuda")
                    n = len(x8)
                    if s.compile and n < s.batch_size:   # one static shape: pad, drop the extra logits
                        x8 = torch.cat([x8, x8.new_zeros((s.batch_size - n, *x8.shape[1:]))])
                    normed: dict[tuple, torch.Tensor] = {}
                    for name in names:
                        if name in self.errors:
                            continue
                        try:
                            spec = self.feeds[name][0].scorer.spec          # one mean/std per model
                            nk = (spec.mean, spec.std)
                            if nk not in normed:
                                x = normalize_batch(x8, spec.mean, spec.std, input_dtype(s.precision))
                                if s.channels_last:
                                    x = x.contiguous(memory_format=torch.channels_last)
                                normed[nk] = x
                            with autocast(dev, s.precision):
                                logits = self.models[name](normed[nk])[:n]                   # (B, C)
                            for m in self.feeds[name]:
                                m.score(logits, idx, targets, dev)
                        except Exception as e:  # noqa: BLE001 - OOM, a model bug: this model's jobs fail
                            log.debug("model %s failed in the pass", name, exc_info=True)
                            self.errors[name] = e
                    bar.update(len(idx))
        except Exception as e:  # noqa: BLE001 - a bad image, a loader worker dying: every job of the pass
            log.debug("pass failed", exc_info=True)
            self.pass_error = e
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def finish(self) -> list[MemberResult]:
        """Agree on failures across ranks, sync the metrics, gather the predictions to rank 0 and
        score; every rank returns the failures, rank 0 alone the results."""
        world, bs = self.settings.world, self.settings.batch_size
        names = list(self.feeds)
        flags = all_max(world, [int(self.pass_error is not None)] + [int(n in self.errors) for n in names])
        texts = all_gather(world, (describe_error(self.pass_error, bs) if self.pass_error is not None else None,
                                   {n: describe_error(e, bs) for n, e in self.errors.items()}))
        if flags[0]:
            text = next((t[0] for t in texts if t[0]), "the pass failed on another rank")
            tb = "".join(traceback.format_exception(self.pass_error)) if self.pass_error is not None else None
            return [MemberResult(m, error=text, exception=self.pass_error, traceback=tb) for m in self.members]
        failed = {n: next((t[1][n] for t in texts if n in t[1]), "failed on another rank")
                  for n, f in zip(names, flags[1:], strict=True) if f}
        out = [MemberResult(m, error=failed[m.model], exception=self.errors.get(m.model))
               for m in self.members if m.model in failed]
        live = [m for m in self.members if m.model not in failed]
        # every rank makes every metric (a rank may have seen none of a dataset's images), then syncs it
        n_classes = all_max(world, [_scored_classes(m.scorer, self.models[m.model]) for m in live])
        payloads = []
        for m, c in zip(live, n_classes, strict=True):
            m.scorer.make_metrics(max(c, 1))
            with warnings.catch_warnings():      # "compute called before update" on a rank with no rows
                warnings.simplefilter("ignore")
                m.scorer.top1_metric.compute()
                m.scorer.top5_metric.compute()
            p = m.scorer.predictions()
            payloads.append((p.index, p.target, p.top5_idx, p.top5_prob, m.scorer.skipped, m.scorer.count_1000way()))
        gathered = all_gather(world, payloads)
        if not world.is_main:
            return out
        for j, m in enumerate(live):
            parts = [g[j] for g in gathered]
            preds, skipped = _merge(parts, m.n_items, m.label)
            right_1000way = None if parts[0][5] is None else sum(p[5] for p in parts)      # summed over ranks
            out.append(MemberResult(m, result=aggregate(m.scorer, preds, skipped, self.wall_time_s, right_1000way)))
        return out


def _scored_classes(scorer: Scorer, model) -> int:
    if scorer.spec.subset:
        return len(scorer.spec.subset)
    if scorer.top1_metric is not None:
        return int(scorer.top1_metric.num_classes)
    return int(getattr(model, "num_classes", 0) or 0)


def _merge(parts, n_items: int | None, label: str):
    """Rank parts -> one Predictions in the dataset's own order; every item exactly once."""
    index = np.concatenate([p[0] for p in parts])
    order = np.argsort(index, kind="stable")
    preds = Predictions(index=index[order],
                        target=np.concatenate([p[1] for p in parts])[order],
                        top5_idx=np.concatenate([p[2] for p in parts])[order],
                        top5_prob=np.concatenate([p[3] for p in parts])[order])
    skipped = sorted(x for p in parts for x in p[4])
    seen = np.concatenate([preds.index, np.asarray([i for i, _ in skipped], dtype=np.int64)])
    if n_items is not None and (len(np.unique(seen)) != len(seen) or len(seen) != n_items):
        raise AssertionError(f"{label}: {len(seen)} predictions and skips for {n_items} images "
                             f"({len(seen) - len(np.unique(seen))} repeated); each image must be scored "
                             f"exactly once")
    return preds, [f for _, f in skipped]


# ---------------------------------------------------------------------------- the engine: many jobs

def model_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def default_budget(device: str) -> int:
    """Bytes of weights one chunk may hold: half the device's memory (the rest is for activations)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(0.5 * torch.cuda.get_device_properties(dev).total_memory)
    return int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _key_text(key) -> str:
    if not key:
        return "?"
    size, crop_pct, mode, interp, resize = key
    text = f"{size[-2]}x{size[-1]}/{crop_pct}/{mode}/{interp}"
    return text if resize is None else f"{text}/resize {'x'.join(map(str, resize))}"


class Engine:
    """Runs jobs grouped by preprocessing key and source; `passes` records what each pass did."""

    def __init__(self, settings: PassSettings):
        self.settings = settings
        self.passes: list[PassStats] = []

    def run(self, jobs: list[EngineJob]) -> Iterator[Outcome]:
        """Every job's outcome (rank 0; the other ranks yield nothing), chunk by chunk."""
        budget = self.settings.budget or default_budget(self.settings.world.device)
        by_model: dict[str, list[EngineJob]] = {}
        for job in jobs:
            by_model.setdefault(job.model.name, []).append(job)
        queue: dict[tuple | None, list[str]] = {}
        for name, mine in by_model.items():
            queue.setdefault(mine[0].model.crop_key(), []).append(name)
        while queue:
            key = next(iter(queue))
            names = queue.pop(key)
            chunk: dict[str, nn.Module] = {}
            used = 0
            for name in names:
                source = by_model[name][0].model
                try:
                    model = source.build()
                except Exception as e:  # noqa: BLE001 - recorded as failed for each of its jobs
                    log.debug("building %s failed", name, exc_info=True)
                    text = f"building the model / loading weights failed: {type(e).__name__}: {e}"
                    yield from (Outcome(job, error=text) for job in by_model[name] if self.settings.world.is_main)
                    continue
                actual = crop_key(model.data_config)
                if actual != key:                  # predicted wrong: the model waits, built, for its key
                    queue.setdefault(actual, []).append(name)
                    continue
                chunk[name] = model
                used += model_bytes(model)
                if used >= budget:
                    yield from self._chunk(key, chunk, by_model)
                    chunk, used = {}, 0
            if chunk:
                yield from self._chunk(key, chunk, by_model)

    def _chunk(self, key, chunk: dict[str, nn.Module], by_model) -> Iterator[Outcome]:
        s = self.settings
        jobs = [job for name in chunk for job in by_model[name]]
        try:
            models = {n: prepare_model(m, s.world.device, s.precision, s.channels_last) for n, m in chunk.items()}
            forwards = {n: compile_model(m) if s.compile else m for n, m in models.items()}
            sources: dict[tuple, list[EngineJob]] = {}
            for job in jobs:
                sources.setdefault(source_of(job.dataset), []).append(job)
            for source, members in sources.items():
                yield from self._pass(models, forwards, members, key, source[0])
        finally:
            for job in jobs:
                job.model.release()
            if torch.device(s.world.device).type == "cuda":
                torch.cuda.empty_cache()

    def _pass(self, models: dict, forwards: dict, jobs: list[EngineJob], key, source: str) -> Iterator[Outcome]:
        """Decode the union of the jobs' images once; feed every batch to every model (`forwards`: the
        models as called, compiled when asked; `models`: the plain modules the outcomes carry)."""
        from vitbench.data.transforms import create_crop_transform

        s, world = self.settings, self.settings.world
        datasets = {}
        for job in jobs:
            datasets.setdefault(job.dataset.spec.name, job.dataset)
        data_config = models[jobs[0].model.name].data_config
        union = UnionDataset(list(datasets.values()), create_crop_transform(data_config))
        pos = {d: union.positions(ds) for d, ds in datasets.items()}
        targets = {d: torch.as_tensor(ds.targets, dtype=torch.long) for d, ds in datasets.items()}
        members = []
        for job in jobs:
            d, name = job.dataset.spec.name, job.model.name
            spec = EvalSpec.for_dataset(job.dataset, models[name].data_config)
            members.append(Member(name, Scorer(spec, world.device), f"{name} {d}", pos[d], targets[d],
                                  len(datasets[d]), job))
        used = {m.model: forwards[m.model] for m in members}
        loader = build_loader(union, s.batch_size, s.workers, world.device, shard=world.shard)
        log.info("pass %s at %s: %d images for %d job(s) of %d model(s)%s", source, _key_text(key), len(union),
                 len(jobs), len(used), f", rank {world.rank}/{world.world_size}" if world.distributed else "")
        p = Pass(used, members, s, desc=f"{source} x{len(used)} model(s)", files=union.files)
        results = p.run(loader, len(loader.sampler) if loader.sampler is not None else len(union))
        self.passes.append(PassStats(source, key, tuple(used), len(jobs), len(union), p.decoded, p.wall_time_s))
        if not world.is_main:
            return
        for r in results:
            model = models[r.member.model]
            yield Outcome(r.member.job, r.result, model, r.error, r.traceback)


def evaluate(model: nn.Module, loader, spec: EvalSpec, device: str = "cpu", precision: str = "fp32",
             desc: str = "eval", *, compile: bool = False, channels_last: bool = False,
             batch_size: int | None = None) -> EvalResult:
    """Run one model over a loader of `collate_eval` batches and score it: a pass with one member.

    Args:
        model: maps a normalized float batch [B, 3, H, W] to logits [B, C].
        loader: yields (uint8 images [B, 3, H, W], targets [B], dataset indices [B], skipped files).
        spec: normalization and label space (`EvalSpec.for_dataset(dataset, data_config)`).
        device, precision: where and how to run (`vitbench.eval.precision.PRECISIONS`).
        compile, channels_last: run the model torch.compile'd / in channels-last memory format.
        batch_size: the loader's batch (compile pads a shorter batch to it); None: the loader's
            `batch_size` (32 when it has none).

    Returns:
        EvalResult: top-1/top-5 in percent with 95% Wilson intervals and the per-image top-5.

    Raises:
        the model's or the loader's exception, as the pass met it.
    """
    if batch_size is None:
        batch_size = getattr(loader, "batch_size", None) or 32
    settings = PassSettings(precision=precision, batch_size=batch_size, world=World(device=device),
                            compile=compile, channels_last=channels_last)
    model = prepare_model(model, device, precision, channels_last)
    member = Member("model", Scorer(spec, device), desc)
    (r,) = Pass({"model": compile_model(model) if compile else model}, [member], settings, desc).run(
        loader, len(getattr(loader, "dataset", None) or []))
    if r.exception is not None:
        raise r.exception
    return r.result
