"""The golden rule of ../shared/golden/README.md: deterministic weights and input, no file needed."""
from __future__ import annotations

import json
import zlib

import torch
from safetensors.torch import load_file

from conftest import GOLDEN


def golden_tensor(key: str, shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 4294967296 + zlib.crc32(key.encode()))
    t = torch.randn(tuple(shape), generator=g, dtype=torch.float32)
    last = key.rsplit(".", 1)[-1]
    if last == "weight" and len(shape) == 1:
        return 1.0 + 0.1 * t          # norm scales
    if last.startswith("gamma"):
        return 0.1 + 0.05 * t         # layer scale
    return 0.02 * t


def golden_state_dict(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Golden values for every floating tensor of `reference` (a state dict); integer buffers kept."""
    return {k: golden_tensor(k, v.shape) if v.is_floating_point() else v.clone()
            for k, v in reference.items()}


def golden_state_dict_from_manifest(entries) -> dict[str, torch.Tensor]:
    """Golden tensors for a manifest's `state_dict` (float keys only): a list of [key, shape, dtype]
    (the hybrid's manifest) or a dict {key: {"shape": ..., "dtype": ...}} (the other hf/ manifests)."""
    if isinstance(entries, dict):
        entries = [(k, e["shape"], e["dtype"]) for k, e in entries.items()]
    return {k: golden_tensor(k, shape) for k, shape, dtype in entries if "float" in dtype}


def golden_input(input_size) -> torch.Tensor:
    _, h, w = input_size
    return torch.randn((2, 3, h, w), generator=torch.Generator().manual_seed(1234), dtype=torch.float32)


def timm_manifest(arch: str) -> dict:
    return json.loads((GOLDEN / "timm" / f"{arch}.json").read_text())


def timm_outputs(arch: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "timm" / f"{arch}.safetensors"))
