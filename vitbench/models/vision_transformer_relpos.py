"""ViT with a relative position bias from a small MLP over log-spaced offsets (timm's
`VisionTransformerRelPos`, 'mlp' rel-pos type). No absolute position embedding; the bias of every
query/key patch pair is added to the attention logits, prefix (class) token pairs get no bias.

Parameter names are timm's, so timm checkpoints load strictly; the rel-pos index and coordinate
tables are derived from the patch grid and kept as non-persistent buffers.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, Family, drop_derived, register_family
from vitbench.models.layers import Attention, Block, PatchEmbed, RelPosMlp

__all__ = ["VisionTransformerRelPos", "checkpoint_filter_fn", "ARCHS"]


def relpos_attention(grid: tuple[int, int], num_prefix_tokens: int, hidden_dim: int = 128):
    """An `attn_layer` for Block: the shared Attention owning a RelPosMlp bias for `grid`."""
    def make(dim: int, num_heads: int, **kwargs) -> Attention:
        return Attention(dim, num_heads, rel_pos=RelPosMlp(grid, num_heads, hidden_dim, num_prefix_tokens),
                         **kwargs)
    return make


class VisionTransformerRelPos(ViTBase):
    """Patch embed -> [class token] -> rel-pos blocks -> norm -> pool ('avg' over patches, or
    'token') -> fc_norm -> head. With `fc_norm` the final norm moves after pooling (timm's rule)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, class_token: bool = False, global_pool: str = "avg",
                 fc_norm: bool = False, init_values: float = 1e-6, norm_eps: float = 1e-6):
        super().__init__()
        if global_pool not in ("", "avg", "token"):
            raise ValueError(f"global_pool={global_pool!r}: expected '', 'avg' or 'token'")
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1 if class_token else 0
        self.img_size = img_size
        self.patch_size = patch_size

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        attn_layer = relpos_attention(self.patch_embed.grid_size, self.num_prefix_tokens)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer, attn_layer=attn_layer)
            for _ in range(depth)])
        self.norm = nn.Identity() if fc_norm else norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim) if fc_norm else nn.Identity()
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
    return drop_derived(state_dict, (".relative_position_index", ".rel_coords_log"))


# ------------------------------------------------------------------------------------ architectures

# timm's vision_transformer_relpos.py. NOTE (timm): 'clsgap' has a class token but is still
# avg-pooled over the patches, with fc_norm.
ARCHS: dict[str, ArchSpec] = {
    "vit_relpos_base_patch16_clsgap_224": ArchSpec("base", 16, 224, dict(class_token=True, fc_norm=True)),
}

FAMILY = register_family(Family("vision_transformer_relpos", VisionTransformerRelPos, checkpoint_filter_fn, ARCHS))
