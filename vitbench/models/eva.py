"""The EVA family (timm's eva.py): ViTs with rotary position embedding, SwiGLU and q/v-only biases.

Papers: EVA https://arxiv.org/abs/2211.07636, EVA-02 https://arxiv.org/abs/2303.11331,
RoPE-ViT (Naver) https://arxiv.org/abs/2403.13298, registers https://arxiv.org/abs/2309.16588.

One model class, `Eva`, covers four lines of work, each a row of settings in the table below:
- EVA-01 giant: a plain ViT-g/14 with q/v-only biases (`q_bias`, `v_bias` beside a bias-free `qkv`),
  class token + learned positions, average pooling with fc_norm.
- EVA-02: adds axial 2-D RoPE rescaled to the 16x16 pretraining grid, SwiGLU MLPs (packed for Ti/S,
  separate gate/value projections with a sub-LN `mlp.norm` for B/L), separate q/k/v projections for
  B/L (`q_proj`, bias-free `k_proj`, `v_proj`).
- timm's SBB RoPE ViTs: no class token and no learned positions, register tokens, layer scale
  (`gamma_1`/`gamma_2`), average pooling.
- Naver's RoPE-ViTs: a class token read out through the final norm, full qkv biases, layer scale;
  axial RoPE (temperature 100) or RoPE-Mixed (learned per-block, per-head frequencies `rope.freqs`,
  `layers.RopeMixed`), each with or without learned positions on the patches (`_ape`).

Rotary embedding, applied to q and k of patch tokens only (prefix tokens pass through):
q' = q * cos + rot(q) * sin with channel pairs (2i, 2i+1) turned by angle i (timm's interleaved
layout, used by every model here); see `layers.rope_tables` / `layers.RopeMixed` for the angles.

Layout, as in timm: model -> checkpoint_filter_fn -> architecture table (registered from the table).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, ModelFamily, drop_derived, register_family
from vitbench.models.layers import (
    Attention,
    Block,
    Mlp,
    PatchEmbed,
    Rope,
    RopeMixed,
    SwiGLU,
    resample_abs_pos_embed,
    rope_tables,
)

__all__ = ["Eva", "checkpoint_filter_fn", "ARCHS"]

ROPE_KINDS = (None, "axial", "mixed")


# ------------------------------------------------------------------------------------------------ model

class Eva(ViTBase):
    """Patch embed -> [cls][reg] tokens (+ learned positions) -> rope blocks -> pool -> fc_norm -> head.

    k_bias: False for EVA's attention (q/v biases only, timm's EvaAttention); True for a full qkv
        bias (Naver's AttentionRope). qkv_fused=False: separate q/k/v projections (EVA-02 B/L).
    swiglu_mlp / scale_mlp: SwiGLU MLP; with scale_mlp the separate-projection SwiGLU with a sub-LN
        (timm's SwiGLU), without it the packed one (timm's SwiGLUPacked), as timm's EvaBlock picks.
    rope: None, 'axial' (fixed tables, `ref_feat_shape` rescales positions to the pretraining grid)
        or 'mixed' (learned frequencies); rope_temperature and rope_grid_indexing as timm's.
    use_abs_pos_emb / no_embed_class: learned positions, over the prefix tokens too unless
        no_embed_class. init_values: layer scale (`gamma_1`/`gamma_2`), None for none.
    global_pool: 'avg' (patch tokens; the final norm moves after the pool: `fc_norm`) or 'token'.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 global_pool: str = "avg", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, k_bias: bool = False, qkv_fused: bool = True,
                 swiglu_mlp: bool = False, scale_mlp: bool = False, init_values: float | None = None,
                 class_token: bool = True, num_reg_tokens: int = 0, use_abs_pos_emb: bool = True,
                 no_embed_class: bool = False, rope: str | None = None, rope_temperature: float = 10000.0,
                 rope_grid_indexing: str = "ij", ref_feat_shape: int | None = None, norm_eps: float = 1e-6):
        super().__init__()
        if global_pool not in ("avg", "token"):
            raise ValueError(f"global_pool={global_pool!r}: expected 'avg' or 'token'")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs a class token (class_token=True)")
        if rope not in ROPE_KINDS:
            raise ValueError(f"rope={rope!r}: expected one of {ROPE_KINDS}")
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.img_size, self.patch_size = img_size, patch_size
        self.num_classes, self.global_pool = num_classes, global_pool
        self.num_features = self.embed_dim = embed_dim
        self.head_dim = embed_dim // num_heads
        self.num_prefix_tokens = int(class_token) + num_reg_tokens
        self.no_embed_class = no_embed_class
        self.ref_feat_shape = (ref_feat_shape, ref_feat_shape) if ref_feat_shape else None
        self.rope_kind, self.rope_temperature, self.rope_grid_indexing = rope, rope_temperature, rope_grid_indexing

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, num_reg_tokens, embed_dim)) if num_reg_tokens else None
        embed_len = self.patch_embed.num_patches + (0 if no_embed_class else self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_len, embed_dim)) if use_abs_pos_emb else None
        if rope == "axial":
            cos, sin = self._rope_tables(self.patch_embed.grid_size)
            self.register_buffer("rope_cos", cos, persistent=False)       # (prefix + H*W, head_dim)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.rope = RopeMixed(self.head_dim, depth, num_heads, rope_temperature, rope_grid_indexing) \
            if rope == "mixed" else None

        if swiglu_mlp:
            mlp_layer, act_layer = partial(SwiGLU, packed=not scale_mlp), nn.SiLU
        else:
            mlp_layer, act_layer = Mlp, nn.GELU
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer, act_layer,
                  attn_layer=Attention, mlp_layer=mlp_layer, attn_kwargs=dict(k_bias=k_bias, fused=qkv_fused),
                  gamma_params=True, scale_mlp_norm=scale_mlp)
            for _ in range(depth)])
        use_fc_norm = global_pool == "avg"
        self.norm = nn.Identity() if use_fc_norm else norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    # -- positions
    def _rope_tables(self, grid: tuple[int, int]) -> Rope:
        return rope_tables(grid, self.head_dim, self.num_prefix_tokens, self.ref_feat_shape,
                           self.rope_temperature, self.rope_grid_indexing)

    def _rope(self, grid: tuple[int, int]) -> Rope | list[Rope] | None:
        """The rotary tables for a patch grid: none, one axial pair for all blocks (the precomputed
        buffers at the model's own resolution), or one pair per block (RoPE-Mixed, from the learned
        frequencies, so they follow the loaded weights)."""
        if self.rope_kind == "mixed":
            return self.rope(grid, self.num_prefix_tokens)
        if self.rope_kind is None:
            return None
        if grid == self.patch_embed.grid_size:
            return self.rope_cos, self.rope_sin
        cos, sin = self._rope_tables(grid)
        return cos.to(self.rope_cos), sin.to(self.rope_sin)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, Rope | list[Rope] | None]:
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        x = self.patch_embed(x)                                           # (B, N, C)
        if self.pos_embed is not None and grid != self.patch_embed.grid_size:
            raise ValueError(f"{type(self).__name__} with learned positions expects {self.img_size}x"
                             f"{self.img_size} input, got a {grid[0]}x{grid[1]} patch grid")
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        patch_pos = self.pos_embed is not None and self.no_embed_class
        x = torch.cat(prefix + [x + self.pos_embed if patch_pos else x], dim=1)  # (B, prefix + N, C)
        if self.pos_embed is not None and not self.no_embed_class:
            x = x + self.pos_embed
        return x, self._rope(grid)


