"""Architectures as data, and the one builder every family goes through.

- `SIZES`: the one table of model sizes (big_vision's `decode_variant`): width, depth, heads, mlp ratio.
- `ArchSpec`: one architecture = a size, a patch size, an image size and the family's settings.
- `register_family(family)`: registers every architecture of a family's table under its name.
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

from vitbench.models._registry import register_model


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
class Family:
    """A model family: its constructor, its checkpoint filter and its architecture table."""
    name: str
    make: Callable[..., nn.Module]                     # (**kwargs) -> model
    checkpoint_filter_fn: Callable[[dict, nn.Module], dict]
    archs: Mapping[str, ArchSpec]


_FAMILY_OF: dict[str, Family] = {}


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

    family = _FAMILY_OF[arch]
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


def register_family(family: Family) -> Family:
    """Register every architecture of `family.archs` under its name (one builder signature for all)."""
    for arch in family.archs:
        if arch in _FAMILY_OF and _FAMILY_OF[arch] is not family:
            raise ValueError(f"architecture {arch!r} is in two families ({_FAMILY_OF[arch].name}, {family.name})")
        _FAMILY_OF[arch] = family
        register_model(arch, partial(build_model, arch))
    return family


def family_of(arch: str) -> Family:
    return _FAMILY_OF[arch]


def arch_spec(arch: str) -> ArchSpec:
    return _FAMILY_OF[arch].archs[arch]


def check_input_size(arch: str, input_size, where: str) -> None:
    """The catalog's input size must be the architecture's (timm's pretrained cfg and model agree)."""
    spec = arch_spec(arch) if arch in _FAMILY_OF else None
    if spec is not None and tuple(input_size)[-1] != spec.img_size:
        raise ValueError(f"{where}: input_size {tuple(input_size)} does not match architecture {arch!r}, "
                         f"which is built for {spec.img_size}x{spec.img_size}")


def drop_derived(state_dict: dict[str, torch.Tensor], suffixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """`state_dict` without the derived (never learned) entries ending in `suffixes`."""
    return {k: v for k, v in state_dict.items() if not k.endswith(suffixes)}
