"""Effective robustness (Taori et al., "Measuring Robustness to Natural Distribution Shifts in Image
Classification", NeurIPS 2020): how far a model's accuracy under a distribution shift lies above
the line that models trained on ImageNet-1k alone follow.

    in1k_only(model_name) -> bool                         # is the tag ImageNet-1k alone?
    fit_baseline(imagenet_df, shift_df) -> Baseline       # logit-space least squares over those rows
    Baseline.predict(imagenet_top1) -> shift top-1 (%)    # what the line expects
    effective_robustness(imagenet_top1, shift_top1, baseline) -> points above the line
    robustness_table(imagenet_df, shift_df, baseline) -> DataFrame (one row per (model, img_size))
    published_baseline(shift) -> Baseline                 # fitted on timm's packaged cloud

The baseline of each shift set (v2, sketch, r, a) is

    logit(shift top-1) = a * logit(ImageNet top-1) + b,    logit(p) = ln(p / (1 - p)),

fitted by ordinary least squares over timm's published rows of the models `in1k_only` keeps, the
ImageNet-1k-val row and the shift row matched on (model, img_size), top-1 as a fraction clipped to
[1e-4, 1 - 1e-4]. The x axis is ImageNet-1k val top-1 over all 1000 classes for every set, and the
y axis is the shift set's top-1 as timm publishes it (for A and R: logits restricted to the 200
classes). Taori et al. plot A and R against ImageNet accuracy on the same 200 classes; pass the
r-clean / a-clean frame as `imagenet_df` for that variant.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitbench.data.specs import robustness_datasets

ER_SETS = robustness_datasets()        # v2, sketch, r, a
CLIP = 1e-4     # top-1 fractions are clipped to [CLIP, 1 - CLIP] before the logit (0% and 100% are finite)

# a tag token starting with any of these names data beyond ImageNet-1k (pretraining, distillation
# teachers trained on more data, or self-supervised pretraining): the model is not "ImageNet-1k alone"
NOT_IN1K_PREFIXES = ("in21k", "in22k", "in12k", "laion", "openai", "m38m", "merged", "ig", "jft", "webli",
                     "dfn", "datacomp", "lvd", "ssl", "swsl", "wsl", "mim", "clip", "yfcc", "cc12m",
                     "metaclip", "seer")


def in1k_only(model_name: str) -> bool:
    """Whether timm's tag (the text after the first '.') says ImageNet-1k alone: split on '_', it has
    the token `in1k`, no token `ft`, and no token starting with one of NOT_IN1K_PREFIXES.
    'deit_base_patch16_224.fb_in1k' -> True; 'vit_base_patch16_224.augreg2_in21k_ft_in1k' -> False;
    a name without a tag -> False."""
    _, dot, tag = model_name.partition(".")
    if not dot:
        return False
    tokens = tag.split("_")
    return "in1k" in tokens and "ft" not in tokens and not any(t.startswith(NOT_IN1K_PREFIXES) for t in tokens)


def logit(top1_percent) -> np.ndarray:
    """logit of top-1 given in percent, as a clipped fraction."""
    p = np.clip(np.asarray(top1_percent, dtype=np.float64) / 100.0, CLIP, 1.0 - CLIP)
    return np.log(p / (1.0 - p))


def _scalar_or_array(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


@dataclass(frozen=True)
class Baseline:
    """The line logit(shift top-1) = a * logit(ImageNet top-1) + b, fitted over `n_rows` rows."""
    a: float
    b: float
    n_rows: int

    def predict(self, imagenet_top1):
        """The shift top-1 (%) the baseline expects at ImageNet top-1 `imagenet_top1` (%); a float
        for a float, an array for an array."""
        z = self.a * logit(imagenet_top1) + self.b
        return _scalar_or_array(100.0 / (1.0 + np.exp(-z)))


def matched_rows(imagenet_df: pd.DataFrame, shift_df: pd.DataFrame) -> pd.DataFrame:
    """The rows present in both frames, matched on (model, img_size): columns model, img_size,
    top1_imagenet, top1_shift (percent), in timm's order of `imagenet_df`."""
    cols = ["model", "img_size", "top1"]
    m = imagenet_df[cols].merge(shift_df[cols], on=["model", "img_size"], suffixes=("_imagenet", "_shift"))
    return m.dropna(subset=["top1_imagenet", "top1_shift"]).reset_index(drop=True)


def fit_baseline(imagenet_df: pd.DataFrame, shift_df: pd.DataFrame) -> Baseline:
    """Least-squares fit of the logit-space line over the rows of `in1k_only` models present in both
    frames (timm's results CSV columns: model, img_size, top1 in percent)."""
    rows = matched_rows(imagenet_df, shift_df)
    rows = rows[rows["model"].map(in1k_only)]
    if len(rows) < 2:
        raise ValueError(f"the effective-robustness baseline needs at least 2 ImageNet-1k-only rows, got {len(rows)}")
    x, y = logit(rows["top1_imagenet"]), logit(rows["top1_shift"])
    design = np.stack([x, np.ones_like(x)], axis=1)                            # (N, 2)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return Baseline(a=float(a), b=float(b), n_rows=int(len(rows)))


def effective_robustness(imagenet_top1, shift_top1, baseline: Baseline):
    """Shift top-1 minus what `baseline` predicts from the ImageNet top-1, in points (inputs in
    percent; floats or arrays)."""
    return _scalar_or_array(np.asarray(shift_top1, dtype=np.float64) - baseline.predict(imagenet_top1))


def robustness_table(imagenet_df: pd.DataFrame, shift_df: pd.DataFrame, baseline: Baseline) -> pd.DataFrame:
    """One row per (model, img_size) in both frames: top1_imagenet, top1_shift, predicted (what the
    baseline expects), effective_robustness (points), in1k_only (a row of the baseline's fit)."""
    rows = matched_rows(imagenet_df, shift_df)
    rows["predicted"] = baseline.predict(rows["top1_imagenet"].to_numpy())
    rows["effective_robustness"] = rows["top1_shift"] - rows["predicted"]
    rows["in1k_only"] = rows["model"].map(in1k_only)
    return rows


@functools.cache
def published_baseline(shift: str) -> Baseline:
    """The baseline of shift set `shift` (v2, sketch, r, a) fitted on timm's packaged cloud
    (vitbench/catalog/published_all/)."""
    from vitbench.data.specs import published_cloud

    if shift not in ER_SETS:
        raise KeyError(f"no effective-robustness baseline for {shift!r}. Available: {', '.join(ER_SETS)}")
    return fit_baseline(published_cloud("imagenet"), published_cloud(shift))


__all__ = ["ER_SETS", "CLIP", "NOT_IN1K_PREFIXES", "in1k_only", "logit", "Baseline", "matched_rows",
           "fit_baseline", "effective_robustness", "robustness_table", "published_baseline"]
