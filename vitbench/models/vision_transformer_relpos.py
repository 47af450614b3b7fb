"""ViT with a relative position bias from a small MLP over log-spaced offsets (timm's
`VisionTransformerRelPos`, 'mlp' rel-pos type). No absolute position embedding; the bias of every
query/key patch pair is added to the attention logits, prefix (class) token pairs get no bias.

Variants (timm's names): `cls` a class token pooled by 'token'; `clsgap` a class token that is still
avg-pooled with fc_norm; `rpn` residual post-norm blocks (timm's ResPostRelPosBlock: Block with
post_norm=True, no layer scale); `srelpos` one bias MLP owned by the model (`shared_rel_pos`),
computed once per forward and handed to every block, instead of one per block.

Parameter names are timm's, so timm checkpoints load strictly; the rel-pos index and coordinate
tables are derived from the patch grid and kept as non-persistent buffers.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, ModelFamily, drop_derived, register_family
from vitbench.models.layers import Attention, Block, PatchEmbed, RelPosMlp

__all__ = ["VisionTransformerRelPos", "checkpoint_filter_fn", "ARCHS"]


def relpos_attention(grid: tuple[int, int], num_prefix_tokens: int, hidden_dim: int = 128):
    """An `attn_layer` for Block: the shared Attention owning a RelPosMlp bias for `grid`."""
    def make(dim: int, num_heads: int, **kwargs) -> Attention:
        return Attention(dim, num_heads, rel_pos=RelPosMlp(grid, num_heads, hidden_dim, num_prefix_tokens),
                         **kwargs)
    return make


class SharedBiasAttention(Attention):
    """Attention whose per-forward block context (ViTBase's `ctx`, which Block passes where rotary
    tables would go) is the model's shared rel-pos bias (1, nh, T, T); no bias module of its own."""

    def forward(self, x: torch.Tensor, shared_bias: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, attn_bias=shared_bias)


class VisionTransformerRelPos(ViTBase):
    """Patch embed -> [class token] -> rel-pos blocks -> norm -> pool ('avg' over patches, or
    'token') -> fc_norm -> head. With `fc_norm` the final norm moves after pooling (timm's rule).

    rel_pos_dim: hidden width of the bias MLP (timm's default 128).
    shared_rel_pos: one bias MLP for all blocks (`shared_rel_pos.*`) instead of one per block.
    post_norm: residual post-norm blocks (rpn), which carry no layer scale (init_values unused).
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, class_token: bool = False, global_pool: str = "avg",
                 fc_norm: bool = False, init_values: float | None = 1e-6, norm_eps: float = 1e-6,
                 rel_pos_dim: int = 128, shared_rel_pos: bool = False, post_norm: bool = False):
        super().__init__()
        if global_pool not in ("", "avg", "token"):
            raise ValueError(f"global_pool={global_pool!r}: expected '', 'avg' or 'token'")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs a class token (class_token=True)")
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1 if class_token else 0
        self.img_size = img_size
        self.patch_size = patch_size

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        grid = self.patch_embed.grid_size
        if shared_rel_pos:
            self.shared_rel_pos = RelPosMlp(grid, num_heads, rel_pos_dim, self.num_prefix_tokens)
            attn_layer = SharedBiasAttention
        else:
            self.shared_rel_pos = None
            attn_layer = relpos_attention(grid, self.num_prefix_tokens, rel_pos_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, None if post_norm else init_values, norm_layer,
                  attn_layer=attn_layer, post_norm=post_norm)
            for _ in range(depth)])
        self.norm = nn.Identity() if fc_norm else norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim) if fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens, and the blocks' context: the shared bias (computed once per forward) or None."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            # The rel-pos index is built for the model's patch grid (timm: fixed_input_size).
            raise ValueError(f"input is {tuple(x.shape[-2:])}, this model takes {self.img_size}x{self.img_size}")
        x = self.patch_embed(x)                                   # (B, N, C)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x, None if self.shared_rel_pos is None else self.shared_rel_pos()


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's rel-pos ViT checkpoints already use these keys; drop derived buffers if a dump has them."""
    return drop_derived(state_dict, (".relative_position_index", ".rel_coords_log"))


# ------------------------------------------------------------------------------------ architectures

# timm's vision_transformer_relpos.py. NOTE (timm): 'clsgap' has a class token but is still
# avg-pooled over the patches, with fc_norm. Only the rpn B/32+ keeps timm's default qkv bias.
_GAP = dict(fc_norm=True)
_RPN = dict(post_norm=True)

ARCHS: dict[str, ArchSpec] = {
    "vit_relpos_small_patch16_224": ArchSpec("small", 16, 224, _GAP),
    "vit_relpos_medium_patch16_224": ArchSpec("medium", 16, 224, _GAP),
    "vit_relpos_base_patch16_224": ArchSpec("base", 16, 224, _GAP),
    "vit_srelpos_small_patch16_224": ArchSpec("small", 16, 224, dict(shared_rel_pos=True, rel_pos_dim=384)),
    "vit_srelpos_medium_patch16_224": ArchSpec("medium", 16, 224, dict(shared_rel_pos=True, rel_pos_dim=512)),
    "vit_relpos_medium_patch16_cls_224": ArchSpec(
        "medium", 16, 224, dict(class_token=True, global_pool="token", rel_pos_dim=256)),
    "vit_relpos_base_patch16_clsgap_224": ArchSpec("base", 16, 224, dict(_GAP, class_token=True)),
    "vit_relpos_medium_patch16_rpn_224": ArchSpec("medium", 16, 224, _RPN),
    "vit_relpos_base_patch32_plus_rpn_256": ArchSpec("base_plus", 32, 256, dict(_RPN, qkv_bias=True)),
}

FAMILY = register_family(ModelFamily("vision_transformer_relpos", "ViT (relative position)",
                                     VisionTransformerRelPos, checkpoint_filter_fn, ARCHS))
