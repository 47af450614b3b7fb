"""Scoring helpers the eval engine calls on logits.

    top1_1000way(logits, targets_1k) -> BoolTensor     # argmax over all 1000 classes == target

ImageNet-A and -R are scored as timm scores them (logits restricted to their 200 classes), and the
stored predictions keep the top-5 over that subset only, so the 1000-way number (the protocol of
Taori et al. 2020 and of the OpenCLIP robustness tables, where a class outside the 200 counts as
wrong) cannot be recovered afterwards: it has to be taken from the full logits at eval time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def top1_1000way(logits: torch.Tensor, targets_1k: torch.Tensor) -> torch.Tensor:
    """Per image, whether the argmax over all of `logits`' classes (B, 1000) equals `targets_1k` (B,),
    a 1000-class index (A/R loader targets are subset positions: map them with
    `vitbench.catalog.subset_indices` first). Returns a bool tensor (B,) on the logits' device; sum
    it over batches for the count right. No value of the targets is read on the host (no device
    sync per batch): the engine checks them on the host before."""
    import torch

    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    targets_1k = torch.as_tensor(targets_1k, device=logits.device).reshape(-1).long()
    if targets_1k.shape[0] != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows of logits but {targets_1k.shape[0]} targets")
    return logits.argmax(dim=1) == targets_1k


__all__ = ["top1_1000way"]
