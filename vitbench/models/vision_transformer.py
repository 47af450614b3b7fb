"""The plain Vision Transformer family (ViT, DeiT, the SBB register/GAP ViTs), timm's state-dict keys.

Papers: ViT https://arxiv.org/abs/2010.11929, DeiT https://arxiv.org/abs/2012.12877,
registers https://arxiv.org/abs/2309.16588, parallel blocks (ViT-22B) https://arxiv.org/abs/2302.05442.

Layout, as in timm: blocks -> model -> checkpoint_filter_fn -> size table -> builder -> entrypoints.
Numbers that matter for parity with timm: LayerNorm eps 1e-6, exact (erf) GELU, mlp hidden width
int(dim * mlp_ratio), LayerScale only when init_values is set, 'avg' pooling moves the final norm
after the pool (fc_norm).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from vitbench.models._base import ViTBase
from vitbench.models._registry import register_model
from vitbench.models.layers import (
    Attention,
    LayerScale,
    Mlp,
    PatchEmbed,
    resample_abs_pos_embed,
)

__all__ = ["VisionTransformer", "Block", "ParallelScalingBlock", "checkpoint_filter_fn", "build_vit"]


# ----------------------------------------------------------------------------------------------- blocks

class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class ParallelScalingBlock(nn.Module):
    """Attention and MLP in parallel off one norm and one fused input projection (timm's
    ParallelScalingBlock): x + ls(attn_out_proj(attn(q, k, v)) + mlp_out_proj(gelu(h))).

    in_proj's output is laid out [mlp hidden | q | k | v]; when qkv_bias is off the MLP keeps its own
    bias (`mlp_bias`), as in timm.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None, norm_layer=nn.LayerNorm):
        super().__init__()
        assert dim % num_heads == 0, "dim must be divisible by num_heads"
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.mlp_hidden = int(dim * mlp_ratio)
        self.in_norm = norm_layer(dim)
        self.in_proj = nn.Linear(dim, self.mlp_hidden + 3 * dim, bias=qkv_bias)
        self.mlp_bias = None if qkv_bias else nn.Parameter(torch.zeros(self.mlp_hidden))
        self.mlp_act = nn.GELU()
        self.attn_out_proj = nn.Linear(dim, dim)
        self.mlp_out_proj = nn.Linear(self.mlp_hidden, dim)
        self.ls = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        h, qkv = self.in_proj(self.in_norm(x)).split([self.mlp_hidden, 3 * C], dim=-1)
        if self.mlp_bias is not None:
            h = h + self.mlp_bias
        q, k, v = qkv.view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)  # (B, nh, N, hd)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)                  # (B, N, C)
        return x + self.ls(self.attn_out_proj(a) + self.mlp_out_proj(self.mlp_act(h)))


BLOCKS = {"block": Block, "parallel": ParallelScalingBlock}


# ------------------------------------------------------------------------------------------------ model

