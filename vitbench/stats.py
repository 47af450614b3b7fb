"""Model statistics: parameters, GMACs (with and without attention matmuls) and activations.

Counting happens at the PyTorch dispatcher: `OpCounter` is a TorchDispatchMode that sees every aten
op a forward pass runs and tallies, per kind,

    linear  aten.mm / addmm (and aten.linear / matmul with a 2-D right operand, if they dispatch)
    conv    aten.convolution (and its backend variants)
    attn    the attention matmuls: q @ k^T and attn @ v, whether they arrive as one fused SDPA op
            (aten._scaled_dot_product_*_attention*: 2 * B*H*N*N*d MACs) or, when SDPA takes the math
            path (the meta device, sdpa_kernel(MATH), explicit-math attention), as aten.bmm / baddbmm
            (a batched product with inner dim 1 is an outer product, booked as linear: RoPE-Mixed's
            angle tables)
    norm    LayerNorm / GroupNorm / BatchNorm: 5 per input element with an affine weight, 4 without
            (how timm's published counts, made with fvcore, book them; no activations)

MACs of a (n, k) @ (k, m) product are n*k*m; of a conv, output elements * C_in/groups * kh*kw (bias
adds are not MACs). Activations are the output elements of those same ops, attention matmul outputs
included (the attention matrix B*H*N*N and the B*H*N*d result) — the convention of timm's benchmark
CSVs (`infer_gmacs`, `infer_macts`), which the tests check to the published rounding for every
published architecture. `gmacs_no_attn` / `macts_no_attn` leave the attention matmuls out: the
convention of timm's model cards (seed 000: 15.5 GMACs, 18.1 M activations for betwixt-rope-256).

Decomposition-proof: a fused SDPA op is counted by formula and its kernel's inner ops are never seen
(a dispatch mode is popped while its handler runs, and `OpCounter` also refuses to count anything
nested inside a counted op), while a decomposed SDPA shows up only as its bmm ops. Either way the
attention is counted exactly once, and the tests assert the fused, math and meta paths agree.

Counting a registered name builds the random-init architecture on the meta device (no memory, no
compute: shapes only) and caches by (architecture, img_size); a model that cannot run on meta falls
back to a real CPU forward at batch 1.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

log = logging.getLogger(__name__)

aten = torch.ops.aten


# Bumped whenever a counting rule changes; a stats record counted under other rules is recounted.
# 1: linear/conv/attention; 2: + norms (timm's convention) and macts_no_attn; 3: a batched outer
# product (inner dim 1) is not attention (changes only the no-attention figures of RoPE-Mixed models).
COUNT_RULES = 3


@dataclass(frozen=True)
class Stats:
    param_count: int        # parameters
    gmacs: float            # linear + conv + attention-matmul MACs at batch 1, 1e9
    gmacs_no_attn: float    # the same without the attention matmuls (older model-card convention)
    macts: float            # output elements of those ops at batch 1, 1e6
    img_size: int
    macts_no_attn: float | None = None   # without the attention-matmul outputs (older card convention)


# ---------------------------------------------------------------------------- per-op rules
# Each rule maps (args, out) -> (kind, macs, output elements).

def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _mm(args, out):
    a, b = args[0], args[1]                                  # (n, k) @ (k, m)
    return "linear", _numel(a.shape) * int(b.shape[-1]), out.numel()


def _addmm(args, out):
    return _mm(args[1:], out)                                # addmm(bias, a, b)


def _batched_kind(k: int) -> str:
    """A batched activation product is attention, unless its inner dim is 1: an outer product (RoPE-Mixed's
    positions x learned per-head frequencies) is a table computation, not an attention matmul. Both count
    in the totals (timm's benchmark counts them); only the no-attention figures tell them apart."""
    return "linear" if k == 1 else "attn"


def _bmm(args, out):
    a, b = args[0], args[1]                                  # (B, n, k) @ (B, k, m)
    return _batched_kind(int(a.shape[-1])), _numel(a.shape) * int(b.shape[-1]), out.numel()


def _baddbmm(args, out):
    return _bmm(args[1:], out)


def _linear(args, out):
    x, w = args[0], args[1]                                  # x (..., in) ; w (out, in)
    return "linear", _numel(x.shape) * int(w.shape[0]), out.numel()


def _matmul(args, out):
    a, b = args[0], args[1]
    k = int(a.shape[-1]) if a.dim() > 0 else 1
    kind = "linear" if b.dim() <= 2 else _batched_kind(k)    # activation @ activation is attention
    return kind, out.numel() * k, out.numel()


def _conv(args, out):
    x, w = args[0], args[1]
    transposed = len(args) > 6 and bool(args[6])
    if transposed:                                           # w: (C_in, C_out/groups, *k)
        return "conv", _numel(x.shape) * _numel(w.shape[1:]), out.numel()
    return "conv", out.numel() * _numel(w.shape[1:]), out.numel()   # w: (C_out, C_in/groups, *k)


def _sdpa(args, out):
    q, k, v = args[0], args[1], args[2]                      # (B, H, L, E), (B, Hk, S, E), (B, Hk, S, Ev)
    rows = _numel(q.shape[:-1])                              # B*H*L query rows
    s, e, ev = int(k.shape[-2]), int(q.shape[-1]), int(v.shape[-1])
    macs = rows * s * e + rows * s * ev                      # q @ k^T, then attn @ v
    return "attn", macs, rows * s + rows * ev                # attention matrix + result


def _norm(elements_of, weight_at: int):
    """Normalization as timm's published counts book it (fvcore): 5 per input element with an
    affine weight, 4 without; no activations."""
    def rule(args, out):
        affine = len(args) > weight_at and args[weight_at] is not None
        return "norm", elements_of(args) * (5 if affine else 4), 0
    return rule


def _rules() -> dict:
    rules = {
        aten.mm: _mm, aten.addmm: _addmm, aten.bmm: _bmm, aten.baddbmm: _baddbmm,
        aten.linear: _linear, aten.matmul: _matmul,
        aten.convolution: _conv, aten._convolution: _conv,
    }
    sdpa_ops = (
        "scaled_dot_product_attention", "_scaled_dot_product_attention_math",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable",
    )
    for name in sdpa_ops:                                    # ops differ between torch versions
        if hasattr(aten, name):
            rules[getattr(aten, name)] = _sdpa
    first_numel = lambda args: args[0].numel()   # noqa: E731
    rules[aten.native_layer_norm] = _norm(first_numel, 2)          # (input, shape, weight, bias, eps)
    rules[aten.native_group_norm] = _norm(first_numel, 1)          # (input, weight, bias, N, C, HxW, G, eps)
    for name in ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
                 "_native_batch_norm_legit_no_training", "cudnn_batch_norm", "miopen_batch_norm"):
        if hasattr(aten, name):                                    # (input, weight, bias, ...)
            rules[getattr(aten, name)] = _norm(first_numel, 1)
    for name in ("conv1d", "conv2d", "conv3d", "cudnn_convolution", "mkldnn_convolution"):
        if hasattr(aten, name):                              # never transposed
            rules[getattr(aten, name)] = _conv_plain
    return rules


