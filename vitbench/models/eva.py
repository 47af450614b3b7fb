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

from functools import partial

import torch
import torch.nn as nn

from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, Family, drop_derived, register_family
from vitbench.models.layers import Attention, Block, PatchEmbed, Rope, rope_tables

__all__ = ["Eva", "checkpoint_filter_fn", "ARCHS"]


# ------------------------------------------------------------------------------------------------ model

class Eva(ViTBase):
    """Patch embed -> [register tokens, patches] -> rope blocks -> avg pool over patches -> fc_norm -> head.

    The blocks are the shared `Block` with layer scale stored as `gamma_1`/`gamma_2` and attention with
    q/v-only biases (timm's EvaBlock / EvaAttention keys). timm's Eva with avg pooling puts the final
    norm after pooling (`fc_norm`); `norm` is then identity.
    """

    def __init__(self, img_size: int = 256, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, num_reg_tokens: int = 1, ref_feat_shape: int | None = 16,
                 init_values: float = 1e-5, norm_eps: float = 1e-6):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
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
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer, attn_layer=Attention,
                  attn_kwargs=dict(k_bias=False), gamma_params=True)
            for _ in range(depth)])
        self.norm = nn.Identity()
        self.fc_norm = norm_layer(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _rope_tables(self, grid: tuple[int, int]) -> Rope:
        return rope_tables(grid, self.head_dim, self.num_prefix_tokens, self.ref_feat_shape)

    def _rope(self, grid: tuple[int, int]) -> Rope:
        """The rope tables for a patch grid: the precomputed buffers at the model's own resolution."""
        if grid == self.patch_embed.grid_size:
            return self.rope_cos, self.rope_sin
        cos, sin = self._rope_tables(grid)
        return cos.to(self.rope_cos), sin.to(self.rope_sin)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, Rope]:
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        x = self.patch_embed(x)                                           # (B, N, C)
        if self.reg_token is not None:
            x = torch.cat((self.reg_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x, self._rope(grid)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's SBB rope checkpoints already use these keys; drop rope tables and the zero k-bias if a
    dump carries them (they are derived, never learned)."""
    return drop_derived({k: v for k, v in state_dict.items() if "rope" not in k}, (".k_bias",))


# ------------------------------------------------------------------------------------ architectures

# timm's eva.py, SBB ViT section: registers + GAP, rope positions scaled to a 16x16 grid (the 256 / 16
# grid: a no-op at the native size).
ARCHS: dict[str, ArchSpec] = {
    "vit_medium_patch16_rope_reg1_gap_256": ArchSpec("medium", 16, 256, dict(num_reg_tokens=1)),
    "vit_mediumd_patch16_rope_reg1_gap_256": ArchSpec("mediumd", 16, 256, dict(num_reg_tokens=1, qkv_bias=False)),
    "vit_betwixt_patch16_rope_reg4_gap_256": ArchSpec("betwixt", 16, 256, dict(num_reg_tokens=4)),
    "vit_base_patch16_rope_reg1_gap_256": ArchSpec("base", 16, 256, dict(num_reg_tokens=1)),
}

FAMILY = register_family(Family("eva", Eva, checkpoint_filter_fn, ARCHS))
