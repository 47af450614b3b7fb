"""Calibration of the top-1 confidence: expected calibration error and the reliability diagram.

    reliability(top1_prob, correct, n_bins=15) -> DataFrame     # per bin: lo, hi, count, confidence, accuracy
    ece(top1_prob, correct, n_bins=15) -> float                 # expected calibration error, in [0, 1]
    reliability_diagram(bins, path, title=...) -> Path          # deterministic PNG

The stored predictions keep only the top-5 probabilities, so everything here is computed from the
top-1 probability and whether the top-1 class was right. That is all torchmetrics'
`multiclass_calibration_error` uses too (it takes the max softmax probability and argmax == target
from the full matrix), so the numbers are the same: its semantics are followed exactly.

  - confidences are float32 (torchmetrics casts them);
  - bin edges are torch.linspace(0, 1, n_bins + 1) in float32, and a confidence c falls in bin i
    with edge[i] <= c < edge[i+1] (torch.bucketize(right=True) - 1);
  - so a confidence of exactly 1.0 (common for large models: softmax rounds to 1 in float32) lands
    in a bin of its own past the last edge, [1, 1]: `reliability` returns it as row n_bins;
  - ECE (L1) = sum over bins of count/N * |accuracy - mean confidence|.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_BINS = 15


def bin_edges(n_bins: int = N_BINS) -> np.ndarray:
    """The n_bins + 1 edges torchmetrics uses: torch.linspace(0, 1, n_bins + 1) in float32."""
    import torch

    return torch.linspace(0, 1, n_bins + 1, dtype=torch.float32).numpy()


def _inputs(top1_prob, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(top1_prob, dtype=np.float32).reshape(-1)
    right = np.asarray(correct).reshape(-1).astype(bool)
    if conf.shape != right.shape:
        raise ValueError(f"top1_prob has {conf.size} values but correct has {right.size}")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0 or conf.max() > 1):
        raise ValueError("top1_prob must be probabilities in [0, 1]")
    return conf, right


def reliability(top1_prob, correct, n_bins: int = N_BINS) -> pd.DataFrame:
    """Per-bin statistics for a reliability diagram, n_bins + 1 rows: bins i = 0..n_bins-1 cover
    [lo, hi) of the top-1 confidence, and row n_bins holds the confidences of exactly 1.0 (see the
    module docstring). Columns: bin, lo, hi, count, confidence (mean top-1 probability in the bin),
    accuracy (fraction right in the bin); an empty bin has count 0 and NaN confidence and accuracy."""
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    conf, right = _inputs(top1_prob, correct)
    edges = bin_edges(n_bins)
    idx = np.searchsorted(edges, conf, side="right") - 1                      # torch.bucketize(right=True) - 1
    idx = np.clip(idx, 0, n_bins)                                             # only conf < 0 could go below
    count = np.bincount(idx, minlength=n_bins + 1)
    conf_sum = np.bincount(idx, weights=conf.astype(np.float64), minlength=n_bins + 1)
    right_sum = np.bincount(idx, weights=right.astype(np.float64), minlength=n_bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / count, np.nan)
        accuracy = np.where(count > 0, right_sum / count, np.nan)
    lo = np.append(edges[:-1], 1.0).astype(np.float64)
    hi = np.append(edges[1:], 1.0).astype(np.float64)
    return pd.DataFrame({"bin": np.arange(n_bins + 1), "lo": lo, "hi": hi, "count": count.astype(np.int64),
                         "confidence": mean_conf, "accuracy": accuracy})


def ece_from_bins(bins: pd.DataFrame) -> float:
    """Expected calibration error (L1) of a `reliability` table: sum of count/N * |accuracy - confidence|."""
    used = bins[bins["count"] > 0]
    total = int(used["count"].sum())
    if total == 0:
        raise ValueError("no predictions to compute a calibration error from")
    gap = (used["accuracy"] - used["confidence"]).abs()
    return float((gap * used["count"]).sum() / total)


def ece(top1_prob, correct, n_bins: int = N_BINS) -> float:
    """Expected calibration error of the top-1 confidence, in [0, 1] (x100 for points): n_bins
    equal-width bins, L1, torchmetrics' `multiclass_calibration_error(..., n_bins, norm='l1')`."""
    return ece_from_bins(reliability(top1_prob, correct, n_bins))


def frame_confidence(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 probability, top-1 correct) of a prediction frame (`vitbench.eval.predictions.read_predictions`)."""
    prob = np.array([float(p[0]) for p in frame["top5_prob"]], dtype=np.float32)
    right = np.array([int(i[0]) == int(t) for i, t in zip(frame["top5_idx"], frame["target"], strict=True)], dtype=bool)
    return prob, right


def reliability_diagram(bins: pd.DataFrame, path: Path, title: str = "Reliability diagram") -> Path:
    """Draw a `reliability` table as a PNG at `path`: accuracy per confidence bin as bars, the bin's
    mean confidence as a tick and the gap between them in red, the diagonal of perfect calibration,
    the [1, 1] bin (if it has images) as a marker at confidence 1, the image count per bin below
    (symlog scale), and the ECE in the title.
    Deterministic bytes (Agg backend, fixed size and dpi, no 'Software' metadata); written only when
    the bytes differ from the file on disk."""
    from vitbench.analysis.plots import plt, save_png

    regular, ones = bins.iloc[:-1], bins.iloc[-1]
    used = regular[regular["count"] > 0]
    width = (regular["hi"] - regular["lo"]).to_numpy()
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(6.4, 7.8), dpi=100, sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    ax.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1, label="perfect calibration", zorder=5)
    ax.bar(used["lo"], used["accuracy"], width=width[used.index], align="edge", color="#9ec5ea",
           edgecolor="#1f5f99", linewidth=0.7, label="accuracy in bin", zorder=2)
    centre = (used["lo"] + used["hi"]) / 2
    ax.bar(centre, used["confidence"] - used["accuracy"], bottom=used["accuracy"], width=0.55 * width[used.index],
           color="#d62728", alpha=0.45, linewidth=0, label="gap to the bin's mean confidence", zorder=3)
    ax.scatter(centre, used["confidence"], marker="_", s=90, linewidths=1.6, color="#000000", zorder=4,
               label="mean confidence in bin")
    if ones["count"] > 0:
        ax.scatter([1.0], [ones["accuracy"]], marker="D", s=36, color="#ff7f0e", zorder=4, clip_on=False,
                   label=f"confidence = 1.0 ({int(ones['count']):,} images)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    fig.suptitle(f"{title}\nECE {100 * ece_from_bins(bins):.2f}% ({len(regular)} bins, "
                 f"{int(bins['count'].sum()):,} images)", fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    axn.bar(regular["lo"], regular["count"], width=width, align="edge", color="#7f7f7f", edgecolor="#404040",
            linewidth=0.5)
    if ones["count"] > 0:
        axn.bar([1.0], [ones["count"]], width=0.012, color="#ff7f0e")
    axn.set_yscale("symlog", linthresh=1)
    axn.set_ylabel("images")
    axn.set_xlabel("top-1 confidence")
    axn.grid(True, linewidth=0.4, alpha=0.5)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.84, bottom=0.07)
    return save_png(fig, path)


__all__ = ["N_BINS", "bin_edges", "reliability", "ece_from_bins", "ece", "frame_confidence", "reliability_diagram"]
