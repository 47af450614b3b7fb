"""Blocks shared by the ViT families. Parameter names are timm's, so timm state dicts load as-is."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    """fc1 -> act -> fc2 (timm `Mlp`; dropout is identity at eval and so left out)."""

    def __init__(self, dim: int, hidden_dim: int, act_layer: type[nn.Module] = nn.GELU, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel residual-branch scale (CaiT); the parameter is `gamma` as in timm."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


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


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and SDPA.

    The explicit math SDPA computes: softmax(q @ k^T * head_dim**-0.5) @ v.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, proj_bias: bool = True):
        super().__init__()
        assert dim % num_heads == 0, "dim must be divisible by num_heads"
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                 # each (B, nh, N, hd)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(B, N, C)  # (B, N, C)
        return self.proj(x)


def resample_abs_pos_embed(pos_embed: torch.Tensor, new_size: tuple[int, int], num_prefix_tokens: int = 1,
                           interpolation: str = "bicubic", antialias: bool = True) -> torch.Tensor:
    """Resize a learned (1, prefix + H*W, C) position table to the grid `new_size` (timm's rule).

    The first `num_prefix_tokens` rows (class / register positions) are kept as they are; the rest
    must be a square grid, which is interpolated in fp32 and cast back to the table's dtype.
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    n, dim = grid.shape[1], grid.shape[2]
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"cannot resample a position table of {n} grid tokens: not a square grid")
    if (side, side) == tuple(new_size):
        return pos_embed
    grid = grid.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()       # (1, C, H, W)
    grid = F.interpolate(grid, size=tuple(new_size), mode=interpolation, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)   # (1, H'*W', C)
    return torch.cat([prefix, grid], dim=1)
