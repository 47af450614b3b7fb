"""The one layer set every ViT family composes. Parameter names are timm's, so timm state dicts load as-is.

A family passes layers in rather than copying them (timm's `Block(attn_layer=, mlp_layer=, norm_layer=)`):
- `Attention`: fused qkv (or separate q/k/v), optional q/v-only bias, optional sub-LN before the output
  projection, a rotary-embedding hook (`rope=`), an additive bias (`attn_bias=`, or an owned `rel_pos`
  module that makes one). The qkv -> SDPA path is written once, in `attend`.
- `DiffAttention`: Attention with the differential core of `DiffCore` (Differential Transformer), which
  the parallel block takes too (`attn_layer=DiffAttention`).
- `Mlp`: fc1 -> act -> [norm] -> fc2, with `out_features` (the rel-pos bias MLP is an Mlp too);
  `SwiGLU`: the gated MLP (separate or packed gate/value projections, optional sub-LN).
- `Block` (pre-norm, optionally post-norm "res-post"), `ParallelScalingBlock` (ViT-22B parallel).
- `AttentionPoolLatent`: attention pooling with a learned latent query (SigLIP's MAP head).
- `PatchEmbed`, `LayerScale`, rotary tables (axial `rope_tables`, learned per-block `RopeMixed`,
  both applied by `apply_rope`), relative-position bias (`RelPosMlp`), `resample_abs_pos_embed`.
- `ACT_LAYERS`: activations by the names transformers' configs use (`hidden_act`).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Rope = tuple[torch.Tensor, torch.Tensor]   # (cos, signed sin), each broadcastable to (B, nh, N, hd)


def _check_heads(dim: int, num_heads: int) -> None:
    if num_heads <= 0 or dim % num_heads:
        raise ValueError(f"embed dim {dim} is not divisible by num_heads={num_heads}")


# ------------------------------------------------------------------------------------------ attention

def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, nh*hd) -> (B, nh, N, hd)."""
    B, N, _ = x.shape
    return x.view(B, N, num_heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, N, hd) -> (B, N, nh*hd)."""
    B, _, N, _ = x.shape
    return x.transpose(1, 2).reshape(B, N, -1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: Rope | None = None,
           attn_bias: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(rope(q) @ rope(k)^T * hd**-0.5 + attn_bias) @ v through SDPA; q, k, v are (B, nh, N, hd)."""
    if rope is not None:
        cos, sin = rope
        q = apply_rope(q, cos.to(q.dtype), sin.to(q.dtype))
        k = apply_rope(k, cos.to(k.dtype), sin.to(k.dtype))
    if attn_bias is not None:
        attn_bias = attn_bias.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)


# ------------------------------------------------------------------------------ differential attention

