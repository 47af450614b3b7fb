"""The evaluation engine: one decode per image and preprocessing key, one forward per source.

    evaluate_jobs(ready, cfg, world, on_ok, on_failed) -> [PassStats, ...]

The unit of decoding is (source, preprocessing key), not the job:

- a **preprocessing key** is what the uint8 crop depends on: input size, crop_pct, crop_mode,
  interpolation and (transformers' processors) the resize size (`crop_key`). Mean and std are not in
  it: normalization happens on the device, per model, from the same uint8 batch.
- a **source** is the images a dataset reads: imagenet, real, r-clean and a-clean all read
  ImageNet-val (`source_of`), so one forward over ImageNet-val serves all four. Each keeps its own
  scorer (`evaluate.Scorer`): ReaL scores the kept top-5 against its label sets, the clean baselines
  restrict the logits to their 200 classes over the images of those classes.

Checkpoints are grouped by key; a group's models are held on the device together, in chunks whose
weights fit `budget` bytes (half the device's memory by default; one chunk unless the group is very
large, and each further chunk decodes the images again). For each source, one pass
(`run_pass`) decodes each image once (`UnionDataset`: the union of the datasets' images) and feeds
every batch to every model of the chunk. The records stay per job, so resume, CSVs and cards do not
change; predictions are sorted back into each dataset's own order, so they equal the one-model path.

Under torchrun each rank reads its share of the union (ShardSampler: no padding, each image once),
the torchmetrics states sync on compute(), and the per-image predictions are gathered to rank 0,
which alone gets the results (`on_ok`/`on_failed` run on rank 0 only).
"""
from __future__ import annotations

import copy
import logging
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from vitbench.distributed import World, all_gather, all_max

log = logging.getLogger(__name__)


def crop_key(data_config) -> tuple:
    """What the uint8 crop of an image depends on: (input_size, crop_pct, crop_mode, interpolation,
    resize_size); resize_size is None for timm's crop modes and set for transformers' processors."""
    resize = getattr(data_config, "resize_size", None)
    return (tuple(data_config.input_size), float(data_config.crop_pct), data_config.crop_mode,
            data_config.interpolation, None if resize is None else tuple(resize))


def source_of(dataset: str, overrides) -> tuple[str, str | None]:
    """The images a dataset reads: (the dataset they belong to, the --data override in force)."""
    from vitbench.data.datasets import DATASETS, resolve_override

    spec = DATASETS[dataset]
    return (spec.based_on or dataset, resolve_override(dataset, dict(overrides)))


@dataclass(frozen=True)
class ReadyJob:
    """A job that can run: its checkpoint's model slot (runner._ModelSlot) and its opened dataset."""
    job: object          # runner.Job
    slot: object         # has .name, .get(), .release(), .error, .resolved
    dataset: object      # data.datasets.EvalDataset, no transform set


@dataclass(frozen=True)
class PassStats:
    source: str
    key: tuple
    checkpoints: tuple[str, ...]
    jobs: int
    images: int             # distinct images the datasets of the pass hold
    decoded: int            # images this process decoded (its shard under torchrun)
    wall_time_s: float


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


# ---------------------------------------------------------------------------- grouping

def model_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def default_budget(device: str) -> int:
    """Bytes of weights one chunk may hold: half the device's memory (the rest is for activations)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(0.5 * torch.cuda.get_device_properties(dev).total_memory)
    return int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def predicted_key(slot) -> tuple | None:
    """The key of a checkpoint before its model is built (registry or preprocessor_config.json);
    None when it cannot be told. The built model's own data config has the last word."""
    from pathlib import Path

    from vitbench.data.config import DataConfig, resolve_data_config

    if getattr(slot, "model", None) is not None:
        return crop_key(slot.model.data_config)
    try:
        path = Path(slot.resolved.path) if slot.resolved is not None else None
        if path is not None and (path / "preprocessor_config.json").is_file():
            return crop_key(DataConfig.from_preprocessor_config(path / "preprocessor_config.json"))
        return crop_key(resolve_data_config(slot.name))
    except Exception:  # noqa: BLE001 - an unregistered name: known once built
        return None


