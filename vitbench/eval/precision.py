"""The four precisions a job can run at, in one place (evaluation, benchmark, run, CLI).

    fp32      model and input fp32
    amp_bf16  fp32 weights, torch.autocast to bfloat16
    amp_fp16  fp32 weights, torch.autocast to float16
    bf16      model and input cast to bfloat16

torch is imported inside the functions, so the CLI can list the choices without loading it.
"""
from __future__ import annotations

import contextlib

PRECISIONS = ("fp32", "amp_bf16", "amp_fp16", "bf16")


def check(precision: str) -> str:
    """`precision` if it is one of PRECISIONS, else a ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def autocast(device, precision: str):
    """The autocast context of `precision` on `device` (a str or torch.device); a no-op otherwise."""
    import torch

    dtype = {"amp_bf16": torch.bfloat16, "amp_fp16": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def input_dtype(precision: str):
    """The dtype inputs (and, for bf16, the model) are cast to."""
    import torch

    return torch.bfloat16 if precision == "bf16" else torch.float32