class VisionTransformer(ViTBase):
    """ViT: patch embed -> [cls][reg] tokens + learned positions -> blocks -> norm -> pool -> head.

    patch_embed: any module mapping (B, 3, H, W) -> (B, N, C) with `num_patches` and `grid_size`
        (the hybrid passes a ResNet-backed one); default a PatchEmbed of `patch_size`.
    global_pool: 'token' (class token) or 'avg' (mean of the non-prefix tokens). With 'avg' the
        final norm is applied after pooling (`fc_norm`) unless fc_norm=False.
    no_embed_class: the position table covers only the patch tokens (added before the prefix
        tokens are concatenated), as in DeiT-3 / big_vision / the SBB models.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 global_pool: str = "token", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float | None = None,
                 class_token: bool = True, reg_tokens: int = 0, no_embed_class: bool = False,
                 fc_norm: bool | None = None, norm_eps: float = 1e-6, block_fn: str = "block",
                 patch_embed: nn.Module | None = None):
        super().__init__()
        assert global_pool in ("token", "avg"), f"unsupported global_pool {global_pool!r}"
        assert class_token or global_pool != "token", "token pooling needs a class token"
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = int(class_token) + reg_tokens
        self.no_embed_class = no_embed_class
        self.img_size = img_size

        self.patch_embed = patch_embed if patch_embed is not None else PatchEmbed(img_size, patch_size, 3, embed_dim)
        grid = self.patch_embed.grid_size
        self.patch_size = img_size // grid[0]       # pixels per token (16 for the R50 hybrid)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim)) if reg_tokens else None
        embed_len = self.patch_embed.num_patches + (0 if no_embed_class else self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, embed_dim) * 0.02)

        block = BLOCKS[block_fn]
        self.blocks = nn.Sequential(*[
            block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer) for _ in range(depth)])
        self.norm = norm_layer(embed_dim) if not use_fc_norm else nn.Identity()
        self.fc_norm = norm_layer(embed_dim) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    # -- forward (the rest is ViTBase)
    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.no_embed_class:
            x = x + self.pos_embed                     # positions for patch tokens only
            return torch.cat(prefix + [x], dim=1) if prefix else x
        if prefix:
            x = torch.cat(prefix + [x], dim=1)
        return x + self.pos_embed                      # (B, prefix + N, C)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        self._check_size(x)
        return self._pos_embed(self.patch_embed(x)), None

    def _check_size(self, x: torch.Tensor) -> None:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"{type(self).__name__} expects {self.img_size}x{self.img_size} input, "
                             f"got {tuple(x.shape[-2:])}")

# --------------------------------------------------------------------------------- checkpoint filter

def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VisionTransformer) -> dict[str, torch.Tensor]:
    """A timm ViT state dict made loadable into `model`: unwrap {'model'|'state_dict': ...} and resample
    `pos_embed` to the model's patch grid when the checkpoint was trained at another resolution."""
    for wrapper in ("model", "state_dict"):
        if isinstance(state_dict.get(wrapper), dict):
            state_dict = state_dict[wrapper]
    out = {}
    for k, v in state_dict.items():
        if k == "pos_embed" and v.shape != model.pos_embed.shape:
            num_prefix = 0 if model.no_embed_class else model.num_prefix_tokens
            v = resample_abs_pos_embed(v, model.patch_embed.grid_size, num_prefix_tokens=num_prefix)
        out[k] = v
    return out


VisionTransformer.checkpoint_filter_fn = staticmethod(checkpoint_filter_fn)


# -------------------------------------------------------------------------------------- size table

# Model sizes: (embed_dim, depth, num_heads, mlp_ratio). ViT/DeiT sizes from the ViT and DeiT papers;
# the SBB sizes ("searching for better baselines") from timm's vision_transformer.py.
SIZES: dict[str, tuple[int, int, int, float]] = {
    "tiny": (192, 12, 3, 4.0),
    "small": (384, 12, 6, 4.0),
    "base": (768, 12, 12, 4.0),
    "large": (1024, 24, 16, 4.0),
    "wee": (256, 14, 4, 5.0),
    "pwee": (256, 16, 4, 5.0),
    "little": (320, 14, 5, 5.6),
    "medium": (512, 12, 8, 4.0),
    "mediumd": (512, 20, 8, 4.0),
    "betwixt": (640, 12, 10, 4.0),
}

# SBB recipe: no class token, registers, GAP + fc_norm, LayerScale, positions for patches only.
_SBB = dict(class_token=False, no_embed_class=True, global_pool="avg", init_values=1e-5)

