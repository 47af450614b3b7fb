"""Scoring: what a batch of logits means for one (model, dataset), and the result of a whole pass.

    spec = EvalSpec.for_dataset(dataset, model.data_config)   # normalization and label space
    scorer = Scorer(spec, device)                             # fed batch by batch by a pass
    result = aggregate(scorer, predictions, skipped, wall)    # top-1/top-5 with 95% Wilson intervals

Top-1/top-5 come from torchmetrics accumulators, which sync across processes in a data-parallel run;
ReaL is scored from the per-sample top-5, which every job keeps (and writes as parquet) so that ReaL,
intervals and model-vs-model tests can be recomputed without rerunning.

ImageNet-A and -R are scored as timm scores them (logits restricted to their 200 classes) and also
1000-way (argmax over every class, a class outside the 200 counting as wrong: their authors' protocol).
The stored top-5 is over the subset, so the 1000-way count is taken from the full logits here, kept on
the device, and summed over ranks by the pass (`Scorer.count_1000way`, `aggregate(..., right_1000way)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from vitbench.analysis.scoring import top1_1000way
from vitbench.eval.precision import check as check_precision
from vitbench.significance import wilson_interval

TOPK = 5


@dataclass(frozen=True)
class EvalSpec:
    """What scoring needs to know beyond the images: normalization and the label space."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # A/R and their clean baselines: the 200 class indices logits are restricted to; the loader's
    # targets are then positions in `subset` (vitbench.data.datasets' convention)
    subset: tuple[int, ...] | None = None
    label_sets: tuple[tuple[int, ...], ...] | None = None   # ReaL: label set per dataset index
    # A and R (a subset set with images of its own, not a clean baseline read from ImageNet-val): also
    # count the argmax over all classes against the 1000-class target
    score_1000way: bool = False

    @classmethod
    def for_dataset(cls, dataset, data_config) -> "EvalSpec":
        subset = getattr(dataset, "subset", None)
        label_sets = getattr(dataset, "label_sets", None)
        spec = getattr(dataset, "spec", None)
        return cls(
            mean=tuple(data_config.mean),
            std=tuple(data_config.std),
            subset=tuple(int(i) for i in subset) if subset is not None else None,
            label_sets=tuple(tuple(s) for s in label_sets) if label_sets is not None else None,
            score_1000way=subset is not None and spec is not None and not getattr(spec, "based_on", None),
        )


@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-sample outputs, in loader order. Class indices are ImageNet-1k indices, also for A/R
    (whose loader targets are subset positions; they are mapped back here)."""
    index: np.ndarray          # int64 [N]   dataset index of the image
    target: np.ndarray         # int64 [N]   ImageNet-1k class index
    top5_idx: np.ndarray       # int64 [N,5] best five classes, best first
    top5_prob: np.ndarray      # float32 [N,5] their softmax probabilities (over the subset for A/R)

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True, eq=False)
class EvalResult:
    top1: float                          # percent
    top5: float                          # percent
    n: int                               # images evaluated
    n_scored: int                        # images that count (ReaL: non-empty label set)
    top1_ci: tuple[float, float]         # 95% Wilson interval, percent
    top5_ci: tuple[float, float]
    predictions: Predictions
    skipped_files: tuple[str, ...] = ()
    wall_time_s: float = 0.0
    images_per_sec: float = 0.0
    top1_1000way: float | None = None    # A and R: argmax over all classes, percent; None for other sets


def _make_metrics(num_classes: int, device: str):
    from torchmetrics.classification import MulticlassAccuracy

    k5 = min(TOPK, num_classes)
    top1 = MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro").to(device)
    top5 = MulticlassAccuracy(num_classes=num_classes, top_k=k5, average="micro").to(device)
    return top1, top5


def restrict_logits(logits: torch.Tensor, subset_t: torch.Tensor | None) -> torch.Tensor:
    """A/R: keep only the subset's columns, so a class outside the subset can never be predicted."""
    return logits if subset_t is None else logits.index_select(1, subset_t)