def diff_lambda_init(depth_index: int) -> float:
    """Differential attention's λ_init for the block at `depth_index` (counted from 0):
    0.8 - 0.6 * exp(-0.3 * depth_index), the paper's schedule (its layer l is depth_index + 1)."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth_index)


class DiffCore:
    """Differential attention (Ye et al., https://arxiv.org/abs/2410.05258), mixed into a module that
    makes q, k, v heads: `DiffAttention` and `ParallelScalingBlock(attn_layer=DiffAttention)`. The
    learned λ vectors and the sub-norm are set on that module, so their keys are timm's wherever it
    sits (`attn.lambda_q1` in a Block, `blocks.i.lambda_q1` on a parallel block).

    Heads q, k, v are (B, nh, N, hd). Each q and k head is read as two half-width heads, its first and
    second hd/2 channels (timm's layout); both attend over the head's whole v:
        A_j = softmax(q_j k_j^T / sqrt(hd/2)),   j = 1, 2
        out = sub_norm((A_1 - λ A_2) v) * (1 - λ_init)
        λ   = exp(λ_q1 · λ_k1) - exp(λ_q2 · λ_k2) + λ_init        (λ_* vectors of width hd/2, fp32)
    λ_init from `diff_lambda_init`; sub_norm is an RMSNorm over hd (eps 1e-5, learned scale) shared by
    all heads. The two maps are formed explicitly and differenced before one product with v, as the
    paper writes it; this is also how timm's published counts book it (a map per half head, one
    attn @ v per head), where two SDPA calls would count v twice.
    """

    def init_diff(self, head_dim: int, depth_index: int = 0) -> None:
        if head_dim % 2:
            raise ValueError(f"differential attention splits each head in two: head dim {head_dim} is odd")
        half = head_dim // 2
        for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
            setattr(self, name, nn.Parameter(torch.randn(half) * 0.1))     # the paper's N(0, 0.1) init
        self.sub_norm = nn.RMSNorm(head_dim, eps=1e-5)
        self.lambda_init = diff_lambda_init(depth_index)

    def diff_lambda(self) -> torch.Tensor:
        """λ, a scalar in fp32."""
        lam1 = torch.exp((self.lambda_q1.float() * self.lambda_k1.float()).sum())
        lam2 = torch.exp((self.lambda_q2.float() * self.lambda_k2.float()).sum())
        return lam1 - lam2 + self.lambda_init

    def diff_attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: Rope | None = None,
                    attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        """(B, nh, N, hd) q, k, v -> (B, nh, N, hd). Takes no rotary embedding (rope must be None)."""
        if rope is not None:
            raise ValueError("differential attention takes no rotary embedding (rope must be None)")
        maps = []
        for qj, kj in zip(q.chunk(2, dim=-1), k.chunk(2, dim=-1), strict=True):   # each (B, nh, N, hd/2)
            scores = (qj * qj.shape[-1] ** -0.5) @ kj.transpose(-2, -1)       # (B, nh, N, N)
            if attn_bias is not None:
                scores = scores + attn_bias.to(scores.dtype)
            maps.append(scores.softmax(dim=-1))
        attn = maps[0] - self.diff_lambda().to(q.dtype) * maps[1]            # (B, nh, N, N)
        return self.sub_norm(attn @ v) * (1 - self.lambda_init)


class Attention(nn.Module):
    """Multi-head self-attention: qkv -> (rope) -> softmax(q k^T / sqrt(hd) + bias) v -> (norm) -> proj.

    qkv_bias: biases on the q/k/v projections. With `k_bias=False` (BEiT, EVA) only q and v carry one,
        as timm stores them: `q_bias`, `v_bias` parameters beside a bias-free `qkv`.
    fused: one `qkv` Linear (timm's default) or separate `q_proj`/`k_proj`/`v_proj` (EVA-02).
    scale_norm: a norm before `proj` (sub-LN: BEiT3, EVA-02), stored as `norm`.
    rel_pos: a module returning an additive (1, nh, N, N) bias (the rel-pos ViT's `RelPosMlp`).
    head_dim: per-head width when it is not dim // num_heads.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, k_bias: bool = True,
                 fused: bool = True, proj_bias: bool = True, scale_norm: bool = False,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, rel_pos: nn.Module | None = None,
                 head_dim: int | None = None):
        super().__init__()
        if head_dim is None:
            _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        inner = self.num_heads * self.head_dim
        split_bias = qkv_bias and not k_bias
        if fused:
            self.qkv = nn.Linear(dim, inner * 3, bias=qkv_bias and not split_bias)
            if split_bias:
                self.q_bias = nn.Parameter(torch.zeros(inner))
                self.register_buffer("k_bias", torch.zeros(inner), persistent=False)
                self.v_bias = nn.Parameter(torch.zeros(inner))
        else:
            self.q_proj = nn.Linear(dim, inner, bias=qkv_bias)
            self.k_proj = nn.Linear(dim, inner, bias=qkv_bias and k_bias)
            self.v_proj = nn.Linear(dim, inner, bias=qkv_bias)
        self.fused, self.split_bias = fused, split_bias and fused
        self.rel_pos = rel_pos
        self.norm = norm_layer(inner) if scale_norm else nn.Identity()
        self.proj = nn.Linear(inner, dim, bias=proj_bias)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v, each (B, nh, N, hd)."""
        if not self.fused:
            return tuple(split_heads(p(x), self.num_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if self.split_bias:
            qkv = F.linear(x, self.qkv.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))
        else:
            qkv = self.qkv(x)
        B, N, _ = x.shape
        return qkv.view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def extra_bias(self) -> torch.Tensor | None:
        """The additive bias this layer owns (None, or its rel-pos module's); families may override."""
        return None if self.rel_pos is None else self.rel_pos()

    def forward(self, x: torch.Tensor, rope: Rope | None = None,
                attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.qkv_heads(x)
        own = self.extra_bias()
        if own is not None:
            attn_bias = own if attn_bias is None else attn_bias + own
        x = merge_heads(self.core(q, k, v, rope, attn_bias))       # (B, N, nh*hd)
        return self.proj(self.norm(x))

    def core(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: Rope | None,
             attn_bias: torch.Tensor | None) -> torch.Tensor:
        """The attention of q, k, v heads (B, nh, N, hd): softmax attention; DiffAttention's differs."""
        return attend(q, k, v, rope, attn_bias)


class DiffAttention(DiffCore, Attention):
    """Attention with a differential core (`DiffCore`; timm's DiffAttention): the same `qkv`, `proj`
    (and sub-LN `norm` with scale_norm), plus `lambda_q1/k1/q2/k2` and `sub_norm`.

    depth_index: the block's index, from 0 (sets λ_init). Takes no rotary embedding.
    """

    def __init__(self, dim: int, num_heads: int = 8, depth_index: int = 0, **kwargs):
        super().__init__(dim, num_heads, **kwargs)
        self.init_diff(self.head_dim, depth_index)

    def core(self, q, k, v, rope, attn_bias):
        return self.diff_attend(q, k, v, rope, attn_bias)


# ----------------------------------------------------------------------------------------- activations

class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), CLIP's GELU approximation (transformers' 'quick_gelu')."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


# transformers' `hidden_act` names -> the activation layer. 'gelu' is the exact (erf) GELU; the tanh
# forms ('gelu_new', 'gelu_pytorch_tanh', 'gelu_fast') are one formula, computed here by torch's own.
ACT_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_new": partial(nn.GELU, approximate="tanh"),
    "gelu_pytorch_tanh": partial(nn.GELU, approximate="tanh"),
    "gelu_fast": partial(nn.GELU, approximate="tanh"),
    "quick_gelu": QuickGELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
}


# ------------------------------------------------------------------------------------------------ mlp

class Mlp(nn.Module):
    """fc1 -> act -> [norm] -> fc2 (timm `Mlp`; dropout is identity at eval and so left out).

    norm_layer: a norm on the hidden width (sub-LN, stored as `norm`); out_features defaults to in.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 act_layer: Callable[[], nn.Module] = nn.GELU, bias: bool = True,
                 norm_layer: Callable[[int], nn.Module] | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.norm = norm_layer(hidden_features) if norm_layer is not None else nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


class SwiGLU(nn.Module):
    """Gated MLP (Shazeer, https://arxiv.org/abs/2002.05202): fc2(norm(act(x W_g) * (x W_x))), act SiLU.

    packed=False: separate `fc1_g` (gate) and `fc1_x` projections (timm's `SwiGLU`, EVA-02 B/L with
        the sub-LN `norm`); packed=True: one `fc1` of twice the hidden width, gate first (timm's
        `SwiGLUPacked` = GluMlp(gate_last=False), EVA-02 Ti/S). Same math, two key layouts.
    hidden_features is the gated width (fc2's input) in both layouts.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 act_layer: Callable[[], nn.Module] = nn.SiLU, bias: bool = True,
                 norm_layer: Callable[[int], nn.Module] | None = None, packed: bool = False):
        super().__init__()
        self.packed = packed
        if packed:
            self.fc1 = nn.Linear(in_features, 2 * hidden_features, bias=bias)
        else:
            self.fc1_g = nn.Linear(in_features, hidden_features, bias=bias)
            self.fc1_x = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.norm = norm_layer(hidden_features) if norm_layer is not None else nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            gate, x = self.fc1(x).chunk(2, dim=-1)
        else:
            gate, x = self.fc1_g(x), self.fc1_x(x)
        return self.fc2(self.norm(self.act(gate) * x))


# --------------------------------------------------------------------------------------------- blocks

class LayerScale(nn.Module):
    """Per-channel residual-branch scale (CaiT); the parameter is `gamma` as in timm."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))).

    attn_layer / mlp_layer / norm_layer / act_layer: the layers composed (timm's pattern).
    init_values: layer scale, stored as `ls1.gamma`/`ls2.gamma`, or as `gamma_1`/`gamma_2` parameters
        with gamma_params=True (BEiT, EVA).
    post_norm: timm's ResPostBlock, x + norm1(attn(x)), x + norm2(mlp(x)).
    scale_attn_norm / scale_mlp_norm: sub-LN inside attention (before proj) and the MLP (before fc2).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 act_layer: Callable[[], nn.Module] = nn.GELU, attn_layer: Callable[..., nn.Module] = Attention,
                 mlp_layer: Callable[..., nn.Module] = Mlp, attn_kwargs: dict | None = None,
                 gamma_params: bool = False, post_norm: bool = False, scale_attn_norm: bool = False,
                 scale_mlp_norm: bool = False):
        super().__init__()
        self.post_norm = post_norm
        self.norm1 = norm_layer(dim)
        self.attn = attn_layer(dim, num_heads=num_heads, qkv_bias=qkv_bias, scale_norm=scale_attn_norm,
                               norm_layer=norm_layer, **(attn_kwargs or {}))
        self.norm2 = norm_layer(dim)
        self.mlp = mlp_layer(dim, int(dim * mlp_ratio), act_layer=act_layer,
                             norm_layer=norm_layer if scale_mlp_norm else None)
        if gamma_params:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim)) if init_values else None
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim)) if init_values else None
        else:
            self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
            self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.gamma_params = gamma_params

    def _scale(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_params:
            gamma = self.gamma_1 if i == 1 else self.gamma_2
            return x if gamma is None else x * gamma
        return (self.ls1 if i == 1 else self.ls2)(x)

    def forward(self, x: torch.Tensor, rope: Rope | None = None) -> torch.Tensor:
        if self.post_norm:
            x = x + self.norm1(self.attn(x, rope))
            return x + self.norm2(self.mlp(x))
        x = x + self._scale(1, self.attn(self.norm1(x), rope))
        return x + self._scale(2, self.mlp(self.norm2(x)))


class ParallelScalingBlock(DiffCore, nn.Module):
    """Attention and MLP in parallel off one norm and one fused input projection (ViT-22B; timm's
    ParallelScalingBlock): x + ls(attn_out_proj(attn(q, k, v)) + mlp_out_proj(gelu(h))).

    in_proj's output is laid out [mlp hidden | q | k | v]; when qkv_bias is off the MLP keeps its own
    bias (`mlp_bias`), as in timm.
    attn_layer: the kind of attention, computed here from in_proj's q, k, v: Attention (softmax) or
        DiffAttention (the differential core of `DiffCore`, its λ vectors and `sub_norm` on this block;
        `attn_kwargs` gives its depth_index). The differential block is timm's DiffParallelScalingBlock,
        which fuses the two output projections into one `out_proj` over [attn | gelu(h)].
    No sub-LNs (scale_attn_norm / scale_mlp_norm), as in timm.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 act_layer: Callable[[], nn.Module] = nn.GELU, attn_layer: type = Attention,
                 attn_kwargs: dict | None = None, scale_attn_norm: bool = False, scale_mlp_norm: bool = False):
        super().__init__()
        _check_heads(dim, num_heads)
        if attn_layer not in (Attention, DiffAttention):
            raise ValueError(f"ParallelScalingBlock: attn_layer={getattr(attn_layer, '__name__', attn_layer)!r}: "
                             f"expected Attention or DiffAttention")
        if scale_attn_norm or scale_mlp_norm:
            raise ValueError("ParallelScalingBlock has no sub-LNs (scale_attn_norm / scale_mlp_norm must be False)")
        self.num_heads = num_heads
        self.mlp_hidden = int(dim * mlp_ratio)
        self.differential = attn_layer is DiffAttention
        self.in_norm = norm_layer(dim)
        self.in_proj = nn.Linear(dim, self.mlp_hidden + 3 * dim, bias=qkv_bias)
        self.mlp_bias = None if qkv_bias else nn.Parameter(torch.zeros(self.mlp_hidden))
        self.mlp_act = act_layer()
        if self.differential:
            self.init_diff(dim // num_heads, **(attn_kwargs or {}))
            self.out_proj = nn.Linear(dim + self.mlp_hidden, dim)
        else:
            self.attn_out_proj = nn.Linear(dim, dim)
            self.mlp_out_proj = nn.Linear(self.mlp_hidden, dim)
        self.ls = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(self, x: torch.Tensor, rope: Rope | None = None) -> torch.Tensor:
        h, q, k, v = self.in_proj(self.in_norm(x)).split([self.mlp_hidden] + [x.shape[-1]] * 3, dim=-1)
        if self.mlp_bias is not None:
            h = h + self.mlp_bias
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))             # each (B, nh, N, hd)
        if not self.differential:
            a = merge_heads(attend(q, k, v, rope))                                  # (B, N, C)
            return x + self.ls(self.attn_out_proj(a) + self.mlp_out_proj(self.mlp_act(h)))
        a = merge_heads(self.diff_attend(q, k, v, rope))                            # (B, N, C)
        return x + self.ls(self.out_proj(torch.cat([a, self.mlp_act(h)], dim=-1)))