def evaluate_jobs(ready: list[ReadyJob], cfg, world: World, on_ok: Callable, on_failed: Callable,
                  describe: Callable[[BaseException], str] = lambda e: f"{type(e).__name__}: {e}",
                  budget: int | None = None) -> list[PassStats]:
    """Run every ready job, grouped by preprocessing key and source; results go to `on_ok(rj,
    model, data_config, EvalResult)` / `on_failed(rj, error, tb)` on rank 0."""
    budget = budget or default_budget(world.device)
    by_ckpt: dict[str, list[ReadyJob]] = {}
    for rj in ready:
        by_ckpt.setdefault(rj.slot.name, []).append(rj)
    queue: dict[tuple | None, list[str]] = {}
    for name, rjs in by_ckpt.items():
        queue.setdefault(predicted_key(rjs[0].slot), []).append(name)
    stats: list[PassStats] = []
    while queue:
        key = next(iter(queue))
        names = queue.pop(key)
        chunk, used = [], 0
        for name in names:
            slot = by_ckpt[name][0].slot
            model = slot.get()
            if model is None:
                for rj in by_ckpt[name]:
                    on_failed(rj, slot.error, None)
                continue
            actual = crop_key(model.data_config)
            if actual != key:                     # predicted wrong: the model waits, built, for its key
                queue.setdefault(actual, []).append(name)
                continue
            chunk.append(name)
            used += model_bytes(model)
            if used >= budget:
                stats += _run_chunk(key, [rj for n in chunk for rj in by_ckpt[n]], cfg, world, on_ok,
                                    on_failed, describe)
                chunk, used = [], 0
        if chunk:
            stats += _run_chunk(key, [rj for n in chunk for rj in by_ckpt[n]], cfg, world, on_ok,
                                on_failed, describe)
    return stats


def _run_chunk(key, rjs: list[ReadyJob], cfg, world, on_ok, on_failed, describe) -> list[PassStats]:
    from vitbench.evaluate import prepare_model

    slots = list({id(rj.slot): rj.slot for rj in rjs}.values())
    sources: dict[tuple, list[ReadyJob]] = {}
    for rj in rjs:
        sources.setdefault(source_of(rj.job.dataset, cfg.data_overrides), []).append(rj)
    try:
        models = {s.name: prepare_model(s.model, world.device, cfg.precision) for s in slots}
        data_config = slots[0].model.data_config
        stats = []
        for source, members in sources.items():
            stats.append(run_pass(models, members, data_config, cfg, world, on_ok, on_failed, describe,
                                  source=source[0], key=key))
        return stats
    finally:
        for s in slots:
            s.release()


# ---------------------------------------------------------------------------- one pass

def run_pass(models: dict, members: list[ReadyJob], data_config, cfg, world: World, on_ok, on_failed,
             describe, source: str = "", key: tuple = ()) -> PassStats:
    """Decode the union of the members' images once; feed every batch to every model."""
    from vitbench.data.transforms import create_crop_transform
    from vitbench.evaluate import EvalSpec, Scorer, build_loader

    datasets = {}
    for rj in members:
        datasets.setdefault(rj.job.dataset, rj.dataset)
    union = UnionDataset(list(datasets.values()), create_crop_transform(data_config))
    pos = {d: union.positions(ds) for d, ds in datasets.items()}
    targets = {d: torch.as_tensor(ds.targets, dtype=torch.long) for d, ds in datasets.items()}
    scorers = {(rj.slot.name, rj.job.dataset): Scorer(EvalSpec.for_dataset(rj.dataset, models[rj.slot.name]
                                                                            .data_config), world.device)
               for rj in members}
    feeds: dict[str, list[str]] = {}
    for name, d in scorers:
        feeds.setdefault(name, []).append(d)
    loader = build_loader(union, cfg.eval_batch_size, cfg.workers, world.device, shard=world.shard)
    names = sorted(feeds, key=list(models).index)
    desc = f"{source} x{len(names)} model(s)"
    log.info("pass %s at %s: %d images for %d job(s) of %d model(s)%s", source, _key_text(key), len(union),
             len(members), len(names), f", rank {world.rank}/{world.world_size}" if world.distributed else "")
    t0 = time.perf_counter()
    errors, pass_error, decoded = _feed(loader, union, models, names, feeds, pos, targets, scorers, cfg,
                                        world, desc)
    wall = time.perf_counter() - t0
    _finish(members, models, names, scorers, datasets, errors, pass_error, wall, world, on_ok, on_failed,
            describe)
    return PassStats(source, key, tuple(names), len(members), len(union), decoded, wall)