# --------------------------------------------------------------------------------- checkpoint filter

# EVA's original release (github.com/baaivision/EVA) -> timm's keys, as timm's checkpoint_filter_fn maps them
_ORIGINAL_KEYS = (
    ("mlp.ffn_ln", "mlp.norm"),
    ("attn.inner_attn_ln", "attn.norm"),
    ("mlp.w12", "mlp.fc1"),
    ("mlp.w1", "mlp.fc1_g"),
    ("mlp.w2", "mlp.fc1_x"),
    ("mlp.w3", "mlp.fc2"),
)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: Eva) -> dict[str, torch.Tensor]:
    """A timm or original-release EVA state dict made loadable into `model`.

    - derived entries are dropped: fixed rope tables (anything named rope but the learned
      `rope.freqs`) and the zero k-bias buffer;
    - an OpenCLIP tower's `visual.` / `visual.trunk.` prefix is stripped;
    - the original release's keys are renamed (`mlp.w1/w2/w3` -> `fc1_g/fc1_x/fc2`, `mlp.w12` -> `fc1`,
      `ffn_ln` / `inner_attn_ln` -> `norm`), and with separate q/k/v projections its `q_bias` /
      `v_bias` become `q_proj.bias` / `v_proj.bias`;
    - `pos_embed` is resampled to the model's patch grid when trained at another resolution.
    """
    prefix = next((p for p in ("visual.trunk.", "visual.") if f"{p}pos_embed" in state_dict), "")
    separate_qkv = f"{prefix}blocks.0.attn.q_proj.weight" in state_dict
    out = {}
    for k, v in state_dict.items():
        if not k.startswith(prefix):
            continue
        k = k[len(prefix):]
        if "rope" in k and k != "rope.freqs":
            continue
        for old, new in _ORIGINAL_KEYS:
            k = k.replace(old, new)
        if separate_qkv:
            k = k.replace("attn.q_bias", "attn.q_proj.bias").replace("attn.v_bias", "attn.v_proj.bias")
        if k == "pos_embed" and model.pos_embed is not None and v.shape != model.pos_embed.shape:
            num_prefix = 0 if model.no_embed_class else model.num_prefix_tokens
            v = resample_abs_pos_embed(v, model.patch_embed.grid_size, num_prefix_tokens=num_prefix)
        out[k] = v
    return drop_derived(out, (".k_bias",))


