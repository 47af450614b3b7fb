"""How two prediction sets of one dataset agree, image by image.

    compare_predictions(frame_a, frame_b) -> Agreement      # n, top1_a/b, diff and its interval,
                                                            # flips, McNemar p, top-5 overlap
    pair_frames(frame_a, frame_b) -> DataFrame              # the images both scored, side by side

A frame is what vitbench writes beside each record (`vitbench.eval.predictions.read_predictions`): columns
`index`, `file`, `target`, `top5_idx` (5 class indices), `top5_prob` (their probabilities).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from vitbench.significance import mcnemar, paired_difference_interval


@dataclass(frozen=True)
class Agreement:
    """Two checkpoints (A, B) on the same images. Percentages are of the `n` paired images."""
    n: int                 # images both frames scored
    top1_a: float          # A's top-1 on those images (%)
    top1_b: float          # B's top-1 on those images (%)
    diff: float            # top1_b - top1_a (points)
    diff_lo: float         # 95% interval of diff (points): Newcombe's paired hybrid score interval
    diff_hi: float
    flips: int             # images whose top-1 class differs between A and B (right or wrong)
    flip_rate: float       # flips / n (%)
    mcnemar_p: float       # exact two-sided McNemar p on the images only one of A, B gets right
    top5_overlap: float    # mean |top5_a ∩ top5_b| / 5, in [0, 1]

    def to_dict(self) -> dict:
        """The fields as plain Python numbers (JSON-safe: no numpy scalars, no NaN)."""
        out = {}
        for k, v in asdict(self).items():
            v = int(v) if k in ("n", "flips") else float(v)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{k} is {v}: not JSON-safe")
            out[k] = v
        return out


def _keys(files: pd.Series, depth: int) -> list[str]:
    """The last `depth` path components of each file ('n01440764/sketch_0.JPEG' at depth 2)."""
    out = []
    for f in files:
        parts = os.path.normpath(str(f)).replace("\\", "/").split("/")
        out.append("/".join(parts[-depth:]))
    return out


def image_keys(frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> tuple[list, list]:
    """The key that names each image in both frames. File names when both frames have every file
    (ImageNet-val names are unique, so runs pair up whatever their data root, layout or order: the
    rule of report.py's `_correct_by_image`); where base names repeat inside a frame (ImageNet-R and
    -Sketch reuse `art_0.jpg` in every class folder) the shortest path suffix that is unique in both
    frames ('n01443537/art_0.jpg'). Otherwise the item index."""
    have = all("file" in f and f["file"].notna().all() and len(f) for f in (frame_a, frame_b))
    if not have:
        return [int(i) for i in frame_a["index"]], [int(i) for i in frame_b["index"]]
    deepest = max(max(len(str(f).replace("\\", "/").split("/")) for f in fr["file"]) for fr in (frame_a, frame_b))
    for depth in range(1, deepest + 1):
        ka, kb = _keys(frame_a["file"], depth), _keys(frame_b["file"], depth)
        if len(set(ka)) == len(ka) and len(set(kb)) == len(kb):
            return ka, kb
    raise ValueError("a prediction frame lists the same file twice")


def pair_frames(frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> pd.DataFrame:
    """The images both frames scored, one row each, sorted by key: columns `key`, `target`, `top5_a`,
    `top5_b` (each a sequence of class indices). A target that differs between the frames for one
    image is an error (the frames are not of the same data)."""
    ka, kb = image_keys(frame_a, frame_b)
    a = pd.DataFrame({"key": ka, "target": frame_a["target"].to_numpy(), "top5": list(frame_a["top5_idx"])})
    b = pd.DataFrame({"key": kb, "target": frame_b["target"].to_numpy(), "top5": list(frame_b["top5_idx"])})
    if a["key"].duplicated().any() or b["key"].duplicated().any():
        raise ValueError("a prediction frame lists the same image index twice")
    both = a.merge(b, on="key", suffixes=("_a", "_b")).sort_values("key", kind="stable")
    bad = both[both["target_a"] != both["target_b"]]
    if len(bad):
        k = bad.iloc[0]
        raise ValueError(f"{len(bad)} paired image(s) have different targets in the two frames "
                         f"(first: {k['key']}: {k['target_a']} vs {k['target_b']}): not the same data")
    return both.rename(columns={"target_a": "target"}).drop(columns="target_b").reset_index(drop=True)


def compare_predictions(frame_a: pd.DataFrame, frame_b: pd.DataFrame) -> Agreement:
    """Agreement of checkpoints A and B over the images both scored (see `pair_frames`).

    diff's interval: Newcombe's hybrid score interval for paired proportions (method 10 of Newcombe,
    Statistics in Medicine 17:2635-2650, 1998; `vitbench.significance.paired_difference_interval`).
    mcnemar_p: the exact binomial McNemar test, two-sided, on the images exactly one of A, B gets right."""
    both = pair_frames(frame_a, frame_b)
    n = len(both)
    if n == 0:
        raise ValueError("the two prediction frames share no image")
    top5_a = np.array([np.asarray(t, dtype=np.int64)[:5] for t in both["top5_a"]])      # (N, 5)
    top5_b = np.array([np.asarray(t, dtype=np.int64)[:5] for t in both["top5_b"]])      # (N, 5)
    target = both["target"].to_numpy(dtype=np.int64)
    right_a, right_b = top5_a[:, 0] == target, top5_b[:, 0] == target
    n_both = int((right_a & right_b).sum())
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    lo, hi = paired_difference_interval(n_both, only_b, only_a, n - n_both - only_a - only_b)
    _, _, p = mcnemar(right_a.tolist(), right_b.tolist(), exact=True)
    flips = int((top5_a[:, 0] != top5_b[:, 0]).sum())
    # |top5_a ∩ top5_b| per image: each of A's five classes found among B's (top-5 classes are distinct)
    overlap = (top5_a[:, :, None] == top5_b[:, None, :]).any(axis=2).sum(axis=1)         # (N,)
    top1_a, top1_b = 100.0 * right_a.mean(), 100.0 * right_b.mean()
    return Agreement(n=n, top1_a=float(top1_a), top1_b=float(top1_b), diff=100.0 * (only_b - only_a) / n,
                     diff_lo=float(lo), diff_hi=float(hi), flips=flips, flip_rate=100.0 * flips / n,
                     mcnemar_p=float(p), top5_overlap=float(overlap.mean() / 5.0))


__all__ = ["Agreement", "compare_predictions", "pair_frames", "image_keys"]