def _conv_plain(args, out):
    return _conv(args[:2], out)


class OpCounter(TorchDispatchMode):
    """Tallies MACs and output elements of linear, conv and attention-matmul ops by kind."""

    def __init__(self):
        super().__init__()
        self.macs: Counter = Counter()
        self.acts: Counter = Counter()
        self._rules = _RULES
        self._depth = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rule = self._rules.get(func.overloadpacket)
        if rule is None or self._depth:
            return func(*args, **kwargs)
        self._depth += 1                       # nothing nested in a counted op is counted again
        try:
            out = func(*args, **kwargs)
        finally:
            self._depth -= 1
        first = out[0] if isinstance(out, (tuple, list)) else out
        kind, macs, acts = rule(args, first)
        self.macs[kind] += macs
        self.acts[kind] += acts
        return out

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def total_acts(self) -> int:
        return sum(self.acts.values())


_RULES = _rules()


# ---------------------------------------------------------------------------- counting a model

def _img_size(model: nn.Module) -> int:
    cfg = getattr(model, "data_config", None)
    if cfg is not None:
        return int(cfg.input_size[-1])
    size = getattr(model, "img_size", None)
    if size is None and hasattr(model, "patch_embed"):
        size = getattr(model.patch_embed, "img_size", None)
    if size is None:
        raise ValueError(f"count_stats: cannot tell the input size of {type(model).__name__}; "
                         "give it a `data_config` or `img_size`")
    return int(size[-1] if isinstance(size, (tuple, list)) else size)


