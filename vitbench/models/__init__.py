"""Native PyTorch ViT families whose parameter names are timm's state-dict keys.

`create_model` builds the architecture of a registered checkpoint (or a bare architecture name),
attaches the checkpoint's config and data config, and loads weights when asked.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from vitbench.data.config import DataConfig
from vitbench.models._registry import get_builder, list_architectures, register_model
from vitbench.registry import get_checkpoint, is_registered

# Each family module registers its architectures on import.
# TODO(skeleton): these become plain imports once every family module has landed.
import importlib as _importlib

for _family in ("vision_transformer", "vision_transformer_relpos", "eva", "vision_transformer_hybrid"):
    try:
        _importlib.import_module(f"vitbench.models.{_family}")
    except ModuleNotFoundError as _e:
        if _e.name != f"vitbench.models.{_family}":
            raise


def _default_data_config(model: nn.Module) -> DataConfig:
    size = getattr(model, "img_size", 224)
    return DataConfig((3, size, size), 0.9, "center", "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def create_model(name: str, pretrained: bool = False, weights: str | Path | None = None,
                 num_classes: int | None = None, weights_dir: str | Path | None = None,
                 **kwargs) -> nn.Module:
    """Build checkpoint `name` (`arch.tag`, a registered Hub id, or a bare architecture name).

    pretrained: load the checkpoint's weights from `weights_dir`, the local HF cache or the Hub.
    weights: an explicit file or transformers folder (implies pretrained).
    num_classes: head size; defaults to the checkpoint's. Loading weights with a different head
        size is an error, never a silent partial load.
    """
    cfg = get_checkpoint(name) if is_registered(name) else None
    arch = cfg.architecture if cfg else name
    builder = get_builder(arch)
    if num_classes is None:
        num_classes = cfg.num_classes if cfg else 1000
    model = builder(num_classes=num_classes, **kwargs)
    model.checkpoint_cfg = cfg
    model.data_config = DataConfig.from_checkpoint(cfg) if cfg else _default_data_config(model)
    if pretrained or weights is not None:
        from vitbench.weights import load_pretrained

        load_pretrained(model, name, weights=weights, weights_dir=weights_dir)
    return model


__all__ = ["create_model", "list_architectures", "register_model"]