# ------------------------------------------------------------------------------------ attention pool

class AttentionPoolLatent(nn.Module):
    """Multihead attention pooling (MAP, big_vision's / timm's `AttentionPoolLatent`): a learned latent
    query attends over the tokens, then a pre-norm residual MLP; the pooled vector is latent 0.

    x (B, N, C) -> q = q(latent) (B, nh, L, hd), [k | v] = kv(x) -> proj(attend(q, k, v)) = y,
    y + mlp(norm(y)) -> (B, C). Parameter names are timm's (`latent`, `q`, `kv`, `proj`, `norm`, `mlp`).
    """

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 latent_len: int = 1, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 act_layer: Callable[[], nn.Module] = nn.GELU):
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.latent = nn.Parameter(torch.zeros(1, latent_len, dim))
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = split_heads(self.q(self.latent.expand(x.shape[0], -1, -1)), self.num_heads)   # (B, nh, L, hd)
        k, v = (split_heads(t, self.num_heads) for t in self.kv(x).chunk(2, dim=-1))     # (B, nh, N, hd)
        y = self.proj(merge_heads(attend(q, k, v)))                                      # (B, L, C)
        y = y + self.mlp(self.norm(y))
        return y[:, 0]


# ---------------------------------------------------------------------------------------- patch embed

