"""ViT with 2-D rotary position embedding and register tokens (timm's SBB `vit_*_rope_reg*_gap_256`,
which timm builds with its `Eva` class): no absolute position embedding, register tokens in front of
the patches, layer scale as `gamma_1` / `gamma_2`, average pooling over patches with fc_norm.

Rotary embedding (timm's `RotaryEmbeddingCat`, language-style frequencies, interleaved pairs): for
head_dim D, F = D // 4 frequencies f_j = 10000 ** (-j / F). Patch (y, x) of the grid, rescaled to the
reference grid (t = y / H * ref_H), has angles [y*f_0 .. y*f_{F-1}, x*f_0 .. x*f_{F-1}], each repeated
twice, so channel pair (2i, 2i+1) is rotated by angle i:

    q' = q * cos + rot(q) * sin,   rot([q0, q1, q2, q3, ...]) = [-q1, q0, -q3, q2, ...]

applied to q and k of patch tokens only (register tokens are left as they are).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vitbench.models._base import ViTBase
from vitbench.models._registry import register_model
from vitbench.models.layers import Mlp, PatchEmbed

LN_EPS = 1e-6  # timm's Eva uses timm.layers.LayerNorm, eps=1e-6


# ---------------------------------------------------------------------------------------------
# Rotary position embedding

def rope_tables(grid: tuple[int, int], head_dim: int, num_prefix_tokens: int = 0,
                ref_grid: tuple[int, int] | None = None, temperature: float = 10000.0,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, signed sin), each (prefix + H*W, head_dim), so that rope(q) = q * cos + swap_pairs(q) * sin.

    `signed sin` carries rot()'s minus sign: [-s0, s0, -s1, s1, ...]. Prefix rows are the identity
    (cos 1, sin 0), so the rotation applies to the whole sequence with no slicing or concatenation.
    Computed in fp32 as timm does.
    """
    num_bands = head_dim // 4
    bands = 1.0 / temperature ** (torch.arange(num_bands, dtype=torch.float32) / num_bands)  # (F,)
    axes = [torch.arange(n, dtype=torch.float32) for n in grid]
    if ref_grid is not None:
        axes = [t / n * r for t, n, r in zip(axes, grid, ref_grid)]
    pos = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)      # (H, W, 2): (y, x)
    angles = (pos[..., None] * bands).reshape(-1, 2 * num_bands)          # (H*W, D/2): y bands, x bands
    angles = angles.repeat_interleave(2, dim=-1)                          # (H*W, D): pairs share an angle
    sin, cos = angles.sin(), angles.cos()
    sign = torch.tensor([-1.0, 1.0]).repeat(head_dim // 2)               # rot(): (-q1, q0) per pair
    sin = sin * sign
    if num_prefix_tokens:
        cos = F.pad(cos, (0, 0, num_prefix_tokens, 0), value=1.0)
        sin = F.pad(sin, (0, 0, num_prefix_tokens, 0), value=0.0)
    return cos, sin


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + swap_pairs(x) * sin over the last dim (sin already signed, see `rope_tables`)."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)              # [q1, q0, q3, q2, ...]
    return torch.addcmul(x * cos, swapped, sin)


# ---------------------------------------------------------------------------------------------
# Blocks

class RopeAttention(nn.Module):
    """Fused-qkv attention with rope on q, k (keys as timm's EvaAttention).

    With bias, q and v have one (`q_bias`, `v_bias`) and k has none: timm's layout, kept as parameters
    (the k part is a zero buffer, not in the state dict).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.register_buffer("k_bias", torch.zeros(dim), persistent=False)
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, N, C = x.shape
        bias = None if self.q_bias is None else torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)
        qkv = qkv.reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, nh, N, hd)
        if rope is not None:
            cos, sin = rope                                               # (N, hd)
            qk = apply_rope(qkv[:2], cos.to(qkv.dtype), sin.to(qkv.dtype))  # (2, B, nh, N, hd)
            q, k, v = qk[0], qk[1], qkv[2]
        else:
            q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(B, N, C)                           # (B, N, C)
        return self.proj(x)


class RopeBlock(nn.Module):
    """Pre-norm block with layer scale: x + gamma_1 * attn(norm1(x)), x + gamma_2 * mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = RopeAttention(dim, num_heads, qkv_bias)
        self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.gamma_1 * self.attn(self.norm1(x), rope)
        return x + self.gamma_2 * self.mlp(self.norm2(x))


# ---------------------------------------------------------------------------------------------
# Model

class Eva(ViTBase):
    """Patch embed -> [register tokens, patches] -> rope blocks -> avg pool over patches -> fc_norm -> head.

    timm's Eva with avg pooling puts the final norm after pooling (`fc_norm`); `norm` is then identity.
    """

    def __init__(self, img_size: int = 256, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, num_reg_tokens: int = 1, ref_feat_shape: int | None = 16,
                 init_values: float = 1e-5):
        super().__init__()
        self.num_classes = num_classes
        self.global_pool = "avg"
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = num_reg_tokens
        self.img_size = img_size
        self.patch_size = patch_size
        self.head_dim = embed_dim // num_heads
        self.ref_feat_shape = (ref_feat_shape, ref_feat_shape) if ref_feat_shape else None

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        self.reg_token = nn.Parameter(torch.zeros(1, num_reg_tokens, embed_dim)) if num_reg_tokens else None
        cos, sin = self._rope_tables(self.patch_embed.grid_size)
        self.register_buffer("rope_cos", cos, persistent=False)           # (prefix + H*W, head_dim)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.blocks = nn.ModuleList([
            RopeBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values) for _ in range(depth)])
        self.norm = nn.Identity()
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _rope_tables(self, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_tables(grid, self.head_dim, self.num_prefix_tokens, self.ref_feat_shape)

    def _rope(self, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rope tables for a patch grid: the precomputed buffers at the model's own resolution."""
        if grid == self.patch_embed.grid_size:
            return self.rope_cos, self.rope_sin
        cos, sin = self._rope_tables(grid)
        return cos.to(self.rope_cos), sin.to(self.rope_sin)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        x = self.patch_embed(x)                                           # (B, N, C)
        if self.reg_token is not None:
            x = torch.cat((self.reg_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x, self._rope(grid)

    def _block(self, blk: nn.Module, x: torch.Tensor, rope) -> torch.Tensor:
        return blk(x, rope)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's SBB rope checkpoints already use these keys; drop rope tables and the zero k-bias if a
    dump carries them (they are derived, never learned)."""
    return {k: v for k, v in state_dict.items()
            if "rope" not in k and not k.endswith(".k_bias")}


Eva.checkpoint_filter_fn = staticmethod(checkpoint_filter_fn)


# ---------------------------------------------------------------------------------------------
# Architectures (sizes as data; values from timm's eva.py, SBB ViT section)

@dataclass(frozen=True)
class RopeVariant:
    embed_dim: int
    depth: int
    num_heads: int
    num_reg_tokens: int
    qkv_bias: bool = True
    img_size: int = 256
    patch_size: int = 16
    ref_feat_shape: int = 16   # rope positions are scaled to a 16x16 grid (the 256 / 16 grid: no-op)


VARIANTS: dict[str, RopeVariant] = {
    "vit_medium_patch16_rope_reg1_gap_256": RopeVariant(512, 12, 8, num_reg_tokens=1),
    "vit_mediumd_patch16_rope_reg1_gap_256": RopeVariant(512, 20, 8, num_reg_tokens=1, qkv_bias=False),
    "vit_betwixt_patch16_rope_reg4_gap_256": RopeVariant(640, 12, 10, num_reg_tokens=4),
    "vit_base_patch16_rope_reg1_gap_256": RopeVariant(768, 12, 12, num_reg_tokens=1),
}


def _create(arch: str, **kwargs) -> Eva:
    return Eva(**{**VARIANTS[arch].__dict__, **kwargs})


@register_model
def vit_medium_patch16_rope_reg1_gap_256(**kwargs) -> Eva:
    return _create("vit_medium_patch16_rope_reg1_gap_256", **kwargs)


@register_model
def vit_mediumd_patch16_rope_reg1_gap_256(**kwargs) -> Eva:
    return _create("vit_mediumd_patch16_rope_reg1_gap_256", **kwargs)


@register_model
def vit_betwixt_patch16_rope_reg4_gap_256(**kwargs) -> Eva:
    return _create("vit_betwixt_patch16_rope_reg4_gap_256", **kwargs)


@register_model
def vit_base_patch16_rope_reg1_gap_256(**kwargs) -> Eva:
    return _create("vit_base_patch16_rope_reg1_gap_256", **kwargs)