def prepare_model(model: nn.Module, device: str, precision: str, channels_last: bool = False) -> nn.Module:
    """The model on `device` in eval mode; bf16 precision casts its weights, `channels_last` puts its
    4-d weights (the patch embedding's convolution, a hybrid's stem) in channels-last memory format."""
    check_precision(precision)
    model = model.to(torch.device(device)).eval()
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def compile_model(model: nn.Module) -> nn.Module:
    """`torch.compile(model)` for the eval loop: static shapes (the pass pads a short last batch to the
    full batch, so each model compiles once). The compiled module forwards attribute reads
    (`data_config`, `num_classes`) to the model."""
    return torch.compile(model, dynamic=False)


class Scorer:
    """The scoring of one (model, dataset): from each batch's logits, update the (syncable) accuracy
    metrics and keep the per-sample top-5. A pass (vitbench.eval.engine) feeds one per (model,
    dataset) from a forward shared by every dataset of its source."""

    def __init__(self, spec: EvalSpec, device: str):
        self.spec, self.dev = spec, torch.device(device)
        self.subset_t = (torch.as_tensor(spec.subset, dtype=torch.long, device=self.dev)
                         if spec.subset else None)
        self.top1_metric = self.top5_metric = None
        self.rows: dict[str, list] = {"index": [], "target": [], "top5_idx": [], "top5_prob": []}
        self.skipped: list[str] = []
        self.n_seen = 0
        # A/R: images whose argmax over all classes is the 1000-class target (a device tensor: no sync)
        self.right_1000way = (torch.zeros((), dtype=torch.long, device=self.dev)
                              if spec.score_1000way and self.subset_t is not None else None)

    def make_metrics(self, num_scored: int) -> None:
        if self.top1_metric is None:
            self.top1_metric, self.top5_metric = _make_metrics(num_scored, self.dev)

    def update(self, logits: torch.Tensor, y_host: torch.Tensor, indices: torch.Tensor) -> None:
        """logits (B, C) of the images whose loader targets are `y_host` and dataset indices `indices`."""
        y = y_host.to(self.dev, non_blocking=self.dev.type == "cuda")
        full = logits.float()                                                        # (B, C)
        logits = restrict_logits(full, self.subset_t)                                # (B, C')
        self.make_metrics(logits.shape[1])
        _check_targets(y_host, logits.shape[1])          # on the host: no device sync per batch
        if self.right_1000way is not None:
            self.right_1000way += top1_1000way(full, self.subset_t[y]).sum()
        self.top1_metric.update(logits, y)
        self.top5_metric.update(logits, y)
        k = min(TOPK, logits.shape[1])
        prob, idx = logits.softmax(dim=1).topk(k, dim=1)                             # (B, k)
        if self.subset_t is not None:                                                # back to 1k indices
            idx, y = self.subset_t[idx], self.subset_t[y]
        # kept on the device until the end: a per-batch .cpu() would sync every step
        self.rows["index"].append(torch.as_tensor(indices).long())
        self.rows["target"].append(y)
        self.rows["top5_idx"].append(idx)
        self.rows["top5_prob"].append(prob)
        self.n_seen += len(y)

    def predictions(self) -> "Predictions":
        return _stack_predictions(self.rows)

    def count_1000way(self) -> int | None:
        """This process's count of images right 1000-way (A/R), None for other sets (one sync, at the end)."""
        return None if self.right_1000way is None else int(self.right_1000way.item())


def _check_targets(y: torch.Tensor, num_scored: int) -> None:
    if ((y < 0) | (y >= num_scored)).any():
        bad = sorted(set(y[(y < 0) | (y >= num_scored)].tolist()))
        raise ValueError(f"targets {bad[:5]} are outside the {num_scored} scored classes")


def _stack_predictions(rows: dict[str, list]) -> Predictions:
    if not rows["index"]:
        empty = np.zeros((0,), np.int64)
        return Predictions(empty, empty, np.zeros((0, TOPK), np.int64), np.zeros((0, TOPK), np.float32))
    return Predictions(
        index=torch.cat(rows["index"]).numpy().astype(np.int64),
        target=torch.cat(rows["target"]).cpu().numpy().astype(np.int64),
        top5_idx=torch.cat(rows["top5_idx"]).cpu().numpy().astype(np.int64),
        top5_prob=torch.cat(rows["top5_prob"]).cpu().numpy().astype(np.float32),
    )


