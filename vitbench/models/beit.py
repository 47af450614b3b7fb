"""BEiT and BEiT v2 (timm's beit.py): a ViT with a learned relative position bias in every block.

Papers: BEiT https://arxiv.org/abs/2106.08254, BEiT v2 https://arxiv.org/abs/2208.06366.

What differs from the plain ViT, with timm's state-dict keys:
- no absolute position embedding; each block's attention owns a table
  `attn.relative_position_bias_table` of (2H-1)(2W-1) + 3 rows by num_heads: one row per (dy, dx)
  patch offset, then three for class->patch, patch->class and class->class. A fixed index
  (non-persistent buffer `relative_position_index`) spreads it into a (1, nh, T, T) additive bias.
- q and v projections carry a bias, k does not (`q_bias`, `v_bias` beside a bias-free `qkv`);
- layer scale stored as `gamma_1` / `gamma_2`;
- mean pool over the patch tokens, then `fc_norm` (the final `norm` is identity). LayerNorm eps 1e-6.

Options timm's Beit has too, which transformers' BEiT configs set (`hf_beit_config_to_kwargs`; keys
`beit.` remapped by `checkpoint_filter_fn`): an absolute position table (`pos_embed`), the bias table
shared by all blocks (`rel_pos_bias.relative_position_bias_table`) instead of / besides one per block,
and class-token pooling after a final `norm` instead of the mean pool.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from vitbench.models import _hf
from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, ModelFamily, register_family
from vitbench.models.layers import ACT_LAYERS, Attention, Block, PatchEmbed, relative_position_index

__all__ = ["Beit", "RelPosBiasAttention", "RelativePositionBias", "checkpoint_filter_fn", "hf_beit_config_to_kwargs",
           "ARCHS"]


def beit_relative_position_index(grid: tuple[int, int]) -> torch.Tensor:
    """Flat ((1 + H*W)^2,) index into BEiT's table for [cls, patches] x [cls, patches].

    Patch pairs index the (2H-1)(2W-1) offset rows (the shared `relative_position_index`); with
    L = (2H-1)(2W-1), class->patch pairs read row L, patch->class row L+1, class->class row L+2.
    """
    n = grid[0] * grid[1]
    offsets = (2 * grid[0] - 1) * (2 * grid[1] - 1)
    index = torch.empty(n + 1, n + 1, dtype=torch.long)
    index[1:, 1:] = relative_position_index(grid).view(n, n)
    index[0, :] = offsets          # class token attending to the patches
    index[:, 0] = offsets + 1      # patches attending to the class token
    index[0, 0] = offsets + 2
    return index.flatten()


def _init_bias_table(module: nn.Module, grid: tuple[int, int], num_heads: int) -> None:
    """Give `module` BEiT's `relative_position_bias_table` for `grid` and its index buffer."""
    module.num_tokens = grid[0] * grid[1] + 1
    rows = (2 * grid[0] - 1) * (2 * grid[1] - 1) + 3
    module.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
    module.register_buffer("relative_position_index", beit_relative_position_index(grid), persistent=False)


def _table_bias(module: nn.Module) -> torch.Tensor:
    """The (1, nh, T, T) additive bias that `module`'s table spreads over every token pair."""
    T = module.num_tokens
    bias = module.relative_position_bias_table[module.relative_position_index]     # (T*T, nh)
    return bias.view(T, T, -1).permute(2, 0, 1).unsqueeze(0)                      # (1, nh, T, T)


class RelativePositionBias(nn.Module):
    """BEiT's bias table as a module of its own: the one shared by every block (timm's `rel_pos_bias`)."""

    def __init__(self, grid: tuple[int, int], num_heads: int):
        super().__init__()
        _init_bias_table(self, grid, num_heads)

    def forward(self) -> torch.Tensor:
        return _table_bias(self)


