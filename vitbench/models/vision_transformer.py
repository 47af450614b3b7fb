"""The plain Vision Transformer family (ViT, DeiT, the SBB register/GAP ViTs and their differential-
attention variants, the CLIP and SigLIP image towers fine-tuned on ImageNet, FlexiViT, EVA-01-L, BEiT-3's
image encoder), timm's state-dict keys.

Papers: ViT https://arxiv.org/abs/2010.11929, DeiT https://arxiv.org/abs/2012.12877,
registers https://arxiv.org/abs/2309.16588, parallel blocks (ViT-22B) https://arxiv.org/abs/2302.05442,
CLIP https://arxiv.org/abs/2103.00020, SigLIP https://arxiv.org/abs/2303.15343,
shape-optimized sizes (SoViT) https://arxiv.org/abs/2305.13035, FlexiViT https://arxiv.org/abs/2212.08013,
EVA https://arxiv.org/abs/2211.07636, BEiT-3 https://arxiv.org/abs/2208.10442,
Differential Transformer https://arxiv.org/abs/2410.05258, DINOv2 https://arxiv.org/abs/2304.07193.

Layout, as in timm: model -> checkpoint_filter_fn -> architecture table (registered from the table).
Numbers that matter for parity with timm: LayerNorm eps 1e-6 (1e-5 for BEiT-3), exact (erf) GELU, mlp
hidden width int(dim * mlp_ratio) (so fractional ratios such as SoViT's round down as in timm),
LayerScale only when init_values is set, 'avg' pooling moves the final norm after the pool (fc_norm)
unless fc_norm=False.
- BEiT-3 (timm keeps its vision branch as a plain ViT): sub-LNs inside each block (`attn.norm` before
  the output projection, `mlp.norm` after the activation), class token, mean pool + fc_norm.
- Differential attention (`attn_layer='diff'`, `layers.DiffAttention`): the difference of two softmax
  maps per head; lambda_init follows the block index (from 0), so every block is built knowing it.
  With block_fn='parallel' it is timm's DiffParallelScalingBlock (one fused output projection).
- transformers-format checkpoints of this family, built from their config.json (`hf_vit_config_to_kwargs`,
  `hf_dinov2_config_to_kwargs`; keys remapped by `checkpoint_filter_fn`):
  ViTForImageClassification (LayerNorm eps from the config, 1e-12 for Google's) and
  Dinov2ForImageClassification (layer scale, MLP or DINOv2's SwiGLU, the classifier on
  [class token, mean of the patch tokens] (`global_pool='token_avg'`), and the position table resized
  from the pretraining grid to the model's by transformers' rule (`pos_resample='dinov2'`).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from vitbench.models import _hf
from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, ModelFamily, register_family
from vitbench.models.layers import (
    ACT_LAYERS,
    Attention,
    AttentionPoolLatent,
    Block,
    DiffAttention,
    Mlp,
    ParallelScalingBlock,
    PatchEmbed,
    SwiGLU,
    resample_abs_pos_embed,
)

__all__ = ["VisionTransformer", "checkpoint_filter_fn", "hf_vit_config_to_kwargs", "hf_dinov2_config_to_kwargs",
           "ARCHS"]

# "res_post": timm's ResPostBlock, x + norm(f(x)) (its init_values only initialises the norm scales,
# so it carries no layer-scale parameters)
BLOCKS = {"block": Block, "parallel": ParallelScalingBlock, "res_post": partial(Block, post_norm=True)}
# attn_layer -> the attention every block uses (timm's names)
ATTN_LAYERS = {"attn": Attention, "diff": DiffAttention}


def dinov2_swiglu(dim: int, hidden: int, act_layer=None, norm_layer=None) -> SwiGLU:
    """DINOv2's SwiGLU FFN (transformers' Dinov2SwiGLUFFN): from the nominal width int(dim * mlp_ratio),
    a gated width of (int(hidden * 2 / 3) + 7) // 8 * 8, SiLU, one packed input projection (gate
    first). The activation is SiLU whatever the config's hidden_act; there is no sub-norm."""
    return SwiGLU(dim, (int(hidden * 2 / 3) + 7) // 8 * 8, act_layer=nn.SiLU, packed=True)


# mlp_layer -> the MLP every block uses
MLP_LAYERS = {"mlp": Mlp, "swiglu_dinov2": dinov2_swiglu}
# transformers' Dinov2 (4.46) resizes its position grid by scale_factor=new/old, without the +0.1 the
# DINO code added to `new`: measured on the golden checkpoint, offset 0 reproduces its logits exactly
# and 0.1 is 1e-3 away. The values equal a resize to the size; the quirk is the output size,
# floor(old * new / old), one short for some grids (37 -> 39, 43, 78, 86), where transformers fails
# and resample_abs_pos_embed raises.
DINOV2_SCALE_OFFSET = 0.0
# pos_resample mode -> resample_abs_pos_embed's arguments
POS_RESAMPLE = {
    "bicubic": dict(interpolation="bicubic", antialias=True),
    "bilinear": dict(interpolation="bilinear", antialias=False),
    "dinov2": dict(interpolation="bicubic", antialias=False, scale_offset=DINOV2_SCALE_OFFSET),
}
GLOBAL_POOLS = ("token", "avg", "map", "token_avg")


# ------------------------------------------------------------------------------------------------ model

class VisionTransformer(ViTBase):
    """ViT: patch embed -> [cls][reg] tokens + learned positions -> blocks -> norm -> pool -> head.

    patch_embed: any module mapping (B, 3, H, W) -> (B, N, C) with `num_patches` and `grid_size`
        (the hybrid passes a ResNet-backed one); default a PatchEmbed of `patch_size`.
    global_pool: 'token' (class token), 'avg' (mean of the non-prefix tokens), 'map' (attention
        pooling of the non-prefix tokens by `attn_pool`, SigLIP) or 'token_avg' (the class token
        concatenated with the mean of the other tokens, DINOv2's linear classifier: the head takes
        2 * embed_dim). With 'avg' the final norm is applied after pooling (`fc_norm`) unless fc_norm=False.
    no_embed_class: the position table covers only the patch tokens (added before the prefix
        tokens are concatenated), as in DeiT-3 / big_vision / the SBB models.
    pre_norm: a norm on the embedded tokens before the blocks (`norm_pre`) and a patch embedding
        without bias, as in the CLIP image towers.
    pos_resample: how `checkpoint_filter_fn` resizes a position table trained on another grid:
        'bicubic' (antialiased; timm's default), 'bilinear' (no antialias; timm's choice for the
        big_vision FlexiViT weights) or 'dinov2' (bicubic by a scale factor, transformers' Dinov2).
    act_layer: the MLP activation, by transformers' name (`layers.ACT_LAYERS`; 'gelu' is exact GELU).
    mlp_layer: 'mlp' (fc1 -> act -> fc2) or 'swiglu_dinov2' (`dinov2_swiglu`).
    attn_layer: 'attn' (softmax attention) or 'diff' (differential attention; block i gets
        depth_index=i, which sets its lambda_init).
    scale_attn_norm / scale_mlp_norm: sub-LNs inside the block, before the attention's output
        projection (`attn.norm`) and after the MLP's activation (`mlp.norm`), as BEiT-3.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 global_pool: str = "token", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float | None = None,
                 class_token: bool = True, reg_tokens: int = 0, no_embed_class: bool = False,
                 fc_norm: bool | None = None, norm_eps: float = 1e-6, block_fn: str = "block",
                 pre_norm: bool = False, pos_resample: str = "bicubic", patch_embed: nn.Module | None = None,
                 attn_layer: str = "attn", scale_attn_norm: bool = False, scale_mlp_norm: bool = False,
                 act_layer: str = "gelu", mlp_layer: str = "mlp"):
        super().__init__()
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool={global_pool!r}: expected one of {', '.join(GLOBAL_POOLS)}")
        if global_pool in ("token", "token_avg") and not class_token:
            raise ValueError(f"global_pool={global_pool!r} needs a class token (class_token=True)")
        if block_fn not in BLOCKS:
            raise ValueError(f"block_fn={block_fn!r}: expected one of {', '.join(BLOCKS)}")
        if pos_resample not in POS_RESAMPLE:
            raise ValueError(f"pos_resample={pos_resample!r}: expected one of {', '.join(POS_RESAMPLE)}")
        if attn_layer not in ATTN_LAYERS:
            raise ValueError(f"attn_layer={attn_layer!r}: expected one of {', '.join(ATTN_LAYERS)}")
        if act_layer not in ACT_LAYERS:
            raise ValueError(f"act_layer={act_layer!r}: expected one of {', '.join(ACT_LAYERS)}")
        if mlp_layer not in MLP_LAYERS or (mlp_layer != "mlp" and block_fn == "parallel"):
            raise ValueError(f"mlp_layer={mlp_layer!r}: expected one of {', '.join(MLP_LAYERS)} "
                             f"('mlp' only with block_fn='parallel')")
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = int(class_token) + reg_tokens
        self.no_embed_class = no_embed_class
        self.img_size = img_size
        self.pos_resample = pos_resample

        self.patch_embed = patch_embed if patch_embed is not None else \
            PatchEmbed(img_size, patch_size, 3, embed_dim, bias=not pre_norm)
        grid = self.patch_embed.grid_size
        self.patch_size = img_size // grid[0]       # pixels per token (16 for the R50 hybrid)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim)) if reg_tokens else None
        embed_len = self.patch_embed.num_patches + (0 if no_embed_class else self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, embed_dim) * 0.02)
        self.norm_pre = norm_layer(embed_dim) if pre_norm else nn.Identity()

        block, attn = BLOCKS[block_fn], ATTN_LAYERS[attn_layer]
        mlp = {} if mlp_layer == "mlp" else dict(mlp_layer=MLP_LAYERS[mlp_layer])
        self.blocks = nn.Sequential(*[
            block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer, act_layer=ACT_LAYERS[act_layer],
                  attn_layer=attn, attn_kwargs=dict(depth_index=i) if attn is DiffAttention else None,
                  scale_attn_norm=scale_attn_norm, scale_mlp_norm=scale_mlp_norm, **mlp)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim) if not use_fc_norm else nn.Identity()
        self.attn_pool = AttentionPoolLatent(embed_dim, num_heads, mlp_ratio, norm_layer=norm_layer) \
            if global_pool == "map" else None
        self.fc_norm = norm_layer(embed_dim) if use_fc_norm else nn.Identity()
        self.head_hidden_size = 2 * embed_dim if global_pool == "token_avg" else embed_dim
        self.head = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

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
        return self.norm_pre(self._pos_embed(self.patch_embed(x))), None

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.attn_pool is not None:
            return self.attn_pool(x[:, self.num_prefix_tokens:])     # (B, C)
        if self.global_pool == "token_avg":
            return torch.cat([x[:, 0], x[:, self.num_prefix_tokens:].mean(dim=1)], dim=-1)   # (B, 2C)
        return super().pool(x)

    def _check_size(self, x: torch.Tensor) -> None:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"{type(self).__name__} expects {self.img_size}x{self.img_size} input, "
                             f"got {tuple(x.shape[-2:])}")

# --------------------------------------------------------------------------------- checkpoint filter

# BEiT-3's original release (github.com/microsoft/unilm/tree/master/beit3, torchscale's multiway
# encoder) -> timm's keys; applied in order, after the `beit3.` prefix is dropped
_BEIT3_KEYS = (
    ("vision_embed.cls_token", "cls_token"),
    ("vision_embed.", "patch_embed."),
    ("encoder.embed_positions.", "pos_embed."),
    ("encoder.layers.", "blocks."),
    ("self_attn_layer_norm.", "norm1."),
    ("final_layer_norm.", "norm2."),
    ("self_attn.", "attn."),
    ("inner_attn_ln.", "norm."),
    ("out_proj.", "proj."),
    ("ffn_layernorm.", "norm."),
    ("ffn.", "mlp."),
    (".A.", "."),
)
# torchscale's position table starts with 2 rows it never uses (fairseq's padding offset)
_BEIT3_POS_OFFSET = 2


def _from_beit3_release(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original BEiT-3 classifier state dict in timm's layout: the vision expert ('A') of every
    multiway module is kept, the language expert ('B'), text embedding and mask token dropped; the
    separate q/k/v projections become one `qkv`; the position table loses its 2 offset rows."""
    out, qkv = {}, {}
    for k, v in state_dict.items():
        if ".B." in k or k in ("beit3.text_embed.weight", "beit3.vision_embed.mask_token"):
            continue
        k = k.removeprefix("beit3.")
        for old, new in _BEIT3_KEYS:
            k = k.replace(old, new)
        if k == "pos_embed.weight":
            out["pos_embed"] = v[_BEIT3_POS_OFFSET:].unsqueeze(0)          # (1, 1 + H*W, C)
        elif ".attn." in k and k.split(".")[-2] in ("q_proj", "k_proj", "v_proj"):
            block, proj, kind = k.rsplit(".", 2)
            qkv.setdefault((block, kind), {})[proj[0]] = v
        else:
            out[k] = v
    for (block, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"BEiT-3 checkpoint: {block} has {kind}s for {sorted(parts)} of q/k/v only")
        out[f"{block}.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


# transformers' layouts of this family, by key prefix: (rules, q/k/v pattern, dropped keys, class)
_DINOV2_LAYER: _hf.Rules = [
    (r"norm([12])\.", r"norm\2."),
    (r"attention\.output\.dense\.", "attn.proj."),
    (r"layer_scale([12])\.lambda1$", r"ls\2.gamma"),
    (r"mlp\.(fc[12])\.", r"mlp.\2."),
    (r"mlp\.weights_in\.", "mlp.fc1."),         # SwiGLU: packed [gate | value]
    (r"mlp\.weights_out\.", "mlp.fc2."),
]
_TRANSFORMERS_LAYOUTS = {
    "vit.": (_hf.encoder_rules("vit") + [(r"^classifier\.", "head.")],
             _hf.qkv_pattern("vit"), (r"^vit\.embeddings\.mask_token$",), "ViT"),
    "dinov2.": (_hf.encoder_rules("dinov2", _DINOV2_LAYER) + [(r"^classifier\.", "head.")],
                _hf.qkv_pattern("dinov2"), (r"^dinov2\.embeddings\.mask_token$",), "Dinov2"),
}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VisionTransformer) -> dict[str, torch.Tensor]:
    """A timm ViT state dict made loadable into `model`: `pos_embed` is resampled to the model's patch
    grid (by the model's `pos_resample` mode) when the checkpoint was trained at another resolution.
    An original BEiT-3 release (`beit3.` keys) is first mapped to timm's layout; timm's own BEiT-3
    (and every other) Hub weights need no remapping. transformers' ViTForImageClassification
    (`vit.` keys) and Dinov2ForImageClassification (`dinov2.` keys) are renamed to timm's layout
    (q/k/v fused; DINOv2's unused mask token dropped)."""
    if any(k.startswith("beit3.") for k in state_dict):
        state_dict = _from_beit3_release(state_dict)
    for prefix, (rules, qkv, drop, name) in _TRANSFORMERS_LAYOUTS.items():
        if any(k.startswith(prefix) for k in state_dict):
            state_dict = _hf.rename_transformers_keys(state_dict, rules, qkv, name, drop)
            break
    resample = POS_RESAMPLE[getattr(model, "pos_resample", "bicubic")]
    out = {}
    for k, v in state_dict.items():
        if k == "pos_embed" and v.shape != model.pos_embed.shape:
            num_prefix = 0 if model.no_embed_class else model.num_prefix_tokens
            v = resample_abs_pos_embed(v, model.patch_embed.grid_size, num_prefix_tokens=num_prefix, **resample)
        out[k] = v
    return out


# ---------------------------------------------------------------------------- transformers config

def hf_vit_config_to_kwargs(config: dict) -> dict:
    """VisionTransformer kwargs from a transformers ViT config.json (ViTForImageClassification): the
    dims as the config gives them, class-token pooling, qkv bias per `qkv_bias`."""
    kw = _hf.encoder_kwargs(config)
    return dict(kw, mlp_ratio=_hf.mlp_ratio_for(int(config["intermediate_size"]), kw["embed_dim"]),
                qkv_bias=bool(config.get("qkv_bias", True)), global_pool="token")


def hf_dinov2_config_to_kwargs(config: dict) -> dict:
    """VisionTransformer kwargs from a transformers Dinov2 config.json (Dinov2ForImageClassification).

    image_size is the pretraining size, which sets the position table's grid; the model is built for
    its processor's input size and `checkpoint_filter_fn` resizes the table as transformers does at
    every forward (`pos_resample='dinov2'`). Layer scale is always there (`layerscale_value` only
    initialises it); the MLP width is int(hidden_size * mlp_ratio), gated by `use_swiglu_ffn`.
    """
    kw = _hf.encoder_kwargs(config, image_size_default=518, patch_size_default=14, eps_default=1e-6)  # Dinov2Config's
    return dict(kw, mlp_ratio=float(config.get("mlp_ratio", 4)), qkv_bias=bool(config.get("qkv_bias", True)),
                init_values=float(config.get("layerscale_value", 1.0)) or 1.0, global_pool="token_avg",
                mlp_layer="swiglu_dinov2" if config.get("use_swiglu_ffn") else "mlp", pos_resample="dinov2")


# ------------------------------------------------------------------------------------ architectures

# SBB recipe: no class token, registers, GAP + fc_norm, LayerScale, positions for patches only.
_SBB = dict(class_token=False, no_embed_class=True, global_pool="avg", init_values=1e-5)
# BEiT-3's image encoder: sub-LNs in attention and MLP, class token kept, mean pool + fc_norm, eps 1e-5.
_BEIT3 = dict(global_pool="avg", scale_attn_norm=True, scale_mlp_norm=True, norm_eps=1e-5)
# CLIP image towers: a norm before the blocks, a bias-free patch embedding, LayerNorm eps 1e-5.
_CLIP = dict(pre_norm=True, norm_eps=1e-5)
# timm's GAP ViT-M: no class token, bias-free qkv, LayerScale, the final norm before the mean.
_GAP = dict(class_token=False, global_pool="avg", qkv_bias=False, init_values=1e-6, fc_norm=False)
# SigLIP image towers (fine-tuned on ImageNet-1k): no class token; timm's default build of these
# architectures is the bare tower (no classifier), so the default head is 0 classes.
_SIGLIP = dict(class_token=False, num_classes=0)

ARCHS: dict[str, ArchSpec] = {
    "vit_tiny_patch16_224": ArchSpec("tiny", 16, 224),
    "vit_small_patch16_224": ArchSpec("small", 16, 224),
    "vit_base_patch16_224": ArchSpec("base", 16, 224),
    "vit_base_patch16_384": ArchSpec("base", 16, 384),
    "vit_base_patch32_384": ArchSpec("base", 32, 384),
    "vit_large_patch16_224": ArchSpec("large", 16, 224),
    "vit_large_patch16_384": ArchSpec("large", 16, 384),
    "vit_wee_patch16_reg1_gap_256": ArchSpec("wee", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_pwee_patch16_reg1_gap_256": ArchSpec("pwee", 16, 256, dict(_SBB, reg_tokens=1, block_fn="parallel")),
    # differential attention (the d- sizes): plain, parallel (fused output projection) blocks
    "vit_dwee_patch16_reg1_gap_256": ArchSpec("wee", 16, 256, dict(_SBB, reg_tokens=1, attn_layer="diff")),
    "vit_dpwee_patch16_reg1_gap_256": ArchSpec("pwee", 16, 256, dict(
        _SBB, reg_tokens=1, block_fn="parallel", attn_layer="diff")),
    "vit_dlittle_patch16_reg1_gap_256": ArchSpec("little", 16, 256, dict(_SBB, reg_tokens=1, attn_layer="diff")),
    "vit_little_patch16_reg1_gap_256": ArchSpec("little", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_little_patch16_reg4_gap_256": ArchSpec("little", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_medium_patch16_reg1_gap_256": ArchSpec("medium", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_medium_patch16_reg4_gap_256": ArchSpec("medium", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_mediumd_patch16_reg4_gap_256": ArchSpec("mediumd", 16, 256, dict(_SBB, reg_tokens=4)),
    "vit_betwixt_patch16_reg1_gap_256": ArchSpec("betwixt", 16, 256, dict(_SBB, reg_tokens=1)),
    "vit_betwixt_patch16_reg4_gap_256": ArchSpec("betwixt", 16, 256, dict(_SBB, reg_tokens=4)),
    # -- more plain sizes
    "vit_tiny_patch16_384": ArchSpec("tiny", 16, 384),
    "vit_small_patch16_384": ArchSpec("small", 16, 384),
    "vit_small_patch32_224": ArchSpec("small", 32, 224),
    "vit_small_patch32_384": ArchSpec("small", 32, 384),
    "vit_base_patch8_224": ArchSpec("base", 8, 224),
    "vit_base_patch32_224": ArchSpec("base", 32, 224),
    "vit_large_patch32_384": ArchSpec("large", 32, 384),
    # MIIL: bias-free qkv; timm's default head is the 11221-class ImageNet-21K-P (winter21) label set
    "vit_base_patch16_224_miil": ArchSpec("base", 16, 224, dict(qkv_bias=False, num_classes=11221)),
    # residual post-norm blocks, no class token, GAP + fc_norm
    "vit_base_patch16_rpn_224": ArchSpec("base", 16, 224, dict(
        qkv_bias=False, class_token=False, global_pool="avg", block_fn="res_post")),
    # -- CLIP image towers fine-tuned on ImageNet
    "vit_base_patch32_clip_224": ArchSpec("base", 32, 224, _CLIP),
    "vit_base_patch32_clip_384": ArchSpec("base", 32, 384, _CLIP),
    "vit_base_patch32_clip_448": ArchSpec("base", 32, 448, _CLIP),
    "vit_base_patch16_clip_224": ArchSpec("base", 16, 224, _CLIP),
    "vit_base_patch16_clip_384": ArchSpec("base", 16, 384, _CLIP),
    "vit_large_patch14_clip_224": ArchSpec("large", 14, 224, _CLIP),
    "vit_large_patch14_clip_336": ArchSpec("large", 14, 336, _CLIP),
    "vit_huge_patch14_clip_224": ArchSpec("huge", 14, 224, _CLIP),
    "vit_huge_patch14_clip_336": ArchSpec("huge", 14, 336, _CLIP),
    # -- GAP / register / SO150M variants
    "vit_medium_patch16_gap_256": ArchSpec("medium", 16, 256, _GAP),
    "vit_medium_patch16_gap_384": ArchSpec("medium", 16, 384, _GAP),
    "vit_betwixt_patch16_reg4_gap_384": ArchSpec("betwixt", 16, 384, dict(_SBB, reg_tokens=4)),
    "vit_mediumd_patch16_reg4_gap_384": ArchSpec("mediumd", 16, 384, dict(_SBB, reg_tokens=4)),
    # SO150M: 4 registers with learned positions, the final norm before the mean, no LayerScale
    "vit_so150m_patch16_reg4_gap_256": ArchSpec("so150m", 16, 256, dict(
        class_token=False, reg_tokens=4, global_pool="avg", fc_norm=False)),
    "vit_so150m_patch16_reg4_gap_384": ArchSpec("so150m", 16, 384, dict(
        class_token=False, reg_tokens=4, global_pool="avg", fc_norm=False)),
    # SO150M v2: 1 register, bias-free qkv, LayerScale, GAP + fc_norm
    **{f"vit_so150m2_patch16_reg1_gap_{res}": ArchSpec("so150m2", 16, res, dict(
        class_token=False, reg_tokens=1, global_pool="avg", qkv_bias=False, init_values=1e-5))
       for res in (256, 384, 448)},
    # -- FlexiViT (at its 240 / patch-16 setting): class token, positions for patch tokens only
    **{f"flexivit_{size}": ArchSpec(size, 16, 240, dict(no_embed_class=True, pos_resample="bilinear"))
       for size in ("small", "base", "large")},
    # -- EVA-01-L (MIM-pretrained ViT-L/14): class token kept, mean of the patch tokens + fc_norm
    "eva_large_patch14_196": ArchSpec("large", 14, 196, dict(global_pool="avg")),
    "eva_large_patch14_336": ArchSpec("large", 14, 336, dict(global_pool="avg")),
    # -- SigLIP SoViT-400M/14: attention-pool (MAP) head, or the mean of the normed tokens (GAP)
    "vit_so400m_patch14_siglip_378": ArchSpec("so400m", 14, 378, dict(_SIGLIP, global_pool="map")),
    "vit_so400m_patch14_siglip_gap_378": ArchSpec("so400m", 14, 378, dict(
        _SIGLIP, global_pool="avg", fc_norm=False)),
    # -- BEiT-3 B/16 and L/16 (the vision branch of the multiway transformer)
    "beit3_base_patch16_224": ArchSpec("base", 16, 224, _BEIT3),
    "beit3_large_patch16_224": ArchSpec("large", 16, 224, _BEIT3),
}

FAMILY = register_family(ModelFamily("vision_transformer", "ViT", VisionTransformer, checkpoint_filter_fn, ARCHS))
