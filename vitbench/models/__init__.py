"""Native PyTorch ViT families whose parameter names are timm's state-dict keys.

`create_model` builds the architecture of a registered checkpoint (or a bare architecture name),
attaches the checkpoint's config and data config, and loads weights when asked.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

# Each family module registers its architectures on import.
from vitbench.models import (  # noqa: E402,F401
    beit,
    deit,
    eva,
    naflexvit,
    vision_transformer,
    vision_transformer_hybrid,
    vision_transformer_relpos,
)
from vitbench.models._builder import build_model
from vitbench.models._registry import get_builder, list_architectures, register_model
from vitbench.models.transformers_format import create_from_transformers_folder
from vitbench.catalog.registry import get_checkpoint, is_registered


def create_model(name: str, pretrained: bool = False, weights: str | Path | None = None,
                 num_classes: int | None = None, weights_dir: str | Path | None = None,
                 **kwargs) -> nn.Module:
    """Build checkpoint `name` (`arch.tag`, a registered Hub id, or a bare architecture name).

    pretrained: load the checkpoint's weights from `weights_dir`, the local HF cache or the Hub.
    weights: an explicit file or transformers folder (implies pretrained).
    num_classes: head size; defaults to the checkpoint's (a bare architecture: its default head, timm's). Loading weights with a different head
        size is an error, never a silent partial load.

    A transformers-format checkpoint (a folder with config.json, or a registered checkpoint whose
    weights_format is 'transformers') is built from its own config.json, takes its data config from
    preprocessor_config.json and its labels from config.json, then loads through the family's
    checkpoint_filter_fn (`transformers_format.create_from_transformers_folder`; the model types it
    builds are the rows of `transformers_format.FORMATS`).
    """
    cfg = get_checkpoint(name) if is_registered(name) else None
    resolved = _resolve_transformers(name, cfg, pretrained, weights, weights_dir)
    if resolved is not None:
        return _create_from_transformers(name, cfg, resolved, num_classes, **kwargs)
    arch = cfg.architecture if cfg else name
    get_builder(arch)                     # an unknown name: UnknownModelError with suggestions
    if num_classes is None and cfg is not None:
        num_classes = cfg.num_classes
    if cfg is not None and cfg.weights_format == "transformers":
        kwargs.setdefault("norm_eps", _TRANSFORMERS_LAYER_NORM_EPS)   # no config.json at hand
    model = build_model(arch, num_classes=num_classes, cfg=cfg, **kwargs)
    if pretrained or weights is not None:
        from vitbench.weights import load_pretrained

        load_pretrained(model, name, weights=weights, weights_dir=weights_dir)
    return model


# transformers' ViT default layer_norm_eps (timm's is 1e-6), for a transformers checkpoint built
# without its config.json (no weights, or a bare weight file)
_TRANSFORMERS_LAYER_NORM_EPS = 1e-12


def _resolve_transformers(name, cfg, pretrained, weights, weights_dir):
    """The ResolvedWeights of a transformers-format folder for this request, else None."""
    if weights is not None and (Path(weights).expanduser() / "config.json").is_file():
        from vitbench.weights import resolve_weights

        return resolve_weights(name, weights=weights)
    if cfg is not None and cfg.weights_format == "transformers" and (pretrained or weights is not None):
        from vitbench.weights import resolve_weights

        resolved = resolve_weights(name, weights=weights, weights_dir=weights_dir)
        if (Path(resolved.path) / "config.json").is_file():
            return resolved
    return None    # a bare weight file (its keys are remapped by the family's checkpoint_filter_fn)


def _create_from_transformers(name, cfg, resolved, num_classes, **kwargs) -> nn.Module:
    """The transformers folder `resolved` built from its config.json (sizes from the config, not the
    registered architecture's) with its weights loaded."""
    return create_from_transformers_folder(resolved.path, num_classes=num_classes, cfg=cfg,
                                           source=resolved.source, **kwargs)


__all__ = ["create_model", "create_from_transformers_folder", "build_model", "list_architectures", "register_model"]
