#!/usr/bin/env python3
"""Print vitbench's fp32 inference throughput per architecture (random-init weights).

    python scripts/benchmark_models.py                         # a few architectures, CPU (+ CUDA if present)
    python scripts/benchmark_models.py --all --device cuda --batch-size 256
    python scripts/benchmark_models.py vit_base_patch16_224 --compare-eager-math

--compare-eager-math also times the same model with attention computed as explicit matmuls
(softmax(q @ k^T * scale) @ v, what a pre-SDPA ViT does) in the same process, and prints the
SDPA / explicit-math speed ratio. Figures are printed, never asserted: this is not a test.
"""
from __future__ import annotations

import argparse
import contextlib
import fnmatch
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitbench.bench import BenchOptions, build_model, time_model  # noqa: E402
from vitbench.catalog.registry import get_checkpoint, list_models  # noqa: E402
from vitbench.stats import count_stats  # noqa: E402

DEFAULT_ARCHS = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_medium_patch16_rope_reg1_gap_256",
                 "vit_base_patch16_224", "vit_relpos_base_patch16_clsgap_224")


def explicit_math_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                            enable_gqa=False):
    """softmax(q @ k^T * scale + mask) @ v, in eager ops (inference only: no dropout)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    attn = (q * scale) @ k.transpose(-2, -1)                 # (B, H, L, S)
    if is_causal:
        L, S = attn.shape[-2:]
        causal = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        attn = attn.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        attn = attn.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else attn + attn_mask
    return attn.softmax(dim=-1) @ v                          # (B, H, L, Ev)


@contextlib.contextmanager
def eager_math_attention():
    """Every `F.scaled_dot_product_attention` call inside runs `explicit_math_attention`."""
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = explicit_math_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def checkpoint_of(arch: str) -> str:
    """The first registered checkpoint of `arch` (gives the input size)."""
    for name in list_models():
        if get_checkpoint(name).architecture == arch:
            return name
    raise SystemExit(f"no registered checkpoint has architecture {arch!r}")


def architectures(patterns: list[str], all_archs: bool) -> list[str]:
    archs = list(dict.fromkeys(get_checkpoint(n).architecture for n in list_models()))
    if all_archs:
        return archs
    if not patterns:
        return [a for a in DEFAULT_ARCHS if a in archs]
    return [a for a in archs if any(fnmatch.fnmatchcase(a, p) for p in patterns)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archs", nargs="*", help="architecture names or patterns (default: a few)")
    p.add_argument("--all", action="store_true", help="every registered architecture")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (CPU, plus CUDA when available)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the benchmark's per-device default")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for CPU runs")
    p.add_argument("--compare-eager-math", action="store_true",
                   help="also time explicit-math attention and print the SDPA/math ratio")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, fp32, random-init weights")
    header = f"{'arch':<40} {'dev':>4} {'img':>4} {'bs':>4} {'samples/s':>10} {'(min-max)':>17} {'GFLOP/s':>8}"
    if args.compare_eager_math:
        header += f" {'math s/s':>10} {'sdpa/math':>9}"
    for device in devices:
        print(header)
        for arch in architectures(args.archs, args.all):
            name = checkpoint_of(arch)
            opts = BenchOptions(batch_size=args.batch_size, warmup_steps=args.warmup, timed_steps=args.steps,
                                repeats=args.repeats)
            s, img = opts.settings(device), get_checkpoint(name).img_size
            model = build_model(name, device, "fp32", opts)
            dev = torch.device(device)
            t = time_model(model, s.batch_size, img, dev, "fp32", False, s)
            gflops = 2 * count_stats(name).gmacs * t.samples_per_sec
            line = (f"{arch:<40} {device:>4} {img:>4} {s.batch_size:>4} {t.samples_per_sec:>10.2f} "
                    f"{f'({t.spread[0]:.2f}-{t.spread[1]:.2f})':>17} {gflops:>8.1f}")
            if args.compare_eager_math:
                with eager_math_attention():
                    m = time_model(model, s.batch_size, img, dev, "fp32", False, s)
                line += f" {m.samples_per_sec:>10.2f} {t.samples_per_sec / m.samples_per_sec:>9.2f}"
            print(line, flush=True)
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
