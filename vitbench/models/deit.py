"""DeiT and DeiT-III: the plain Vision Transformer trained data-efficiently (timm's deit.py).

Papers: DeiT https://arxiv.org/abs/2012.12877, DeiT III https://arxiv.org/abs/2204.07118.

- DeiT (no distillation token): exactly `VisionTransformer`.
- DeiT distilled: `VisionTransformerDistilled`, a VisionTransformer with a second prefix token
  (`dist_token`, after the class token, with its own learned position) and a second head
  (`head_dist`) on it. At eval the logits are the mean of the two heads, and pre_logits the mean of
  the two tokens' features (timm's convention).
- DeiT-III: a VisionTransformer with LayerScale (init 1e-6) and positions for the patch tokens only
  (no_embed_class). The original release stores layer scale as `blocks.N.gamma_1/2`; timm's (and
  this model's) keys are `blocks.N.ls1.gamma/ls2.gamma`, so `checkpoint_filter_fn` renames them.
- transformers' DeiT (`deit.` keys, built from config.json by `hf_deit_config_to_kwargs`): always the
  distillation token; DeiTForImageClassificationWithTeacher averages its two heads as timm does,
  DeiTForImageClassification classifies the class token alone (`dist_head=False`: the distillation
  token is in the sequence but has no head).
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from vitbench.models import _hf
from vitbench.models._builder import ArchSpec, ModelFamily, register_family
from vitbench.models.vision_transformer import VisionTransformer
from vitbench.models.vision_transformer import checkpoint_filter_fn as _vit_filter

__all__ = ["VisionTransformerDistilled", "checkpoint_filter_fn", "hf_deit_config_to_kwargs", "ARCHS"]


class VisionTransformerDistilled(VisionTransformer):
    """ViT with a distillation token: [cls, dist, patches] + positions -> blocks -> norm ->
    (head(cls) + head_dist(dist)) / 2. Takes VisionTransformer's arguments (class-token pooling only).

    dist_head: False leaves the distillation token without a head: logits are head(cls) alone
        (transformers' DeiTForImageClassification).
    """

    def __init__(self, dist_head: bool = True, **kwargs):
        super().__init__(**kwargs)
        if self.global_pool != "token" or self.reg_token is not None or self.no_embed_class:
            raise ValueError("VisionTransformerDistilled needs global_pool='token', no register tokens "
                             f"and positions for the prefix tokens (got global_pool={self.global_pool!r}, "
                             f"reg_tokens={0 if self.reg_token is None else self.reg_token.shape[1]}, "
                             f"no_embed_class={self.no_embed_class})")
        self.num_prefix_tokens = 2
        self.dist_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 2, self.embed_dim) * 0.02)
        self.head_dist = self._dist_head() if dist_head else None

    def _dist_head(self) -> nn.Module:
        return nn.Linear(self.embed_dim, self.num_classes) if self.num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        if self.head_dist is not None:
            self.head_dist = self._dist_head()

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = torch.cat((self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1), x), dim=1)
        return x + self.pos_embed                                     # (B, 2 + N, C)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        cls, dist = x[:, 0], x[:, 1]
        if self.head_dist is None:
            return cls if pre_logits else self.head(cls)
        if pre_logits:
            return (cls + dist) / 2
        return (self.head(cls) + self.head_dist(dist)) / 2


def _make(distilled: bool = False, **kwargs) -> VisionTransformer:
    return VisionTransformerDistilled(**kwargs) if distilled else VisionTransformer(**kwargs)


_GAMMA = re.compile(r"\.gamma_([12])$")


# transformers' DeiT keys -> timm's (q/k/v through _hf.qkv_pattern)
_HF_RULES = _hf.encoder_rules("deit") + [
    (r"^deit\.embeddings\.distillation_token$", "dist_token"),
    (r"^cls_classifier\.", "head."),                  # DeiTForImageClassificationWithTeacher
    (r"^distillation_classifier\.", "head_dist."),
    (r"^classifier\.", "head."),                      # DeiTForImageClassification
]


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VisionTransformer) -> dict[str, torch.Tensor]:
    """A DeiT / DeiT-III state dict made loadable: unwrap the original release's {'model': ...},
    rename transformers' DeiT keys (`deit.`) or DeiT-III's `blocks.N.gamma_1/2` to timm's
    (`blocks.N.ls1/ls2.gamma`, timm's adapt_layer_scale), then the ViT filter (position table
    resampled to the model's grid)."""
    if isinstance(state_dict.get("model"), dict):
        state_dict = state_dict["model"]
    if any(k.startswith("deit.") for k in state_dict):
        state_dict = _hf.rename_transformers_keys(state_dict, _HF_RULES, _hf.qkv_pattern("deit"), "DeiT",
                                                  drop=(r"^deit\.embeddings\.mask_token$",))
    renamed = {_GAMMA.sub(r".ls\1.gamma", k): v for k, v in state_dict.items()}
    return _vit_filter(renamed, model)


# ---------------------------------------------------------------------------- transformers config

# transformers' DeiT classes -> whether the distillation token has its own head
HF_CLASSES = {"DeiTForImageClassificationWithTeacher": True, "DeiTForImageClassification": False}


def hf_deit_config_to_kwargs(config: dict) -> dict:
    """VisionTransformerDistilled kwargs from a transformers DeiT config.json: its dims, and the
    heads of its class (`architectures`: with teacher, the mean of both heads; without, the class
    token's head only)."""
    classes = [c for c in config.get("architectures") or [] if c in HF_CLASSES]
    if not classes:
        raise ValueError(f"architectures {config.get('architectures')}: expected one of {', '.join(HF_CLASSES)}")
    kw = _hf.encoder_kwargs(config)
    return dict(kw, mlp_ratio=_hf.mlp_ratio_for(int(config["intermediate_size"]), kw["embed_dim"]),
                qkv_bias=bool(config.get("qkv_bias", True)), distilled=True, dist_head=HF_CLASSES[classes[0]])


# ------------------------------------------------------------------------------------ architectures

_DISTILLED = dict(distilled=True)
_DEIT3 = dict(no_embed_class=True, init_values=1e-6)

ARCHS: dict[str, ArchSpec] = {
    "deit_tiny_patch16_224": ArchSpec("tiny", 16, 224),
    "deit_small_patch16_224": ArchSpec("small", 16, 224),
    "deit_base_patch16_224": ArchSpec("base", 16, 224),
    "deit_base_patch16_384": ArchSpec("base", 16, 384),
    "deit_tiny_distilled_patch16_224": ArchSpec("tiny", 16, 224, _DISTILLED),
    "deit_small_distilled_patch16_224": ArchSpec("small", 16, 224, _DISTILLED),
    "deit_base_distilled_patch16_224": ArchSpec("base", 16, 224, _DISTILLED),
    "deit_base_distilled_patch16_384": ArchSpec("base", 16, 384, _DISTILLED),
    "deit3_small_patch16_224": ArchSpec("small", 16, 224, _DEIT3),
    "deit3_small_patch16_384": ArchSpec("small", 16, 384, _DEIT3),
    "deit3_medium_patch16_224": ArchSpec("medium", 16, 224, _DEIT3),
    "deit3_base_patch16_224": ArchSpec("base", 16, 224, _DEIT3),
    "deit3_base_patch16_384": ArchSpec("base", 16, 384, _DEIT3),
    "deit3_large_patch16_224": ArchSpec("large", 16, 224, _DEIT3),
    "deit3_large_patch16_384": ArchSpec("large", 16, 384, _DEIT3),
    "deit3_huge_patch14_224": ArchSpec("huge", 14, 224, _DEIT3),
}

FAMILY = register_family(ModelFamily("deit", "DeiT", _make, checkpoint_filter_fn, ARCHS))
