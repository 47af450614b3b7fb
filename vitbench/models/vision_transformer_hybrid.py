"""The hybrid ViT: the plain VisionTransformer given a ResNetV2 (BiT) feature map as its patch embed.

Paper: https://arxiv.org/abs/2010.11929 (R50+ViT-B/16). Composition, not a subclass: the model is a
`VisionTransformer` whose `patch_embed` is a `HybridEmbed` (backbone -> 1x1 conv projection -> tokens).

Two weight layouts load into it, both through the one `checkpoint_filter_fn` of this family:
- timm's (`patch_embed.backbone.stages.0.blocks.0.conv1.weight`, `blocks.0.attn.qkv.weight`, ...);
- transformers' ViTHybrid (`vit.embeddings.patch_embeddings.backbone.bit.encoder.stages.0.layers.0...`,
  separate query/key/value, `classifier.*`), e.g. google/vit-hybrid-base-bit-384, whose config.json
  `hf_config_to_kwargs` turns into this model's arguments (note its layer_norm_eps of 1e-12).
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from vitbench.models import _hf
from vitbench.models._builder import ArchSpec, ModelFamily, register_family
from vitbench.models.resnetv2 import ResNetV2, Stem, create_backbone
from vitbench.models.vision_transformer import VisionTransformer
from vitbench.models.vision_transformer import (
    checkpoint_filter_fn as vit_checkpoint_filter_fn,
)

__all__ = ["HybridEmbed", "checkpoint_filter_fn", "hf_config_to_kwargs", "vit_hybrid", "ARCHS"]


class HybridEmbed(nn.Module):
    """CNN feature map -> tokens: backbone, then a `patch_size` conv to embed_dim, flattened to (B, N, C)."""

    def __init__(self, backbone: ResNetV2 | Stem, img_size: int, patch_size: int = 1, embed_dim: int = 768):
        super().__init__()
        self.backbone = backbone
        feat = backbone.feature_size(img_size)
        if feat % patch_size:
            raise ValueError(f"backbone feature map {feat}x{feat} is not divisible by patch_size={patch_size}")
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (feat // patch_size, feat // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(backbone.num_features, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.backbone(x))            # (B, C, H', W')
        return x.flatten(2).transpose(1, 2)        # (B, N, C)


# ------------------------------------------------------------------------------- checkpoint filter

_HF_BACKBONE = "vit.embeddings.patch_embeddings.backbone.bit."

# transformers key -> timm key, by regex: the BiT backbone (its prefix peeled), then the ViT encoder's
# rules shared with the plain ViT (q/k/v fused through _hf.qkv_pattern), then the head.
_HF_RULES: _hf.Rules = [
    (r"^" + re.escape(_HF_BACKBONE) + r"embedder\.convolution\.", "patch_embed.backbone.stem.conv."),
    (r"^" + re.escape(_HF_BACKBONE) + r"embedder\.norm\.", "patch_embed.backbone.stem.norm."),
    (r"^" + re.escape(_HF_BACKBONE) + r"encoder\.stages\.(\d+)\.layers\.(\d+)\.",
     r"patch_embed.backbone.stages.\1.blocks.\2."),
    *_hf.encoder_rules("vit"),
    (r"^classifier\.", "head."),
]


def is_transformers_state_dict(state_dict: dict) -> bool:
    return any(k.startswith(("vit.", "classifier.")) for k in state_dict)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VisionTransformer) -> dict[str, torch.Tensor]:
    """A timm or transformers (ViTHybrid) state dict made loadable into the hybrid `model`."""
    if is_transformers_state_dict(state_dict):
        state_dict = _hf.rename_transformers_keys(state_dict, _HF_RULES, _hf.qkv_pattern("vit"), "ViTHybrid")
    return vit_checkpoint_filter_fn(state_dict, model)


# ---------------------------------------------------------------------------- transformers config

def hf_config_to_kwargs(config: dict) -> dict:
    """`vit_hybrid` kwargs from a transformers ViTHybrid config.json (as a dict)."""
    if config.get("model_type") not in (None, "vit-hybrid"):
        raise ValueError(f"not a ViTHybrid config: model_type {config.get('model_type')!r}")
    backbone = config.get("backbone_config") or {}
    checks = {
        "hidden_act": (config.get("hidden_act", "gelu"), "gelu"),
        "backbone_config.layer_type": (backbone.get("layer_type", "bottleneck"), "bottleneck"),
        "backbone_config.global_padding": (str(backbone.get("global_padding", "SAME")).upper(), "SAME"),
        "backbone_config.width_factor": (backbone.get("width_factor", 1), 1),
    }
    bad = {k: got for k, (got, want) in checks.items() if got != want}
    if bad:
        raise ValueError(f"unsupported ViTHybrid config values: {bad}")
    hidden = config["hidden_size"]
    return dict(
        img_size=_hf.image_size(config),
        patch_size=int(config.get("patch_size", 1)),
        embed_dim=hidden,
        depth=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        mlp_ratio=config["intermediate_size"] / hidden,
        qkv_bias=bool(config.get("qkv_bias", True)),
        norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        backbone_layers=tuple(backbone.get("depths", (3, 4, 9))),
        backbone_channels=tuple(backbone.get("hidden_sizes", (256, 512, 1024, 2048))),
        backbone_stem_chs=backbone.get("embedding_size", 64),
        num_classes=_hf.num_labels(config),
    )


# ------------------------------------------------------------------------------------ architectures

def vit_hybrid(img_size: int = 384, patch_size: int = 1, embed_dim: int = 768, backbone_layers=(3, 4, 9),
               backbone_channels=(256, 512, 1024, 2048), backbone_stem_chs: int = 64,
               **vit_kwargs) -> VisionTransformer:
    """A VisionTransformer over a ResNetV2 feature map (the stem's alone when backbone_layers is
    empty); `vit_kwargs` go to VisionTransformer."""
    backbone = create_backbone(tuple(backbone_layers), tuple(backbone_channels), stem_chs=backbone_stem_chs)
    embed = HybridEmbed(backbone, img_size=img_size, patch_size=patch_size, embed_dim=embed_dim)
    return VisionTransformer(img_size=img_size, embed_dim=embed_dim, patch_embed=embed, **vit_kwargs)


# patch_size is the projection's over the backbone map (1: one token per feature-map cell).
# timm's names: rNN the backbone depth, sNN the nominal stride, pN the projection's patch size.
# NOTE the stem-only tiny_r_s16_p8 tokenizes 32x32 pixels (stride-4 stem, then 8x8 patches).
_R_S16 = dict(backbone_layers=())
_R26_S32 = dict(backbone_layers=(2, 2, 2, 2))
_R50_S32 = dict(backbone_layers=(3, 4, 6, 3))   # the ResNet-50 stages

ARCHS: dict[str, ArchSpec] = {
    # R50+ViT-B/16 at 384: three BiT stages (3, 4, 9) to a stride-16 map, then ViT-B.
    "vit_base_r50_s16_384": ArchSpec("base", 1, 384, dict(backbone_layers=(3, 4, 9))),
    "vit_tiny_r_s16_p8_224": ArchSpec("tiny", 8, 224, _R_S16),
    "vit_tiny_r_s16_p8_384": ArchSpec("tiny", 8, 384, _R_S16),
    "vit_small_r26_s32_224": ArchSpec("small", 1, 224, _R26_S32),
    "vit_small_r26_s32_384": ArchSpec("small", 1, 384, _R26_S32),
    "vit_large_r50_s32_224": ArchSpec("large", 1, 224, _R50_S32),
    "vit_large_r50_s32_384": ArchSpec("large", 1, 384, _R50_S32),
}

FAMILY = register_family(ModelFamily("vision_transformer_hybrid", "ViT hybrid (ResNetV2 backbone)",
                                     vit_hybrid, checkpoint_filter_fn, ARCHS))