def _key_text(key) -> str:
    if not key:
        return "?"
    size, crop_pct, mode, interp, resize = key
    text = f"{size[-2]}x{size[-1]}/{crop_pct}/{mode}/{interp}"
    return text if resize is None else f"{text}/resize {'x'.join(map(str, resize))}"


def _feed(loader, union, models, names, feeds, pos, targets, scorers, cfg, world, desc):
    """The batch loop. A model that raises drops out (its jobs fail); an error of the loader (an
    unreadable image) ends the pass for every model."""
    from vitbench.data.transforms import normalize_batch
    from vitbench.evaluate import _progress
    from vitbench.precision import autocast, input_dtype

    dev = torch.device(world.device)
    u_of_file = {f: u for u, f in enumerate(union.files)}
    errors: dict[str, BaseException] = {}
    pass_error = None
    decoded = 0
    bar = _progress(len(loader.sampler) if loader.sampler is not None else len(union), desc)
    try:
        with torch.inference_mode(), bar:
            for images, _, uidx, skipped_files in loader:
                decoded += len(uidx) + len(skipped_files)
                for f in skipped_files:
                    _route_skipped(str(f), u_of_file[str(f)], pos, scorers)
                if len(uidx) == 0:
                    continue
                x8 = images.to(dev, non_blocking=dev.type == "cuda")
                normed: dict[tuple, torch.Tensor] = {}
                for name in names:
                    if name in errors:
                        continue
                    model = models[name]
                    try:
                        dc = model.data_config
                        nk = (tuple(dc.mean), tuple(dc.std))
                        if nk not in normed:
                            normed[nk] = normalize_batch(x8, dc.mean, dc.std, input_dtype(cfg.precision))
                        with autocast(world.device, cfg.precision):
                            logits = model(normed[nk])                                  # (B, C)
                        for d in feeds[name]:
                            _score(scorers[(name, d)], logits, pos[d][uidx], targets[d], dev)
                    except Exception as e:  # noqa: BLE001 - OOM, a model bug: this model's jobs fail
                        log.debug("model %s failed in the pass", name, exc_info=True)
                        errors[name] = e
                bar.update(len(uidx))
    except Exception as e:  # noqa: BLE001 - a bad image, a loader worker dying: every job of the pass
        log.debug("pass failed", exc_info=True)
        pass_error = e
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return errors, pass_error, decoded


def _score(scorer, logits, p: torch.Tensor, targets: torch.Tensor, dev) -> None:
    """The rows of the batch that belong to the scorer's dataset (p: their items there, or -1)."""
    keep = p >= 0
    if not bool(keep.any()):
        return
    if bool(keep.all()):
        scorer.update(logits, targets[p], p)
        return
    sel = keep.nonzero().squeeze(1)
    scorer.update(logits.index_select(0, sel.to(dev)), targets[p[sel]], p[sel])


