"""Accuracy per ImageNet class, from one prediction frame.

    per_class_accuracy(frame) -> DataFrame      # class, wnid, name, images, correct, top1, top5
    worst_classes(frame, k=10) -> DataFrame     # the k classes with the lowest top-1
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vitbench.catalog import imagenet_lemmas, imagenet_synsets


def per_class_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ImageNet class the frame has images of, by class index: `class` (0..999), `wnid`,
    `name` (the class's lemmas, "tench, Tinca tinca"), `images`, `correct` (top-1 right), `top1` and
    `top5` (percent of the class's images). Targets are 1000-class indices, also for A and R (the
    stored frames map their 200-class subset back)."""
    target = frame["target"].to_numpy(dtype=np.int64)
    if len(target) and (target.min() < 0 or target.max() >= 1000):
        raise ValueError(f"targets must be ImageNet-1k class indices 0..999, got {target.min()}..{target.max()}")
    top5 = np.array([np.asarray(t, dtype=np.int64)[:5] for t in frame["top5_idx"]]).reshape(len(target), -1)
    right1 = top5[:, 0] == target if len(target) else np.zeros(0, bool)
    right5 = (top5 == target[:, None]).any(axis=1) if len(target) else np.zeros(0, bool)
    images = np.bincount(target, minlength=1000)
    correct1 = np.bincount(target, weights=right1.astype(np.float64), minlength=1000).astype(np.int64)
    correct5 = np.bincount(target, weights=right5.astype(np.float64), minlength=1000).astype(np.int64)
    present = np.flatnonzero(images)
    wnids, names = imagenet_synsets(), imagenet_lemmas()
    return pd.DataFrame({
        "class": present,
        "wnid": [wnids[i] for i in present],
        "name": [names[i] for i in present],
        "images": images[present],
        "correct": correct1[present],
        "top1": 100.0 * correct1[present] / images[present],
        "top5": 100.0 * correct5[present] / images[present],
    })


def worst_classes(frame: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The `k` classes with the lowest top-1 (ties: more images first, then class index), as rows of
    `per_class_accuracy`."""
    table = per_class_accuracy(frame)
    order = np.lexsort((table["class"].to_numpy(), -table["images"].to_numpy(), table["top1"].to_numpy()))
    return table.iloc[order[:k]].reset_index(drop=True)


__all__ = ["per_class_accuracy", "worst_classes"]