class RelPosBiasAttention(Attention):
    """The shared Attention plus BEiT's per-block learned relative position bias (see module doc);
    grid=None: no table of its own. The block context (what Block passes where rotary tables would
    go) is the model's shared bias, added too."""

    def __init__(self, dim: int, num_heads: int = 8, *, grid: tuple[int, int] | None, **kwargs):
        super().__init__(dim, num_heads, **kwargs)
        self.grid = None if grid is None else tuple(grid)
        if grid is not None:
            _init_bias_table(self, self.grid, num_heads)

    def extra_bias(self) -> torch.Tensor | None:
        return None if self.grid is None else _table_bias(self)

    def forward(self, x: torch.Tensor, shared_bias: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, attn_bias=shared_bias)


class Beit(ViTBase):
    """Patch embed -> [cls, patches] (+ positions) -> rel-pos-bias blocks -> mean over patches -> fc_norm
    -> head (or final norm -> class token -> head).

    use_abs_pos_emb: a learned position table `pos_embed` for [cls, patches] (off in timm's BEiTs).
    use_rel_pos_bias: each block's own bias table. use_shared_rel_pos_bias: one table for all blocks
        (`rel_pos_bias`), added to the blocks' own when both are on.
    use_mean_pooling: mean of the patch tokens then `fc_norm`; False: final `norm`, class token.
    act_layer: the MLP activation, by transformers' name (`layers.ACT_LAYERS`).
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, init_values: float | None = None, norm_eps: float = 1e-6,
                 act_layer: str = "gelu", use_abs_pos_emb: bool = False, use_rel_pos_bias: bool = True,
                 use_shared_rel_pos_bias: bool = False, use_mean_pooling: bool = True):
        super().__init__()
        if act_layer not in ACT_LAYERS:
            raise ValueError(f"act_layer={act_layer!r}: expected one of {', '.join(ACT_LAYERS)}")
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.num_classes = num_classes
        self.global_pool = "avg" if use_mean_pooling else "token"
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.img_size = img_size
        self.patch_size = patch_size

        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        grid = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + 1, embed_dim)) if use_abs_pos_emb else None
        self.rel_pos_bias = RelativePositionBias(grid, num_heads) if use_shared_rel_pos_bias else None
        # q/v-only biases, layer scale as gamma_1/gamma_2, the rel-pos bias for this patch grid
        block = partial(Block, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, init_values=init_values,
                        norm_layer=norm_layer, act_layer=ACT_LAYERS[act_layer], gamma_params=True,
                        attn_kwargs=dict(k_bias=False),
                        attn_layer=partial(RelPosBiasAttention, grid=grid if use_rel_pos_bias else None))
        self.blocks = nn.ModuleList([block(embed_dim, num_heads) for _ in range(depth)])
        if use_mean_pooling:
            self.norm, self.fc_norm = nn.Identity(), norm_layer(embed_dim)     # avg pool -> fc_norm
        else:
            self.norm, self.fc_norm = norm_layer(embed_dim), nn.Identity()     # norm -> class token
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens, and the blocks' context: the shared bias (computed once per forward) or None."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            # The bias index is built for the model's patch grid (timm: fixed_input_size).
            raise ValueError(f"Beit expects {self.img_size}x{self.img_size} input, got {tuple(x.shape[-2:])}")
        x = self.patch_embed(x)                                               # (B, N, C)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # (B, 1 + N, C)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return x, None if self.rel_pos_bias is None else self.rel_pos_bias()


_HF_LAYER = r"^beit\.encoder\.layer\.(\d+)\."
# transformers' BEiT keys -> timm's (q/k/v through _hf.qkv_pattern: no key bias -> q_bias, v_bias)
_HF_RULES = _hf.encoder_rules("beit") + [
    (_HF_LAYER + r"lambda_([12])$", r"blocks.\1.gamma_\2"),
    (_HF_LAYER + r"attention\.attention\.relative_position_bias\.relative_position_bias_table$",
     r"blocks.\1.attn.relative_position_bias_table"),
    (r"^beit\.encoder\.relative_position_bias\.relative_position_bias_table$",
     "rel_pos_bias.relative_position_bias_table"),
    (r"^beit\.pooler\.layernorm\.", "fc_norm."),
    (r"^classifier\.", "head."),
]
# never learned: the mask token (pretraining only), the index buffers older transformers saved
_HF_DROP = (r"^beit\.embeddings\.mask_token$", r"\.relative_position_index$")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: Beit) -> dict[str, torch.Tensor]:
    """A BEiT state dict made loadable into `model` (timm's beit checkpoint_filter_fn, as far as the
    timm hub weights need it): unwrap {'model': ...} / {'module': ...} (BEiT v2's release did not strip
    'module'), rename transformers' keys (`beit.`), drop the derived `relative_position_index` and zero
    `k_bias` buffers. A bias table of another size than the model's (weights for another grid) is an
    error: each BEiT checkpoint here ships at its own resolution, and resizing the table (timm's
    resize_rel_pos_bias_table) is not done.
    """
    for wrapper in ("model", "module"):
        if isinstance(state_dict.get(wrapper), dict):
            state_dict = state_dict[wrapper]
    if any(k.startswith("beit.") for k in state_dict):
        state_dict = _hf.rename_transformers_keys(state_dict, _HF_RULES, _hf.qkv_pattern("beit"), "BEiT", _HF_DROP)
    out = {}
    for k, v in state_dict.items():
        if k.endswith((".relative_position_index", ".k_bias")):
            continue
        if k.endswith(".relative_position_bias_table"):
            want = model.get_submodule(k.rsplit(".", 1)[0]).relative_position_bias_table.shape
            if v.shape != want:
                raise ValueError(f"{k}: the checkpoint's table is {tuple(v.shape)}, the model's {tuple(want)} "
                                 f"(weights for another input size; build the architecture that matches them)")
        out[k] = v
    return out


# ---------------------------------------------------------------------------- transformers config

def hf_beit_config_to_kwargs(config: dict) -> dict:
    """Beit kwargs from a transformers BEiT config.json (BeitForImageClassification), with BeitConfig's
    defaults for what it leaves out: layer scale when layer_scale_init_value > 0, the position options
    as given, mean pooling unless use_mean_pooling is false. q and v always carry a bias (as there)."""
    kw = _hf.encoder_kwargs(config)
    init = float(config.get("layer_scale_init_value", 0.1))
    return dict(kw, mlp_ratio=_hf.mlp_ratio_for(int(config["intermediate_size"]), kw["embed_dim"]),
                init_values=init if init > 0 else None,
                use_abs_pos_emb=bool(config.get("use_absolute_position_embeddings", False)),
                use_rel_pos_bias=bool(config.get("use_relative_position_bias", False)),
                use_shared_rel_pos_bias=bool(config.get("use_shared_relative_position_bias", False)),
                use_mean_pooling=bool(config.get("use_mean_pooling", True)))


# ------------------------------------------------------------------------------------ architectures

# timm's beit.py: every BEiT / BEiT v2 uses the per-block relative bias and no absolute positions;
# layer scale init 0.1 for BEiT-B, 1e-5 for the rest.
ARCHS: dict[str, ArchSpec] = {
    "beit_base_patch16_224": ArchSpec("base", 16, 224, dict(init_values=0.1)),
    "beit_base_patch16_384": ArchSpec("base", 16, 384, dict(init_values=0.1)),
    "beit_large_patch16_224": ArchSpec("large", 16, 224, dict(init_values=1e-5)),
    "beit_large_patch16_384": ArchSpec("large", 16, 384, dict(init_values=1e-5)),
    "beit_large_patch16_512": ArchSpec("large", 16, 512, dict(init_values=1e-5)),
    "beitv2_base_patch16_224": ArchSpec("base", 16, 224, dict(init_values=1e-5)),
    "beitv2_large_patch16_224": ArchSpec("large", 16, 224, dict(init_values=1e-5)),
}

FAMILY = register_family(ModelFamily("beit", "BEiT", Beit, checkpoint_filter_fn, ARCHS))
