"""NaFlexViT: timm's ViT whose patch embedding, prefix tokens and positions live in one `embeds` module
(timm's naflexvit.py), here on its fixed-size image path: a (B, 3, H, W) batch in, logits out.

Papers: NaViT https://arxiv.org/abs/2307.06304 (variable aspect / resolution, factorized positions),
FlexiViT https://arxiv.org/abs/2212.08013 (positions resized to the input), ViT
https://arxiv.org/abs/2010.11929, registers https://arxiv.org/abs/2309.16588. The architecture is
Ross Wightman's (timm). The packed variable-resolution input of NaFlex (patch dicts with coordinates
and validity masks) is not implemented: on an unpadded image every patch is valid, so the masked
attention and masked mean reduce to the plain ones written here.

What differs from the plain ViT (numbers that matter for parity with timm):
- patches: the image is cut into p x p patches in row-major grid order and each patch is flattened
  (row, column, channel) with the channel fastest, then projected by a Linear (`embeds.proj`). It is
  the stride-p conv of a ViT with its kernel permuted to (out, kh, kw, in) and flattened.
- positions: a learned table on a fixed grid (16 x 16, whatever the image size), resized at forward
  time to the input's patch grid: bicubic, antialiased, align_corners=False (`layers.resample_abs_pos_embed`,
  timm's rule for ViT tables too). `ar_preserving` ("par"): the table is resized to an L x L grid,
  L = max(h, w), and the top-left h x w is kept, so a patch's position does not stretch with the
  aspect ratio (at a square input it is the plain resize). `factorized` ("fac", NaViT): a row table
  `pos_embed_y` (1, G, C) and a column table `pos_embed_x` (1, G, C), each resized linearly
  (1-D, align_corners=False, no antialias) to h and w (or L), and patch (i, j) gets y[i] + x[j].
- positions go to the patch tokens only; class / register tokens are prepended afterwards, without.
- blocks: the plain pre-norm Block with LayerScale (ls1/ls2); LayerNorm eps 1e-6; 'avg' pooling
  averages the patch tokens (prefix tokens left out) and normalizes after the pool (`fc_norm`).

Layout, as in timm: embeds -> model -> checkpoint_filter_fn -> architecture table.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from vitbench.models._base import ViTBase
from vitbench.models._builder import ArchSpec, ModelFamily, register_family
from vitbench.models.layers import Block, resample_abs_pos_embed

__all__ = ["NaFlexEmbeds", "NaFlexVit", "patchify", "checkpoint_filter_fn", "ARCHS"]

POS_EMBED_KINDS = ("learned", "factorized", "none")


# ------------------------------------------------------------------------------------------- embeds

def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/p * W/p, p*p*C): patches in row-major grid order, each flattened
    (row, column, channel) with the channel fastest."""
    B, C, H, W = x.shape
    gh, gw = H // patch_size, W // patch_size
    x = x.view(B, C, gh, patch_size, gw, patch_size)              # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 3, 5, 1)                               # (B, gh, gw, p, p, C)
    return x.reshape(B, gh * gw, patch_size * patch_size * C)


def _resize_1d(table: torch.Tensor, length: int) -> torch.Tensor:
    """A (1, G, C) table linearly resized to (1, length, C) (align_corners=False, in fp32)."""
    if table.shape[1] == length:
        return table
    t = F.interpolate(table.transpose(1, 2).float(), size=length, mode="linear", align_corners=False)
    return t.transpose(1, 2).to(table.dtype)


