"""Architecture builders by name. Families register their tables through `_builder.register_family`;
every builder has the one signature `builder(num_classes=None, **overrides) -> nn.Module` (None: the
architecture's default head)."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register `builder` under `name`; a second, different builder for the same name is an error."""
    if name in _ARCHITECTURES and _ARCHITECTURES[name] is not builder:
        raise ValueError(f"architecture {name!r} is registered twice")
    _ARCHITECTURES[name] = builder
    return builder


def list_architectures() -> list[str]:
    return sorted(_ARCHITECTURES)


def get_builder(name: str) -> Callable[..., nn.Module]:
    from vitbench.catalog.registry import UnknownModelError, suggest

    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown architecture {name!r}.{suggest(name, _ARCHITECTURES)} "
            f"Available: {', '.join(sorted(_ARCHITECTURES))}"
        ) from None
