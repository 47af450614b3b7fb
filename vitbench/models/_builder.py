"""Architectures as data, the one registry of them, and the one builder every family goes through.

- `SIZES`: the one table of model sizes (big_vision's `decode_variant`): width, depth, heads, mlp ratio.
- `ArchSpec`: one architecture = a size, a patch size, an image size and the family's settings.
- `ModelFamily`: one family = its name, the title reports show, its constructor, its
  `checkpoint_filter_fn` and its table of ArchSpecs.
- `register_family(family)`: registers every architecture of a family's table under its name; the
  registry maps each architecture to its family and is the only one (`model_family`, `get_builder`,
  `list_architectures` and `arch_spec` all read it).
- `build_model(arch, ...)`: the builder (timm's `build_model_with_cfg` in spirit): it resolves the
  spec, constructs the model, binds the family's `checkpoint_filter_fn`, sets the data config and
  checks the catalog's input size against the architecture's.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import torch
import torch.nn as nn


class Size(NamedTuple):
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


# Sizes by name. ViT (Ti/S/B/L/H) from the ViT and DeiT papers; the SBB sizes ("searching for better
# baselines": wee .. betwixt) and timm's GPU-shaped SO150M variants from timm's vision_transformer.py;
# SoViT-400M from "Getting ViT in Shape" (its MLP width 4304 = int(1152 * 3.7362)).
SIZES: dict[str, Size] = {
    "tiny": Size(192, 12, 3),
    "small": Size(384, 12, 6),
    "base": Size(768, 12, 12),
    "large": Size(1024, 24, 16),
    "huge": Size(1280, 32, 16),
    "base_plus": Size(896, 12, 14),      # ViT-B+ (timm's rel-pos B/32+)
    "giant": Size(1408, 40, 16, 6144 / 1408),      # EVA-01 g/14 (timm's eva.py): MLP width 6144
    "wee": Size(256, 14, 4, 5.0),
    "pwee": Size(256, 16, 4, 5.0),
    "little": Size(320, 14, 5, 5.6),
    "medium": Size(512, 12, 8),
    "mediumd": Size(512, 20, 8),
    "betwixt": Size(640, 12, 10),
    "so150m": Size(896, 18, 14, 2.572),
    "so150m2": Size(832, 21, 13, 34 / 13),
    "so400m": Size(1152, 27, 16, 3.7362),
}


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: its size (a key of SIZES), patch and image size, and the family's settings
    (any model constructor argument; a `size` field such as mlp_ratio set here wins over the table)."""
    size: str
    patch_size: int
    img_size: int
    settings: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"ArchSpec size {self.size!r} is not in SIZES ({', '.join(SIZES)})")
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    def kwargs(self) -> dict:
        s = SIZES[self.size]
        return {**dict(embed_dim=s.embed_dim, depth=s.depth, num_heads=s.num_heads, mlp_ratio=s.mlp_ratio,
                       patch_size=self.patch_size, img_size=self.img_size), **self.settings}


@dataclass(frozen=True)
class ModelFamily:
    """A model family (one module of vitbench.models): its constructor, its checkpoint filter and its
    architecture table. Not the catalog's `FamilyCfg`, which holds a family's prose and papers."""
    name: str                                          # the module's name: vision_transformer, eva, ...
    title: str                                         # what a report shows and filters on: 'ViT', 'EVA / RoPE ViT'
    make: Callable[..., nn.Module]                     # (**kwargs) -> model
    checkpoint_filter_fn: Callable[[dict, nn.Module], dict]
    archs: Mapping[str, ArchSpec]


# The one registry: architecture name -> the family that builds it (filled by register_family as each
# family module is imported).
_FAMILIES: dict[str, ModelFamily] = {}


def build_model(arch: str, num_classes: int | None = None, cfg=None, **overrides) -> nn.Module:
    """The model of registered architecture `arch`; `overrides` replace any of its settings
    (e.g. depth=2, img_size=128).

    num_classes: head size; None gives the architecture's default, timm's: 1000 unless its settings
        say otherwise (the head of timm's default pretrained config for it, e.g. 0 for an image tower).

    cfg: the checkpoint's CheckpointCfg, if any. Its input size must be the architecture's (a
        ValueError naming both otherwise, unless img_size is overridden); it gives the data config.
    The model gets `architecture`, `checkpoint_cfg`, `data_config` and the family's
    `checkpoint_filter_fn` (the one place a family remaps keys; weights.read_state_dict unwraps).
    """
    from vitbench.data.config import DataConfig

    family = model_family(arch)
    spec = family.archs[arch]
    if cfg is not None and "img_size" not in overrides:
        check_input_size(arch, cfg.input_size, f"checkpoint {cfg.name!r}")
    head = {} if num_classes is None else {"num_classes": num_classes}
    model = family.make(**{**spec.kwargs(), **head, **overrides})
    model.architecture = arch
    model.checkpoint_cfg = cfg
    model.checkpoint_filter_fn = family.checkpoint_filter_fn
    size = overrides.get("img_size", spec.img_size)
    if cfg is not None:
        model.data_config = replace(DataConfig.from_checkpoint(cfg), input_size=(3, size, size))
    else:   # a bare architecture: timm's generic default
        model.data_config = DataConfig((3, size, size), 0.9, "center", "bicubic", (0.5,) * 3, (0.5,) * 3)
    return model


def register_family(family: ModelFamily) -> ModelFamily:
    """Register every architecture of `family.archs` under its name; an architecture claimed by two
    families is a ValueError."""
    for arch in family.archs:
        if arch in _FAMILIES and _FAMILIES[arch] is not family:
            raise ValueError(f"architecture {arch!r} is in two families ({_FAMILIES[arch].name}, {family.name})")
        _FAMILIES[arch] = family
    return family


def model_family(architecture: str) -> ModelFamily:
    """The family that builds `architecture`.

    Raises:
        UnknownModelError: `architecture` is not registered (the message suggests close names).
    """
    try:
        return _FAMILIES[architecture]
    except KeyError:
        from vitbench.catalog.registry import UnknownModelError, suggest

        raise UnknownModelError(
            f"Unknown architecture {architecture!r}.{suggest(architecture, _FAMILIES)} "
            f"Available: {', '.join(sorted(_FAMILIES))}"
        ) from None


def get_builder(architecture: str) -> Callable[..., nn.Module]:
    """`architecture`'s builder, `builder(num_classes=None, **overrides) -> nn.Module` (None: the
    architecture's default head); an unknown name raises UnknownModelError."""
    model_family(architecture)
    return partial(build_model, architecture)


def list_architectures() -> list[str]:
    """Every registered architecture name, sorted."""
    return sorted(_FAMILIES)


def arch_spec(architecture: str) -> ArchSpec:
    return model_family(architecture).archs[architecture]


def architecture_size(architecture: str) -> str:
    """The size word of `architecture` (a key of SIZES: tiny, betwixt, so400m, ...)."""
    return arch_spec(architecture).size


def check_input_size(arch: str, input_size, where: str) -> None:
    """The catalog's input size must be the architecture's (timm's pretrained cfg and model agree)."""
    spec = arch_spec(arch) if arch in _FAMILIES else None
    if spec is not None and tuple(input_size)[-1] != spec.img_size:
        raise ValueError(f"{where}: input_size {tuple(input_size)} does not match architecture {arch!r}, "
                         f"which is built for {spec.img_size}x{spec.img_size}")


def drop_derived(state_dict: dict[str, torch.Tensor], suffixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """`state_dict` without the derived (never learned) entries ending in `suffixes`."""
    return {k: v for k, v in state_dict.items() if not k.endswith(suffixes)}
