"""Inference throughput benchmark, in the spirit of timm's benchmark.py.

Each checkpoint's architecture is built with random-init weights and timed on a random input at the
checkpoint's input size: model.eval() under torch.inference_mode(), in the asked precision (fp32;
amp_bf16 / amp_fp16 = autocast; bf16 = model and input cast), optionally torch.compile'd and
channels_last. After `warmup_steps`, `repeats` runs of `timed_steps` forward passes are timed (CUDA
events + synchronize on CUDA, time.perf_counter on CPU); the record holds the median samples/s with its
(min, max) spread over the repeats, the median step time, the batch-1 latency and the peak memory.

On CUDA an out-of-memory batch is retried at the next smaller size of `BATCH_LADDER`
(`run_with_batch_decay`), and the record keeps the size used and the sizes that ran out of memory.
"""
from __future__ import annotations

import contextlib
import logging
import statistics
import time
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

import torch

from vitbench.eval.precision import autocast, input_dtype

log = logging.getLogger(__name__)

T = TypeVar("T")

# Batch sizes tried, largest first, after an out-of-memory error (timm's benchmark decays the same way).
BATCH_LADDER = (1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32, 24, 16, 8, 4, 2, 1)


@dataclass(frozen=True)
class BenchSettings:
    """Per-device defaults; None fields of BenchConfig take these."""
    batch_size: int
    warmup_steps: int
    timed_steps: int
    repeats: int
    time_budget_s: float | None = None     # seconds of timed forwards per model; None: fixed steps


# CPU: timm's published CPU benchmark runs batch 1, and the steps adapt to a time budget per model, so
# `vitbench run --all` over the whole zoo stays within minutes on a 2-core machine (a 1 B-parameter
# model at 560 px is one forward of ~35 s there: it is timed once, not seven times).
# CUDA: timm's benchmark.py defaults (batch 256, 10 warmup, 40 timed steps).
DEFAULTS = {
    "cpu": BenchSettings(batch_size=1, warmup_steps=1, timed_steps=3, repeats=3, time_budget_s=2.0),
    "cuda": BenchSettings(batch_size=256, warmup_steps=10, timed_steps=40, repeats=3),
}


@dataclass(frozen=True)
class BenchOptions:
    """How throughput is measured; None fields take the device's defaults (`DEFAULTS`)."""
    batch_size: int | None = None           # None: the device default (CPU 1, CUDA 256)
    compile: bool = False
    channels_last: bool = False
    warmup_steps: int | None = None
    timed_steps: int | None = None
    repeats: int | None = None
    time_budget_s: float | None = None      # None: the device default (CPU 2 s); 0: fixed steps

    def settings(self, device: str) -> BenchSettings:
        base = DEFAULTS["cuda" if _device_type(device) == "cuda" else "cpu"]
        budget = base.time_budget_s if self.time_budget_s is None else (self.time_budget_s or None)
        if budget is not None and budget < 0:
            raise ValueError(f"time budget must be >= 0 seconds, got {budget}")
        return BenchSettings(
            batch_size=self.batch_size or base.batch_size,
            warmup_steps=base.warmup_steps if self.warmup_steps is None else self.warmup_steps,
            timed_steps=self.timed_steps or base.timed_steps,
            repeats=self.repeats or base.repeats,
            time_budget_s=budget,
        )


def _device_type(device: str) -> str:
    return torch.device(device).type


# ---------------------------------------------------------------------------- OOM batch decay

def batch_ladder(start: int) -> list[int]:
    """`start`, then every smaller size of BATCH_LADDER: the sizes tried after out-of-memory errors."""
    if start < 1:
        raise ValueError(f"batch size must be >= 1, got {start}")
    return [start] + [b for b in BATCH_LADDER if b < start]


def run_with_batch_decay(step: Callable[[int], T], start: int,
                         on_oom: Callable[[], None] | None = None) -> tuple[int, list[int], T]:
    """Call `step(batch_size)` down the batch ladder from `start` until one does not run out of memory.

    Returns (batch size used, sizes that ran out of memory, step's result). `on_oom` runs after each
    out-of-memory error, outside the except block so the failed step's tensors are already freed.
    """
    ooms: list[int] = []
    for bs in batch_ladder(start):
        try:
            return bs, ooms, step(bs)
        except torch.OutOfMemoryError:
            ooms.append(bs)
            log.info("batch %d ran out of memory; trying a smaller one", bs)
        if on_oom is not None:
            on_oom()
    raise torch.OutOfMemoryError(f"out of memory even at batch size 1 (tried {ooms})")


def empty_cuda_cache() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Timing:
    samples_per_sec: float                  # median over repeats
    spread: tuple[float, float]             # (min, max) samples/s over repeats
    step_time_ms: float                     # step time at the median samples/s
    peak_memory_mb: float | None
    warmup_steps: int                       # the steps actually run (a time budget may cut them)
    timed_steps: int
    repeats: int