@dataclass(frozen=True)
class RealScore:
    top1_correct: int
    top5_correct: int
    n_scored: int              # images with a non-empty label set

    @property
    def top1(self) -> float:
        return 100.0 * self.top1_correct / self.n_scored if self.n_scored else float("nan")

    @property
    def top5(self) -> float:
        return 100.0 * self.top5_correct / self.n_scored if self.n_scored else float("nan")


def score_real(top5_idx: np.ndarray, label_sets: Sequence[Sequence[int]]) -> RealScore:
    """ImageNet-ReaL: top-1 is correct when the best class is in the image's label set, top-5 when any
    of the best five is; images whose set is empty are not scored. `label_sets[i]` belongs to row i."""
    top5_idx = np.asarray(top5_idx)
    if len(top5_idx) != len(label_sets):
        raise ValueError(f"{len(top5_idx)} predictions but {len(label_sets)} label sets")
    c1 = c5 = n = 0
    for row, labels in zip(top5_idx, label_sets, strict=True):
        if len(labels) == 0:
            continue
        labels = set(int(x) for x in labels)
        n += 1
        c1 += int(row[0]) in labels
        c5 += any(int(c) in labels for c in row)
    return RealScore(c1, c5, n)


def real_label_sets_for(predictions: Predictions, label_sets) -> list[tuple[int, ...]]:
    """The ReaL label set of each prediction row (by dataset index)."""
    return [tuple(label_sets[int(i)]) for i in predictions.index]


def top1_confidence(preds: Predictions, label_sets=None) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 probability, top-1 right) per scored image, what calibration is computed from. ReaL
    (`label_sets` by dataset index): right when the top-1 class is in the image's set, and images with
    an empty set are left out, as its accuracy leaves them out."""
    prob = preds.top5_prob[:, 0].astype(np.float32) if len(preds) else np.zeros(0, np.float32)
    top1 = preds.top5_idx[:, 0] if len(preds) else np.zeros(0, np.int64)
    if label_sets is None:
        return prob, top1 == preds.target
    sets = real_label_sets_for(preds, label_sets)
    keep = np.array([len(s) > 0 for s in sets], dtype=bool)
    right = np.array([int(c) in s for c, s in zip(top1, sets, strict=True)], dtype=bool)
    return prob[keep], right[keep]


def aggregate(scorer: Scorer, preds: Predictions, skipped_files: Sequence[str], wall_time_s: float,
              right_1000way: int | None = None) -> EvalResult:
    """The result of a scorer whose metrics are synced (`preds`: every rank's predictions, merged;
    `right_1000way`: A/R's 1000-way count summed over ranks, None for other sets)."""
    spec = scorer.spec
    n = len(preds)
    if spec.label_sets is not None:
        real = score_real(preds.top5_idx, real_label_sets_for(preds, spec.label_sets))
        c1, c5, n_scored = real.top1_correct, real.top5_correct, real.n_scored
    elif scorer.top1_metric is not None:
        # torchmetrics gives the (process-synced) fractions; counts for the interval follow from n
        n_scored = n
        c1 = round(float(scorer.top1_metric.compute()) * n)
        c5 = round(float(scorer.top5_metric.compute()) * n)
    else:
        c1 = c5 = n_scored = 0
    pct = (lambda c: 100.0 * c / n_scored) if n_scored else (lambda c: float("nan"))
    return EvalResult(
        top1=pct(c1), top5=pct(c5), n=n, n_scored=n_scored,
        top1_ci=wilson_interval(c1, n_scored), top5_ci=wilson_interval(c5, n_scored),
        predictions=preds,
        skipped_files=tuple(skipped_files),
        wall_time_s=wall_time_s,
        images_per_sec=n / wall_time_s if wall_time_s > 0 else 0.0,
        top1_1000way=None if right_1000way is None else pct(right_1000way),   # A/R: n_scored == n
    )