class NaFlexEmbeds(nn.Module):
    """Image -> tokens: patchify + Linear, positions on the patch tokens, then [cls][reg] prepended.

    pos_embed: 'learned' (one (1, G, G, C) table), 'factorized' (`pos_embed_y`, `pos_embed_x`, each
        (1, G, C)) or 'none'; G = pos_grid. ar_preserving: resize to the longer side's square grid
        and crop (see the module docstring).
    """

    def __init__(self, patch_size: int = 16, embed_dim: int = 768, in_chans: int = 3,
                 class_token: bool = False, reg_tokens: int = 0, pos_embed: str = "learned",
                 pos_grid: int = 16, ar_preserving: bool = False):
        super().__init__()
        if pos_embed not in POS_EMBED_KINDS:
            raise ValueError(f"pos_embed={pos_embed!r}: expected one of {', '.join(POS_EMBED_KINDS)}")
        if pos_grid <= 0:
            raise ValueError(f"pos_grid={pos_grid}: the position table needs a positive grid size")
        self.patch_size = patch_size
        self.pos_embed_kind = pos_embed
        self.ar_preserving = ar_preserving
        self.num_prefix_tokens = int(class_token) + reg_tokens
        # parameters in timm's state-dict order
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim)) if reg_tokens else None
        self.pos_embed = self.pos_embed_y = self.pos_embed_x = None
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.randn(1, pos_grid, pos_grid, embed_dim) * 0.02)
        elif pos_embed == "factorized":
            self.pos_embed_y = nn.Parameter(torch.randn(1, pos_grid, embed_dim) * 0.02)
            self.pos_embed_x = nn.Parameter(torch.randn(1, pos_grid, embed_dim) * 0.02)
        self.proj = nn.Linear(patch_size * patch_size * in_chans, embed_dim)

    def _resized_extent(self, grid: tuple[int, int]) -> tuple[int, int]:
        """The grid the tables are resized to before the (h, w) crop: (L, L) when aspect-preserving."""
        return (max(grid),) * 2 if self.ar_preserving else tuple(grid)

    def grid_positions(self, grid: tuple[int, int]) -> torch.Tensor | None:
        """(1, h*w, C) positions of an (h, w) patch grid, row-major; None without positions."""
        h, w = grid
        rh, rw = self._resized_extent(grid)
        if self.pos_embed is not None:
            side, dim = self.pos_embed.shape[1], self.pos_embed.shape[-1]
            table = resample_abs_pos_embed(self.pos_embed.reshape(1, side * side, dim), (rh, rw),
                                           num_prefix_tokens=0)                # (1, rh*rw, C)
            return table.view(1, rh, rw, dim)[:, :h, :w].reshape(1, h * w, dim)
        if self.pos_embed_y is not None:
            y = _resize_1d(self.pos_embed_y, rh)[:, :h]                         # (1, h, C)
            x = _resize_1d(self.pos_embed_x, rw)[:, :w]                         # (1, w, C)
            return (y[:, :, None] + x[:, None, :]).flatten(1, 2)                # (1, h*w, C)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        x = self.proj(patchify(x, self.patch_size))                             # (B, N, C)
        pos = self.grid_positions(grid)
        if pos is not None:
            x = x + pos.to(x.dtype)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        return torch.cat(prefix + [x], dim=1) if prefix else x                  # (B, prefix + N, C)


# ------------------------------------------------------------------------------------------------ model

class NaFlexVit(ViTBase):
    """embeds (patches + positions, [cls][reg]) -> blocks -> norm -> pool -> fc_norm -> head.

    img_size: the size the model is registered at (384 for timm's checkpoints); any input whose sides
        are multiples of patch_size runs, the positions being resized to its grid at forward time.
    pos_embed / pos_embed_grid / pos_embed_ar_preserving: see `NaFlexEmbeds`.
    global_pool: 'avg' (mean of the patch tokens) or 'token' (the class token). fc_norm (default:
        global_pool == 'avg'): the final norm after the pool instead of before it.
    """

    def __init__(self, img_size: int = 384, patch_size: int = 16, num_classes: int = 1000,
                 global_pool: str = "avg", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, init_values: float | None = None,
                 class_token: bool = False, reg_tokens: int = 0, pos_embed: str = "learned",
                 pos_embed_grid: int = 16, pos_embed_ar_preserving: bool = False,
                 fc_norm: bool | None = None, norm_eps: float = 1e-6):
        super().__init__()
        if global_pool not in ("avg", "token"):
            raise ValueError(f"global_pool={global_pool!r}: expected 'avg' or 'token'")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs a class token (class_token=True)")
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not a multiple of patch_size={patch_size}")
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.img_size, self.patch_size = img_size, patch_size
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_classes, self.global_pool = num_classes, global_pool
        self.num_features = self.embed_dim = embed_dim
        self.embeds = NaFlexEmbeds(patch_size, embed_dim, 3, class_token, reg_tokens, pos_embed,
                                   pos_embed_grid, pos_embed_ar_preserving)
        self.num_prefix_tokens = self.embeds.num_prefix_tokens
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values, norm_layer) for _ in range(depth)])
        self.norm = nn.Identity() if use_fc_norm else norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        H, W = x.shape[-2:]
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f"{type(self).__name__} needs input sides that are multiples of the patch "
                             f"size {self.patch_size}, got {H}x{W}")
        return self.embeds(x), None


# --------------------------------------------------------------------------------- checkpoint filter