def fit_to_budget(step_ms: float, s: BenchSettings) -> tuple[int, int]:
    """(timed steps per repeat, repeats) that fit `s.time_budget_s`, given one step of `step_ms`.

    At most the configured steps and repeats, at least one of each: steps first shrink so that all
    repeats fit, then repeats, so a model slower than the budget is timed exactly once.
    """
    if s.time_budget_s is None:
        return s.timed_steps, s.repeats
    steps_fit = int(s.time_budget_s * 1e3 // max(step_ms, 1e-6))
    steps = max(1, min(s.timed_steps, steps_fit // s.repeats))
    repeats = max(1, min(s.repeats, steps_fit // steps))
    return steps, repeats


class _Clock:
    """Elapsed milliseconds of a block: CUDA events on CUDA, perf_counter on CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self._end.record()
            torch.cuda.synchronize()
            self.ms = self._start.elapsed_time(self._end)
        else:
            self.ms = (time.perf_counter() - self._t0) * 1e3
        return False


def time_model(model: torch.nn.Module, batch_size: int, img_size: int, device: torch.device,
               precision: str, channels_last: bool, s: BenchSettings) -> Timing:
    """Warm up, then time `s.repeats` runs of `s.timed_steps` forward passes at `batch_size`.

    With a time budget the first warm-up step is timed and sets how many steps and repeats fit
    (`fit_to_budget`); when that one step already exceeds the budget it is the measurement itself
    (warm-up 0, 1 step, 1 repeat), so a giant model costs one forward, not seven.
    """
    x = torch.randn(batch_size, 3, img_size, img_size, device=device, dtype=input_dtype(precision))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    on_device = torch.cuda.device(device) if cuda else contextlib.nullcontext()   # events on its stream
    warmup, steps, repeats = s.warmup_steps, s.timed_steps, s.repeats
    with on_device, torch.inference_mode(), autocast(device, precision):
        rates = []
        if s.time_budget_s is not None:
            with _Clock(device) as first:                 # the first warm-up step, timed
                model(x)
            steps, repeats = fit_to_budget(first.ms, s)
            if first.ms >= s.time_budget_s * 1e3:         # one step is the whole budget: it is the sample
                warmup, steps, repeats = 0, 1, 1
                rates.append(batch_size * 1e3 / first.ms)
            else:
                warmup = max(warmup, 1)
            remaining_warmup = warmup - 1
        else:
            remaining_warmup = warmup
        for _ in range(max(remaining_warmup, 0)):
            model(x)
        for _ in range(repeats - len(rates)):
            with _Clock(device) as clock:
                for _ in range(steps):
                    model(x)
            rates.append(batch_size * steps * 1e3 / clock.ms)
    # CUDA: the allocator's peak (weights + activations). CPU: not measured -- the process's peak RSS
    # is a lifetime maximum, so its growth reads 0 for any model smaller than an earlier one.
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    rate = statistics.median(rates)
    # the step time is the median rate's, so samples/s * step time = batch size (timm's CSVs agree)
    return Timing(rate, (min(rates), max(rates)), batch_size * 1e3 / rate, peak, warmup, steps, repeats)


# ---------------------------------------------------------------------------- one checkpoint

def build_model(name: str, device: str, precision: str, opts: BenchOptions) -> torch.nn.Module:
    """The checkpoint's architecture with random-init weights, ready to time."""
    from vitbench.models import create_model

    device = torch.device(device)
    with torch.device(device):                # init where it runs: fast on CUDA, no host copy
        model = create_model(name)
    model.eval()
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if opts.compile:
        model = torch.compile(model)
    return model


def measure(name: str, device: str = "cpu", precision: str = "fp32", opts: BenchOptions = BenchOptions(),
            world_size: int = 1):
    """Benchmark checkpoint `name` (random-init weights) on `device` at `precision`.

    Returns:
        BenchRecord: median samples/s with its spread, step time, batch-1 latency, peak memory (CUDA)
        and the batch size used after any out-of-memory decay.
    """
    from vitbench.catalog.registry import get_checkpoint
    from vitbench.eval.precision import check
    from vitbench.records import BenchRecord, provenance

    check(precision)
    ckpt = get_checkpoint(name)
    dev = torch.device(device)
    s = opts.settings(device)
    model = build_model(name, device, precision, opts)
    img = ckpt.img_size

    def timed(bs: int) -> Timing:
        if opts.compile:        # the first call at a shape compiles: never a sample (nor the budget's probe)
            with torch.inference_mode(), autocast(dev, precision):
                model(torch.zeros(bs, 3, img, img, device=dev, dtype=input_dtype(precision)))
        return time_model(model, bs, img, dev, precision, opts.channels_last, s)

    on_oom = empty_cuda_cache if dev.type == "cuda" else None
    bs, ooms, t = run_with_batch_decay(timed, s.batch_size, on_oom=on_oom)
    if bs == 1:
        latency = t.step_time_ms
    else:   # a shorter run at batch 1 for the latency figure
        short = replace(s, warmup_steps=min(s.warmup_steps, 2) or 1, timed_steps=max(s.timed_steps // 4, 2),
                        time_budget_s=None if s.time_budget_s is None else s.time_budget_s / 4)
        latency = time_model(model, 1, img, dev, precision, opts.channels_last, short).step_time_ms
    return BenchRecord(
        checkpoint=name,
        architecture=ckpt.architecture,
        device=dev.type,
        precision=precision,
        img_size=img,
        batch_size=bs,
        samples_per_sec=round(t.samples_per_sec, 3),
        samples_per_sec_spread=(round(t.spread[0], 3), round(t.spread[1], 3)),
        step_time_ms=round(t.step_time_ms, 3),
        latency_ms_bs1=round(latency, 3),
        peak_memory_mb=None if t.peak_memory_mb is None else round(t.peak_memory_mb, 1),
        compile=opts.compile,
        channels_last=opts.channels_last,
        warmup_steps=t.warmup_steps,
        timed_steps=t.timed_steps,
        repeats=t.repeats,
        time_budget_s=s.time_budget_s,
        oom_batch_sizes=ooms,
        provenance=provenance(device, world_size),
    )
