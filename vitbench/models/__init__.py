"""Native PyTorch ViT families whose parameter names are timm's state-dict keys.

`create_model` builds the architecture of a registered checkpoint (or a bare architecture name),
attaches the checkpoint's config and data config, and loads weights when asked.

    model_family(architecture) -> ModelFamily   name, title, make, checkpoint_filter_fn, archs
    architecture_size(architecture) -> str      the size word of its ArchSpec (tiny, betwixt, ...)
    token_shapes(name) -> Shapes                width, patch, grid, prefix (and tokens) of its model
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from vitbench.catalog.registry import get_checkpoint, is_registered
from vitbench.catalog.user import is_source_name

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
from vitbench.models._builder import (
    SIZES,
    ArchSpec,
    ModelFamily,
    arch_spec,
    architecture_size,
    build_model,
    get_builder,
    list_architectures,
    model_family,
    register_family,
)
from vitbench.models.transformers_format import (
    build_from_transformers_folder,
    checkpoint_facts,
    create_from_transformers_folder,
)


def create_model(name: str, pretrained: bool = False, weights: str | Path | None = None,
                 num_classes: int | None = None, weights_dir: str | Path | None = None,
                 **kwargs) -> nn.Module:
    """Build the model of a checkpoint or architecture, with its weights when asked.

    A transformers-format checkpoint (a folder with config.json, or a registered checkpoint whose
    weights_format is 'transformers') is built from its own config.json, takes its data config from
    preprocessor_config.json and its labels from config.json, then loads through the family's
    checkpoint_filter_fn.

    Args:
        name: a registered checkpoint (`arch.tag`, or a registered Hub id such as
            'google/vit-hybrid-base-bit-384'), a user checkpoint (a `--catalog` entry, or
            'hf-hub:ORG/NAME[@REV]' / 'local-dir:PATH' in timm's format), or a bare architecture name
            (random init, timm's generic data config).
        pretrained: load the checkpoint's weights from `weights_dir`, the local HF cache or the Hub.
        weights: an explicit weight file or transformers folder (implies pretrained).
        num_classes: head size; None gives the checkpoint's (a bare architecture: its default head,
            timm's). Loading weights with a different head size is an error, never a partial load.
        weights_dir: a folder of `<checkpoint>.safetensors` (or .pth/.bin, or a transformers folder
            named after the checkpoint), looked in before the HF cache and the Hub.
        **kwargs: constructor overrides of the architecture's settings (depth=1, img_size=128, ...).

    Returns:
        The model in train mode (call `.eval()`), carrying `architecture`, `checkpoint_cfg`,
        `data_config` and `checkpoint_filter_fn`, and `weights_info` when weights were loaded.

    Raises:
        UnknownModelError: `name` is neither a registered checkpoint nor an architecture.
        WeightsNotFoundError: weights were asked for and found nowhere (the message says where it
            looked and how to provide them).
        WeightsLoadError: the weights do not fit the model (keys or shapes named).

    The transformers path is `transformers_format.create_from_transformers_folder`; the model types it
    builds are the rows of `transformers_format.FORMATS`.
    """
    cfg = resolve_checkpoint(name) if is_registered(name) or is_source_name(name) else None
    resolved = _resolve_transformers(name, cfg, pretrained, weights, weights_dir)
    if resolved is not None:
        return _create_from_transformers(name, cfg, resolved, num_classes, **kwargs)
    if cfg is not None and cfg.extra.get("config_dir") and not (pretrained or weights is not None):
        # a transformers folder the user brought: its own config.json, not the nearest architecture's
        return build_from_transformers_folder(cfg.extra["config_dir"], num_classes, cfg, **kwargs)
    arch = cfg.architecture if cfg else name
    model_family(arch)                    # an unknown name: UnknownModelError with suggestions
    if num_classes is None and cfg is not None:
        num_classes = cfg.num_classes
    if cfg is not None and cfg.weights_format == "transformers":
        kwargs.setdefault("norm_eps", _TRANSFORMERS_LAYER_NORM_EPS)   # no config.json at hand
    if cfg is not None:
        kwargs = {**cfg.extra.get("model_args", {}), **kwargs}         # a timm config.json's model_args
    model = build_model(arch, num_classes=num_classes, cfg=cfg, **kwargs)
    if pretrained or weights is not None:
        from vitbench.weights import load_pretrained

        load_pretrained(model, name, weights=weights, weights_dir=weights_dir)
    return model


def user_context():
    """What the catalog needs from this floor to register user checkpoints (catalog.user.Context)."""
    from vitbench.catalog.user import CatalogError, Context
    from vitbench.data.specs import DATASETS
    from vitbench.weights import WeightsNotFoundError, hub_file

    def fetch(repo: str, filename: str, revision: str | None) -> Path:
        try:
            return hub_file(repo, filename, revision)
        except WeightsNotFoundError as e:
            raise CatalogError(str(e)) from None

    return Context(architectures=list_architectures(), img_size=lambda a: arch_spec(a).img_size,
                   datasets=tuple(DATASETS), fetch=fetch, read_transformers=checkpoint_facts)


def register_catalog(path: str | Path) -> list[str]:
    """Register a user catalog file's checkpoints beside the zoo (see vitbench.catalog.user).

    Returns:
        The names registered.

    Raises:
        CatalogError: a YAML error, an unknown architecture (with the closest names), a name that
            collides with a registered one, a bad field: the file, line and field named.
    """
    from vitbench.catalog.registry import register_catalog as register

    return register(path, user_context())


def resolve_checkpoint(name: str):
    """The CheckpointCfg of a registered name, or of an `hf-hub:`/`local-dir:` name (registered on first
    use, its config.json read from the folder, the HF cache or the Hub)."""
    from vitbench.catalog.registry import register_source

    if is_source_name(name) and not is_registered(name):
        return register_source(name, user_context())
    return get_checkpoint(name)


# transformers' ViT default layer_norm_eps (timm's is 1e-6), for a transformers checkpoint built
# without its config.json (no weights, or a bare weight file)
_TRANSFORMERS_LAYER_NORM_EPS = 1e-12


def _resolve_transformers(name, cfg, pretrained, weights, weights_dir):
    """The ResolvedWeights of a transformers-format folder for this request, else None (a timm-format
    folder, whose config.json names an `architecture`, loads like a weight file)."""
    if weights is not None and _is_transformers_config(Path(weights).expanduser() / "config.json"):
        from vitbench.weights import resolve_weights

        return resolve_weights(name, weights=weights)
    if cfg is not None and cfg.weights_format == "transformers" and (pretrained or weights is not None):
        from vitbench.weights import resolve_weights

        resolved = resolve_weights(name, weights=weights, weights_dir=weights_dir)
        if (Path(resolved.path) / "config.json").is_file():
            return resolved
    return None    # a bare weight file (its keys are remapped by the family's checkpoint_filter_fn)


def _is_transformers_config(path: Path) -> bool:
    import json

    try:
        return path.is_file() and "architecture" not in json.loads(path.read_text())
    except (OSError, ValueError):
        return path.is_file()          # unreadable: the transformers path says what is wrong with it


def _create_from_transformers(name, cfg, resolved, num_classes, **kwargs) -> nn.Module:
    """The transformers folder `resolved` built from its config.json (sizes from the config, not the
    registered architecture's) with its weights loaded."""
    return create_from_transformers_folder(resolved.path, num_classes=num_classes, cfg=cfg,
                                           source=resolved.source, **kwargs)



@dataclass(frozen=True)
class Shapes:
    """The token and feature shapes of a model: what does not depend on its depth or its weights."""
    width: int                   # embed_dim
    patch: int                   # pixels per token side (a hybrid: its backbone's stride times its patch)
    grid: int                    # patches per side: img_size // patch
    prefix: int                  # class, distillation and register tokens before the patch tokens

    @property
    def tokens(self) -> int:
        return self.prefix + self.grid * self.grid


@functools.cache
def token_shapes(name: str) -> Shapes:
    """The token shapes of checkpoint or architecture `name`'s model.

    Built on the meta device (no memory, no compute) with one block: the token and feature shapes do
    not depend on depth, and building every block of every model took seconds per report.
    """
    with torch.device("meta"):
        m = create_model(name, depth=1)
    return Shapes(m.embed_dim, m.patch_size, m.img_size // m.patch_size, m.num_prefix_tokens)


__all__ = [
    "create_model", "create_from_transformers_folder", "build_model", "get_builder", "list_architectures", "register_family", "model_family",
    "architecture_size", "token_shapes", "ModelFamily", "ArchSpec", "Shapes", "SIZES",
]