class PatchEmbed(nn.Module):
    """Image to patch tokens: a stride-`patch_size` conv, then (B, C, H', W') -> (B, H'*W', C)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768, bias: bool = True):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)                       # (B, C, H', W')
        return x.flatten(2).transpose(1, 2)    # (B, N, C)


def resample_abs_pos_embed(pos_embed: torch.Tensor, new_size: tuple[int, int], num_prefix_tokens: int = 1,
                           interpolation: str = "bicubic", antialias: bool = True,
                           scale_offset: float | None = None) -> torch.Tensor:
    """Resize a learned (1, prefix + H*W, C) position table to the grid `new_size` (timm's rule).

    The first `num_prefix_tokens` rows (class / register positions) are kept as they are; the rest
    must be a square grid, which is interpolated in fp32 and cast back to the table's dtype.

    scale_offset: None interpolates to the output size (timm). A number interpolates by the scale
        factor (new + scale_offset) / old per axis instead (DINO's rule, with offset 0.1; transformers'
        Dinov2, offset 0): sampling positions (i + 0.5) * old / (new + scale_offset) - 0.5, output size
        floor(old * factor), which must come out as `new_size` (a ValueError otherwise).
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    n, dim = grid.shape[1], grid.shape[2]
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"cannot resample a position table of {n} grid tokens: not a square grid")
    if (side, side) == tuple(new_size):
        return pos_embed
    grid = grid.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()       # (1, C, H, W)
    if scale_offset is None:
        grid = F.interpolate(grid, size=tuple(new_size), mode=interpolation, antialias=antialias)
    else:
        scale = tuple(float((n + scale_offset) / side) for n in new_size)
        grid = F.interpolate(grid, scale_factor=scale, mode=interpolation, antialias=antialias)
        if tuple(grid.shape[-2:]) != tuple(new_size):
            raise ValueError(f"resampling a {side}x{side} position grid by {scale} gave {tuple(grid.shape[-2:])}, "
                             f"not {tuple(new_size)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)   # (1, H'*W', C)
    return torch.cat([prefix, grid], dim=1)


# ------------------------------------------------------------------------------ rotary position embedding

GRID_INDEXING = ("ij", "xy")


def grid_positions(grid: tuple[int, int], grid_indexing: str = "ij",
                   ref_grid: tuple[int, int] | None = None) -> torch.Tensor:
    """(H*W, 2) positions of the patches of an (H, W) grid, in token (row-major) order.

    grid_indexing: which axis comes first, as timm's `grid_indexing`: 'ij' -> (row, column), 'xy' ->
        (column, row). It decides which half of the rotary channels turns with which axis.
    ref_grid: EVA's rescaling to the pretraining grid, t = i / H * ref_H (a no-op at the native grid).
    """
    if grid_indexing not in GRID_INDEXING:
        raise ValueError(f"grid_indexing={grid_indexing!r}: expected one of {', '.join(GRID_INDEXING)}")
    axes = [torch.arange(n, dtype=torch.float32) for n in grid]
    if ref_grid is not None:
        axes = [t / n * r for t, n, r in zip(axes, grid, ref_grid, strict=True)]
    rows, cols = torch.meshgrid(*axes, indexing="ij")                     # each (H, W)
    first, second = (rows, cols) if grid_indexing == "ij" else (cols, rows)
    return torch.stack([first.flatten(), second.flatten()], dim=-1)       # (H*W, 2)


def rope_from_angles(angles: torch.Tensor, num_prefix_tokens: int = 0) -> Rope:
    """(cos, signed sin) tables from per-pair angles (..., N, D/2): channel pair (2i, 2i+1) turns by
    angle i (timm's interleaved layout, `apply_rot_embed_cat(half=False)`).

    `signed sin` carries rot()'s minus sign, [-s0, s0, -s1, s1, ...], so rope(q) = q * cos +
    swap_pairs(q) * sin. `num_prefix_tokens` identity rows (cos 1, sin 0) go in front, so the rotation
    applies to the whole sequence with no slicing and leaves class / register tokens as they are.
    """
    angles = angles.repeat_interleave(2, dim=-1)                          # (..., N, D): pairs share an angle
    sin, cos = angles.sin(), angles.cos()
    sin = sin * torch.tensor([-1.0, 1.0], device=sin.device).repeat(sin.shape[-1] // 2)
    if num_prefix_tokens:
        cos = F.pad(cos, (0, 0, num_prefix_tokens, 0), value=1.0)
        sin = F.pad(sin, (0, 0, num_prefix_tokens, 0), value=0.0)
    return cos, sin


def rope_tables(grid: tuple[int, int], head_dim: int, num_prefix_tokens: int = 0,
                ref_grid: tuple[int, int] | None = None, temperature: float = 10000.0,
                grid_indexing: str = "ij") -> Rope:
    """Axial 2-D rotary tables: (cos, signed sin), each (prefix + H*W, head_dim).

    timm's `RotaryEmbeddingCat` (language-style frequencies): for head_dim D, F = D // 4 frequencies
    f_j = temperature ** (-j / F). A patch at positions (a, b) (see `grid_positions`; (y, x) for 'ij',
    (x, y) for 'xy') has angles [a*f_0 .. a*f_{F-1}, b*f_0 .. b*f_{F-1}], one per channel pair.
    Computed in fp32 as timm does.
    """
    num_bands = head_dim // 4
    bands = 1.0 / temperature ** (torch.arange(num_bands, dtype=torch.float32) / num_bands)  # (F,)
    pos = grid_positions(grid, grid_indexing, ref_grid)                  # (H*W, 2)
    angles = (pos[..., None] * bands).reshape(pos.shape[0], 2 * num_bands)  # (H*W, D/2): a bands, b bands
    return rope_from_angles(angles, num_prefix_tokens)


class RopeMixed(nn.Module):
    """RoPE-Mixed (Heo et al., https://arxiv.org/abs/2403.13298; timm's `RotaryEmbeddingMixed`):
    learned 2-D frequencies, one set per block and head, stored as `freqs` (2, depth, nh, D/2).

    A patch at positions (a, b) (`grid_positions`) turns channel pair i of head h in block l by
    a * freqs[0, l, h, i] + b * freqs[1, l, h, i]. The angle tables are outer products of positions and
    frequencies, written as matmuls as timm writes them (they count as such). `forward` returns one
    (cos, signed sin) pair per block, each (nh, prefix + H*W, D).

    Initialised as the paper does: magnitudes temperature ** (-4i / D) along a random direction per
    block and head (for a model that is not loaded from weights).
    """

    def __init__(self, head_dim: int, depth: int, num_heads: int, temperature: float = 10.0,
                 grid_indexing: str = "xy"):
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"RoPE-Mixed needs a head dim divisible by 4, got {head_dim}")
        self.grid_indexing = grid_indexing
        mag = 1.0 / temperature ** (torch.arange(0, head_dim, 4, dtype=torch.float32) / head_dim)  # (D/4,)
        theta = torch.rand(depth, num_heads, 1) * 2 * math.pi                # a direction per block, head
        fx = torch.cat([mag * theta.cos(), mag * (theta + math.pi / 2).cos()], dim=-1)  # (depth, nh, D/2)
        fy = torch.cat([mag * theta.sin(), mag * (theta + math.pi / 2).sin()], dim=-1)
        self.freqs = nn.Parameter(torch.stack([fx, fy]))                 # (2, depth, nh, D/2)

    def forward(self, grid: tuple[int, int], num_prefix_tokens: int = 0) -> list[Rope]:
        freqs = self.freqs.float()
        pos = grid_positions(grid, self.grid_indexing).to(freqs.device)  # (N, 2)
        angles = pos[:, :1] @ freqs[0].unsqueeze(-2) + pos[:, 1:] @ freqs[1].unsqueeze(-2)  # (depth, nh, N, D/2)
        cos, sin = rope_from_angles(angles, num_prefix_tokens)          # (depth, nh, T, D)
        return list(zip(cos.unbind(0), sin.unbind(0), strict=True))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + swap_pairs(x) * sin over the last dim (sin already signed, see `rope_from_angles`)."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)              # [q1, q0, q3, q2, ...]
    return torch.addcmul(x * cos, swapped, sin)


# ------------------------------------------------------------------------------ relative position bias

def relative_log_coords(grid: tuple[int, int]) -> torch.Tensor:
    """(2H-1, 2W-1, 2) table of every (dy, dx) offset, squashed as sign(d) * ln(1 + |d|).

    timm calls this the 'cr' log-coordinate mode (Swin-V2 uses log2 over a normalized range).
    """
    h, w = grid
    dy = torch.arange(-(h - 1), h, dtype=torch.float32)
    dx = torch.arange(-(w - 1), w, dtype=torch.float32)
    coords = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), dim=-1)  # (2H-1, 2W-1, 2)
    return torch.sign(coords) * torch.log1p(coords.abs())