# Architecture -> (size, patch_size, img_size, extra VisionTransformer kwargs).
ARCHS: dict[str, tuple[str, int, int, dict]] = {
    "vit_tiny_patch16_224": ("tiny", 16, 224, {}),
    "vit_small_patch16_224": ("small", 16, 224, {}),
    "vit_base_patch16_224": ("base", 16, 224, {}),
    "vit_base_patch16_384": ("base", 16, 384, {}),
    "vit_base_patch32_384": ("base", 32, 384, {}),
    "vit_large_patch16_224": ("large", 16, 224, {}),
    "vit_large_patch16_384": ("large", 16, 384, {}),
    "deit_tiny_patch16_224": ("tiny", 16, 224, {}),
    "deit_small_patch16_224": ("small", 16, 224, {}),
    "deit_base_patch16_224": ("base", 16, 224, {}),
    "vit_wee_patch16_reg1_gap_256": ("wee", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_pwee_patch16_reg1_gap_256": ("pwee", 16, 256, dict(_SBB, reg_tokens=1, block_fn="parallel")),
    "vit_little_patch16_reg1_gap_256": ("little", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_little_patch16_reg4_gap_256": ("little", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_medium_patch16_reg1_gap_256": ("medium", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_medium_patch16_reg4_gap_256": ("medium", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_mediumd_patch16_reg4_gap_256": ("mediumd", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_betwixt_patch16_reg1_gap_256": ("betwixt", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_betwixt_patch16_reg4_gap_256": ("betwixt", 16, 256, dict(_SBB, reg_tokens=4)),
}


# ----------------------------------------------------------------------------------------- builder

def build_vit(arch: str, num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """The VisionTransformer of table entry `arch`; `kwargs` override any of its settings."""
    size, patch_size, img_size, extra = ARCHS[arch]
    embed_dim, depth, num_heads, mlp_ratio = SIZES[size]
    args = dict(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                num_heads=num_heads, mlp_ratio=mlp_ratio, **extra)
    return VisionTransformer(num_classes=num_classes, **{**args, **kwargs})


# ------------------------------------------------------------------------------------- entrypoints

@register_model
def vit_tiny_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_tiny_patch16_224", num_classes, **kwargs)


@register_model
def vit_small_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_small_patch16_224", num_classes, **kwargs)


@register_model
def vit_base_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_base_patch16_224", num_classes, **kwargs)


@register_model
def vit_base_patch16_384(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_base_patch16_384", num_classes, **kwargs)


@register_model
def vit_base_patch32_384(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_base_patch32_384", num_classes, **kwargs)


@register_model
def vit_large_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_large_patch16_224", num_classes, **kwargs)


@register_model
def vit_large_patch16_384(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_large_patch16_384", num_classes, **kwargs)


@register_model
def deit_tiny_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("deit_tiny_patch16_224", num_classes, **kwargs)


@register_model
def deit_small_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("deit_small_patch16_224", num_classes, **kwargs)


@register_model
def deit_base_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("deit_base_patch16_224", num_classes, **kwargs)


@register_model
def vit_wee_patch16_reg1_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_wee_patch16_reg1_gap_256", num_classes, **kwargs)


@register_model
def vit_pwee_patch16_reg1_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_pwee_patch16_reg1_gap_256", num_classes, **kwargs)


@register_model
def vit_little_patch16_reg1_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_little_patch16_reg1_gap_256", num_classes, **kwargs)


@register_model
def vit_little_patch16_reg4_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_little_patch16_reg4_gap_256", num_classes, **kwargs)


@register_model
def vit_medium_patch16_reg1_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_medium_patch16_reg1_gap_256", num_classes, **kwargs)


@register_model
def vit_medium_patch16_reg4_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_medium_patch16_reg4_gap_256", num_classes, **kwargs)


@register_model
def vit_mediumd_patch16_reg4_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_mediumd_patch16_reg4_gap_256", num_classes, **kwargs)


@register_model
def vit_betwixt_patch16_reg1_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_betwixt_patch16_reg1_gap_256", num_classes, **kwargs)


@register_model
def vit_betwixt_patch16_reg4_gap_256(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    return build_vit("vit_betwixt_patch16_reg4_gap_256", num_classes, **kwargs)