def _vit_pos_to_grid(pos: torch.Tensor, state_dict: dict[str, torch.Tensor],
                     model: NaFlexVit) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A ViT (1, [prefix +] G*G, C) position table as NaFlex's (1, G', G', C) grid (G' the model's table
    grid, resampled if G differs), and the positions of the prefix tokens it held, by token key.

    NaFlex gives prefix tokens no position; a ViT that did adds a constant to a constant token, so
    that position folds into the token (`cls_token + pos[0]`, `reg_token + pos[1:1+R]`) exactly.
    The table holds prefix rows when its length minus the prefix count is a square and itself is not.
    """
    n_cls = state_dict["cls_token"].shape[1] if "cls_token" in state_dict else 0
    n_reg = state_dict["reg_token"].shape[1] if "reg_token" in state_dict else 0
    n, dim = pos.shape[1], pos.shape[2]
    folded = {}
    if math.isqrt(n) ** 2 != n and math.isqrt(n - n_cls - n_reg) ** 2 == n - n_cls - n_reg:
        if n_cls:
            folded["cls_token"] = pos[:, :n_cls]
        if n_reg:
            folded["reg_token"] = pos[:, n_cls:n_cls + n_reg]
        pos = pos[:, n_cls + n_reg:]
        n = pos.shape[1]
    if math.isqrt(n) ** 2 != n:
        raise ValueError(f"pos_embed of shape {tuple(pos.shape)}: not a square grid of patch positions "
                         f"(with {n_cls} class and {n_reg} register tokens in the checkpoint)")
    side = model.embeds.pos_embed.shape[1]
    pos = resample_abs_pos_embed(pos, (side, side), num_prefix_tokens=0)     # as is when already G'
    return pos.reshape(1, side, side, dim), folded


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: NaFlexVit) -> dict[str, torch.Tensor]:
    """A NaFlexViT state dict, or a plain timm ViT one, made loadable into `model` (a new dict).

    timm's NaFlexViT weights (`embeds.*`) pass as they are. A ViT layout is remapped:
    - `patch_embed.proj.weight` (C, 3, p, p) conv kernel -> `embeds.proj.weight` (C, p*p*3), permuted
      to (C, p, p, 3) first so its columns follow `patchify`'s (row, column, channel) order;
      `patch_embed.proj.bias` -> `embeds.proj.bias`;
    - `cls_token` / `reg_token` -> `embeds.cls_token` / `embeds.reg_token`, plus the positions the ViT
      table held for them (see `_vit_pos_to_grid`);
    - `pos_embed` (1, N, C) -> `embeds.pos_embed` (1, G, G, C), resampled to the model's table grid
      (bicubic, antialiased) when the checkpoint's differs. A factorized model cannot take a 2-D
      table: a ValueError says so.
    Everything else (blocks, norms, head) has the same keys in both layouts.
    """
    if "pos_embed" in state_dict and model.embeds.pos_embed is None:
        raise ValueError(f"pos_embed of shape {tuple(state_dict['pos_embed'].shape)}: a ViT's 2-D position "
                         f"table cannot be loaded into {model.embeds.pos_embed_kind!r} positions")
    out, folded = {}, {}
    for k, v in state_dict.items():
        if k == "pos_embed":
            out["embeds.pos_embed"], folded = _vit_pos_to_grid(v, state_dict, model)
        elif k in ("cls_token", "reg_token"):
            out[f"embeds.{k}"] = v
        elif k == "patch_embed.proj.weight":
            out["embeds.proj.weight"] = v.permute(0, 2, 3, 1).flatten(1)        # (C, p, p, 3) -> (C, p*p*3)
        elif k == "patch_embed.proj.bias":
            out["embeds.proj.bias"] = v
        else:
            out[k] = v
    for k, pos in folded.items():
        out[f"embeds.{k}"] = out[f"embeds.{k}"] + pos
    return out


# ------------------------------------------------------------------------------------ architectures

# timm's NaFlexViT-B ImageNet-1k models: 4 registers, LayerScale, GAP + fc_norm, a 16x16 position
# table (trained with a 576-token budget, evaluated at 384 = a 24x24 grid).
_GAP = dict(reg_tokens=4, init_values=1e-5, global_pool="avg")

ARCHS: dict[str, ArchSpec] = {
    "naflexvit_base_patch16_gap": ArchSpec("base", 16, 384, _GAP),
    "naflexvit_base_patch16_par_gap": ArchSpec("base", 16, 384, dict(_GAP, pos_embed_ar_preserving=True)),
    "naflexvit_base_patch16_parfac_gap": ArchSpec("base", 16, 384, dict(
        _GAP, pos_embed_ar_preserving=True, pos_embed="factorized")),
}

FAMILY = register_family(ModelFamily("naflexvit", "NaFlexViT", NaFlexVit, checkpoint_filter_fn, ARCHS))