def count_model(model: nn.Module, img_size: int | None = None, device=None) -> Stats:
    """Count one forward of `model` at batch 1 on a (1, 3, img_size, img_size) input."""
    img_size = img_size or _img_size(model)
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros(1, 3, img_size, img_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    counter = OpCounter()
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return Stats(
        param_count=sum(p.numel() for p in model.parameters()),
        gmacs=counter.total_macs / 1e9,
        gmacs_no_attn=(counter.total_macs - counter.macs["attn"]) / 1e9,
        macts=counter.total_acts / 1e6,
        img_size=img_size,
        macts_no_attn=(counter.total_acts - counter.acts["attn"]) / 1e6,
    )


@functools.lru_cache(maxsize=None)
def _count_architecture(architecture: str, img_size: int, num_classes: int | None) -> Stats:
    from vitbench.models import create_model

    try:
        with torch.device("meta"):
            model = create_model(architecture, num_classes=num_classes)
        return count_model(model, img_size, device="meta")
    except Exception as e:  # noqa: BLE001 - a model that needs real tensors still gets counted
        log.debug("meta-device count of %s failed (%s); counting on CPU", architecture, e)
    with torch.no_grad():
        model = create_model(architecture, num_classes=num_classes)
    return count_model(model, img_size, device="cpu")


def count_stats(model_or_name) -> Stats:
    """Params, GMACs and activations of one forward at batch 1, counted at the dispatcher.

    Args:
        model_or_name: a registered checkpoint name (counted on a random-init, meta-device model,
            cached per architecture and input size), a bare architecture name (with its default
            head, as timm's benchmark builds it), or a model (counted where it lives, at its
            `data_config` input size).

    Returns:
        Stats: param_count, gmacs (linear, conv and attention matmuls; timm's benchmark CSVs'
        convention), gmacs_no_attn, macts and macts_no_attn (the older model-card convention), img_size.

    Raises:
        UnknownModelError: a name that is neither a registered checkpoint nor an architecture.
    """
    if isinstance(model_or_name, nn.Module):
        return count_model(model_or_name)
    from vitbench.catalog.registry import get_checkpoint, is_registered

    name = str(model_or_name)
    if is_registered(name):
        cfg = get_checkpoint(name)
        if cfg.lineage == "user":          # its own model_args or config.json: counted as the name builds it
            return _count_architecture(name, cfg.img_size, None)
        return _count_architecture(cfg.architecture, cfg.img_size, cfg.num_classes)
    from vitbench.models import create_model

    with torch.device("meta"):
        img_size = _img_size(create_model(name))
    return _count_architecture(name, img_size, None)


# ---------------------------------------------------------------------------- records and the CLI

def measure(name: str):
    """Count registered checkpoint `name` at its input size.

    Returns:
        StatsRecord: params, GMACs and activations (with and without the attention matmuls), with the
        counting rules (`COUNT_RULES`) and provenance.
    """
    from vitbench.catalog.registry import get_checkpoint

    return _record(name, get_checkpoint(name).architecture, count_stats(name))


def measure_model(model: nn.Module, name: str):
    """Count a model built in Python (a real forward at batch 1 where it lives) under `name`.

    Returns:
        StatsRecord, as `measure` gives for a registered checkpoint.
    """
    return _record(name, getattr(model, "architecture", None) or type(model).__name__, count_model(model))


def _record(name: str, architecture: str, s: Stats):
    from vitbench.records import StatsRecord, provenance

    return StatsRecord(
        checkpoint=name,
        architecture=architecture,
        img_size=s.img_size,
        param_count=s.param_count,
        gmacs=round(s.gmacs, 4),
        gmacs_no_attn=round(s.gmacs_no_attn, 4),
        macts=round(s.macts, 4),
        macts_no_attn=round(s.macts_no_attn, 4),
        count_rules=COUNT_RULES,
        provenance=provenance("cpu"),
    )


_COLUMNS = ("model", "img_size", "param_count", "gmacs", "gmacs_no_attn", "macts", "macts_no_attn")


def _row(rec) -> dict:
    return {
        "model": rec.checkpoint,
        "img_size": rec.img_size,
        "param_count": round(rec.param_count / 1e6, 2),     # millions, as timm's CSVs
        "gmacs": round(rec.gmacs, 2),
        "gmacs_no_attn": round(rec.gmacs_no_attn, 2),
        "macts": round(rec.macts, 2),
        "macts_no_attn": round(rec.macts_no_attn, 2) if rec.macts_no_attn is not None else float("nan"),
    }


def _table(rows: list[dict]) -> str:
    header = ("model", "img_size", "params (M)", "GMACs", "GMACs no attn", "MActs", "MActs no attn")
    fmt = {"param_count": "{:.2f}", "gmacs": "{:.2f}", "gmacs_no_attn": "{:.2f}", "macts": "{:.2f}",
           "macts_no_attn": "{:.2f}"}
    cells = [header] + [tuple(fmt.get(c, "{}").format(r[c]) for c in _COLUMNS) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i])
                               for i in range(len(c))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stats_main(names, as_json: bool = False, results_dir: Path | None = None) -> int:
    """`vitbench stats`: count each checkpoint, print a table (or JSON); with `results_dir`, the
    records go there through a run (`vitbench.run`: the results lock, the resume rule)."""
    if results_dir is not None:
        from vitbench.run import RunConfig, measure_only

        run = measure_only(RunConfig(checkpoints=tuple(names), datasets=(), results_dir=Path(results_dir),
                                     bench=None, report=False))
        recs = [r for n in names if (r := run.store.stats.get(n)) is not None]
    else:
        recs = []
        for name in names:
            try:
                recs.append(measure(name))
            except Exception as e:  # noqa: BLE001 - one bad model must not stop the others
                print(f"vitbench stats: {name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
    rows = [asdict(r) if as_json else _row(r) for r in recs]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(_table(rows))
    return 0 if len(recs) == len(names) else 1