# ------------------------------------------------------------------------------------ architectures

# EVA-02 (timm's eva02_*): SwiGLU MLP of width 8/3 * dim, axial rope on a 16x16 (224 / 14) reference grid.
_EVA02 = dict(mlp_ratio=4 * 2 / 3, swiglu_mlp=True, rope="axial", ref_feat_shape=16)
_EVA02_BL = dict(_EVA02, qkv_fused=False, scale_mlp=True)       # B and L: separate q/k/v, sub-LN SwiGLU
# timm's SBB ViTs with rope: registers + GAP, no learned positions, rope on a 16x16 reference grid.
_SBB = dict(class_token=False, use_abs_pos_emb=False, rope="axial", ref_feat_shape=16, init_values=1e-5)
# Naver RoPE-ViT (DeiT-III recipe): class token through the final norm, full qkv bias, layer scale,
# 'xy' grid; axial rope at temperature 100, mixed at 10 (the initial frequency scale).
_NAVER = dict(global_pool="token", k_bias=True, init_values=1e-5, use_abs_pos_emb=False, rope_grid_indexing="xy")
_AXIAL = dict(_NAVER, rope="axial", rope_temperature=100.0)
_MIXED = dict(_NAVER, rope="mixed", rope_temperature=10.0)
_APE = dict(use_abs_pos_emb=True, no_embed_class=True)          # + learned positions on the patches

ARCHS: dict[str, ArchSpec] = {
    "eva_giant_patch14_224": ArchSpec("giant", 14, 224),
    "eva_giant_patch14_336": ArchSpec("giant", 14, 336),
    "eva_giant_patch14_560": ArchSpec("giant", 14, 560),
    "eva02_tiny_patch14_336": ArchSpec("tiny", 14, 336, _EVA02),
    "eva02_small_patch14_336": ArchSpec("small", 14, 336, _EVA02),
    "eva02_base_patch14_448": ArchSpec("base", 14, 448, _EVA02_BL),
    "eva02_large_patch14_448": ArchSpec("large", 14, 448, _EVA02_BL),
    "vit_medium_patch16_rope_reg1_gap_256": ArchSpec("medium", 16, 256, dict(_SBB, num_reg_tokens=1)),
    "vit_mediumd_patch16_rope_reg1_gap_256": ArchSpec("mediumd", 16, 256,
                                                      dict(_SBB, num_reg_tokens=1, qkv_bias=False)),
    "vit_betwixt_patch16_rope_reg4_gap_256": ArchSpec("betwixt", 16, 256, dict(_SBB, num_reg_tokens=4)),
    "vit_base_patch16_rope_reg1_gap_256": ArchSpec("base", 16, 256, dict(_SBB, num_reg_tokens=1)),
    **{f"vit_{size}_patch16_rope{name}_224": ArchSpec(size, 16, 224, settings)
       for size in ("small", "base", "large")
       for name, settings in (("", _AXIAL), ("_ape", dict(_AXIAL, **_APE)),
                              ("_mixed", _MIXED), ("_mixed_ape", dict(_MIXED, **_APE)))},
}

FAMILY = register_family(ModelFamily("eva", "EVA / RoPE ViT", Eva, checkpoint_filter_fn, ARCHS))