def relative_position_index(grid: tuple[int, int], num_prefix_tokens: int = 0) -> torch.Tensor:
    """Flat (T*T,) index into the (2H-1)*(2W-1) offset table for every query/key pair, T = prefix + H*W.

    Pairs that involve a prefix token point one past the table (an all-zero column: no bias).
    """
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()                                   # (N,)
    rel_y = ys[:, None] - ys[None, :] + (h - 1)                           # (N, N) in [0, 2H-2]
    rel_x = xs[:, None] - xs[None, :] + (w - 1)                           # (N, N) in [0, 2W-2]
    index = rel_y * (2 * w - 1) + rel_x                                   # row-major into the table
    if num_prefix_tokens:
        no_bias = (2 * h - 1) * (2 * w - 1)
        index = F.pad(index, (num_prefix_tokens, 0, num_prefix_tokens, 0), value=no_bias)
    return index.flatten()


class RelPosMlp(nn.Module):
    """Attention bias (1, nh, T, T) from an MLP (2 -> hidden -> nh, ReLU) over each pair's log offset.

    The MLP runs once over the (2H-1)*(2W-1) distinct offsets, then one gather spreads the result over
    all T*T pairs (prefix pairs read an appended zero column).
    """

    def __init__(self, grid: tuple[int, int], num_heads: int, hidden_dim: int = 128,
                 num_prefix_tokens: int = 0):
        super().__init__()
        self.num_heads = num_heads
        self.num_tokens = num_prefix_tokens + grid[0] * grid[1]
        self.mlp = Mlp(2, hidden_dim, out_features=num_heads, act_layer=nn.ReLU)
        self.register_buffer("rel_coords_log", relative_log_coords(grid).reshape(-1, 2), persistent=False)
        self.register_buffer("relative_position_index", relative_position_index(grid, num_prefix_tokens),
                             persistent=False)

    def forward(self) -> torch.Tensor:
        table = self.mlp(self.rel_coords_log).t()                 # (nh, L)
        table = F.pad(table, (0, 1))                              # (nh, L + 1), last column: no bias
        T = self.num_tokens
        return table[:, self.relative_position_index].view(1, self.num_heads, T, T)