def _route_skipped(file: str, u: int, pos, scorers) -> None:
    for (name, d), scorer in scorers.items():
        if int(pos[d][u]) >= 0:
            scorer.skipped.append((int(pos[d][u]), file))


# ---------------------------------------------------------------------------- results

def _finish(members, models, names, scorers, datasets, errors, pass_error, wall, world, on_ok, on_failed,
            describe) -> None:
    """Agree on failures across ranks, sync the metrics, gather predictions to rank 0, report."""
    from vitbench.evaluate import aggregate

    flags = all_max(world, [int(pass_error is not None)] + [int(n in errors) for n in names])
    texts = all_gather(world, (describe(pass_error) if pass_error is not None else None,
                               {n: describe(e) for n, e in errors.items()}))
    pass_text = next((t[0] for t in texts if t[0]), None)
    failed = {n: next((t[1][n] for t in texts if n in t[1]), "failed on another rank")
              for n, f in zip(names, flags[1:]) if f}
    tb = "".join(traceback.format_exception(pass_error)) if pass_error is not None else None
    if flags[0]:
        pass_text = pass_text or "the pass failed on another rank"
        if world.is_main:
            for rj in members:
                on_failed(rj, pass_text, tb)
        return
    live = [rj for rj in members if rj.slot.name not in failed]
    if world.is_main:
        for rj in members:
            if rj.slot.name in failed:
                on_failed(rj, failed[rj.slot.name], None)
    # every rank makes every metric (a rank may have seen none of a dataset's images), then syncs it
    live_keys = [(rj.slot.name, rj.job.dataset) for rj in live]
    n_classes = all_max(world, [_scored_classes(scorers[k], models[k[0]]) for k in live_keys])
    payloads = []
    for k, c in zip(live_keys, n_classes):
        s = scorers[k]
        s.make_metrics(max(c, 1))
        with warnings.catch_warnings():      # "compute called before update" on a rank with no rows
            warnings.simplefilter("ignore")
            s.top1_metric.compute()
            s.top5_metric.compute()
        out = s.outputs(wall)
        p = out.predictions
        payloads.append((p.index, p.target, p.top5_idx, p.top5_prob, s.skipped))
    gathered = all_gather(world, payloads)
    if not world.is_main:
        return
    for j, (rj, k) in enumerate(zip(live, live_keys)):
        s, ds = scorers[k], datasets[rj.job.dataset]
        out = s.outputs(wall)
        out.predictions, out.skipped_files = _merge([g[j] for g in gathered], len(ds), rj.job.dataset)
        result = aggregate(out, s.spec)
        on_ok(rj, models[rj.slot.name], models[rj.slot.name].data_config, result)


def _scored_classes(scorer, model) -> int:
    if scorer.spec.subset:
        return len(scorer.spec.subset)
    if scorer.top1_metric is not None:
        return int(scorer.top1_metric.num_classes)
    return int(getattr(model, "num_classes", 0) or 0)


def _merge(parts, n_items: int, dataset: str):
    """Rank parts -> one Predictions in the dataset's own order; every item exactly once."""
    from vitbench.evaluate import Predictions

    index = np.concatenate([p[0] for p in parts])
    order = np.argsort(index, kind="stable")
    preds = Predictions(index=index[order],
                        target=np.concatenate([p[1] for p in parts])[order],
                        top5_idx=np.concatenate([p[2] for p in parts])[order],
                        top5_prob=np.concatenate([p[3] for p in parts])[order])
    skipped = sorted(x for p in parts for x in p[4])
    seen = np.concatenate([preds.index, np.asarray([i for i, _ in skipped], dtype=np.int64)])
    if len(np.unique(seen)) != len(seen) or len(seen) != n_items:
        raise AssertionError(f"{dataset}: {len(seen)} predictions and skips for {n_items} images "
                             f"({len(seen) - len(np.unique(seen))} repeated); each image must be scored "
                             f"exactly once")
    return preds, [f for _, f in skipped]
