"""ViT with a relative position bias from a small MLP over log-spaced offsets (timm's
`VisionTransformerRelPos`, 'mlp' rel-pos type). No absolute position embedding; the bias of every
query/key patch pair is added to the attention logits, prefix (class) token pairs get no bias.

Parameter names are timm's, so timm checkpoints load strictly; the rel-pos index and coordinate
tables are derived from the patch grid and kept as non-persistent buffers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vitbench.models._base import ViTBase
from vitbench.models._registry import register_model
from vitbench.models.layers import LayerScale, Mlp, PatchEmbed

LN_EPS = 1e-6  # timm builds these models with LayerNorm(eps=1e-6)


# ---------------------------------------------------------------------------------------------
# Relative position bias

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


class RelPosMlpNet(nn.Module):
    """2 -> hidden -> num_heads MLP with ReLU (keys `fc1`, `fc2` as in timm's `Mlp`)."""

    def __init__(self, hidden_dim: int, num_heads: int):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden_dim)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RelPosMlp(nn.Module):
    """Attention bias (1, nh, T, T) from an MLP over the log-spaced offset of each token pair.

    The MLP runs once over the (2H-1)*(2W-1) distinct offsets, then one gather spreads the result over
    all T*T pairs (prefix pairs read an appended zero column).
    """

    def __init__(self, grid: tuple[int, int], num_heads: int, hidden_dim: int = 128,
                 num_prefix_tokens: int = 0):
        super().__init__()
        self.num_heads = num_heads
        self.num_tokens = num_prefix_tokens + grid[0] * grid[1]
        self.mlp = RelPosMlpNet(hidden_dim, num_heads)
        self.register_buffer("rel_coords_log", relative_log_coords(grid).reshape(-1, 2), persistent=False)
        self.register_buffer("relative_position_index", relative_position_index(grid, num_prefix_tokens),
                             persistent=False)

    def get_bias(self) -> torch.Tensor:
        table = self.mlp(self.rel_coords_log).t()                 # (nh, L)
        table = F.pad(table, (0, 1))                              # (nh, L + 1), last column: no bias
        T = self.num_tokens
        bias = table[:, self.relative_position_index]             # (nh, T*T)
        return bias.view(1, self.num_heads, T, T)


# ---------------------------------------------------------------------------------------------
# Blocks

class RelPosAttention(nn.Module):
    """Fused-qkv attention whose logits get the rel-pos bias: softmax(q k^T / sqrt(hd) + bias) v."""

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], qkv_bias: bool = False,
                 num_prefix_tokens: int = 0, rel_pos_dim: int = 128):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.rel_pos = RelPosMlp(grid, num_heads, rel_pos_dim, num_prefix_tokens)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                  # each (B, nh, N, hd)
        bias = self.rel_pos.get_bias().to(q.dtype)               # (1, nh, N, N)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x.transpose(1, 2).reshape(B, N, C)                   # (B, N, C)
        return self.proj(x)


class RelPosBlock(nn.Module):
    """Pre-norm block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, num_prefix_tokens: int = 0, init_values: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = RelPosAttention(dim, num_heads, grid, qkv_bias, num_prefix_tokens)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


# ---------------------------------------------------------------------------------------------
# Model

class VisionTransformerRelPos(ViTBase):
    """Patch embed -> [class token] -> rel-pos blocks -> norm -> pool ('avg' over patches, or
    'token') -> fc_norm -> head. With `fc_norm` the final norm moves after pooling (timm's rule)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, class_token: bool = False, global_pool: str = "avg",
                 fc_norm: bool = False, init_values: float = 1e-6):
        super().__init__()
        assert global_pool in ("", "avg", "token")
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1 if class_token else 0
        self.img_size = img_size
        self.patch_size = patch_size

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        grid = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.blocks = nn.ModuleList([
            RelPosBlock(embed_dim, num_heads, grid, mlp_ratio, qkv_bias, self.num_prefix_tokens, init_values)
            for _ in range(depth)])
        self.norm = nn.Identity() if fc_norm else nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS) if fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        if x.shape[-2:] != (self.img_size, self.img_size):
            # The rel-pos index is built for the model's patch grid (timm: fixed_input_size).
            raise ValueError(f"input is {tuple(x.shape[-2:])}, this model takes {self.img_size}x{self.img_size}")
        x = self.patch_embed(x)                                   # (B, N, C)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x, None


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's rel-pos ViT checkpoints already use these keys; drop derived buffers if a dump has them."""
    derived = (".relative_position_index", ".rel_coords_log")
    return {k: v for k, v in state_dict.items() if not k.endswith(derived)}


VisionTransformerRelPos.checkpoint_filter_fn = staticmethod(checkpoint_filter_fn)


# ---------------------------------------------------------------------------------------------
# Architectures (sizes as data; values from timm's vision_transformer_relpos.py)

@dataclass(frozen=True)
class RelPosVariant:
    embed_dim: int
    depth: int
    num_heads: int
    img_size: int = 224
    patch_size: int = 16
    class_token: bool = False
    global_pool: str = "avg"
    fc_norm: bool = False


VARIANTS: dict[str, RelPosVariant] = {
    # NOTE (timm): class token present but still avg-pooled over patches with fc_norm ("clsgap").
    "vit_relpos_base_patch16_clsgap_224": RelPosVariant(768, 12, 12, class_token=True, fc_norm=True),
}


def _create(arch: str, **kwargs) -> VisionTransformerRelPos:
    return VisionTransformerRelPos(**{**VARIANTS[arch].__dict__, **kwargs})


@register_model
def vit_relpos_base_patch16_clsgap_224(**kwargs) -> VisionTransformerRelPos:
    return _create("vit_relpos_base_patch16_clsgap_224", **kwargs)
