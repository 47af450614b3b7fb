"""Architecture builders by name (the registry key is the builder function's name, as in timm)."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = fn.__name__
    if name in _ARCHITECTURES and _ARCHITECTURES[name] is not fn:
        raise ValueError(f"architecture {name!r} is registered twice "
                         f"({_ARCHITECTURES[name].__module__} and {fn.__module__})")
    _ARCHITECTURES[name] = fn
    return fn


def list_architectures() -> list[str]:
    return sorted(_ARCHITECTURES)


def get_builder(name: str) -> Callable[..., nn.Module]:
    from vitbench.registry import UnknownModelError, suggest

    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown architecture {name!r}.{suggest(name, _ARCHITECTURES)} "
            f"Available: {', '.join(sorted(_ARCHITECTURES))}"
        ) from None
