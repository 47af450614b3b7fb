"""NaFlexViT: the checkpoint filter on plain-ViT state dicts (the remapped model computes what the ViT
computes), the position resize of each variant, the config errors. (Golden parity: test_models_parity.py.)"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vitbench.models import build_model
from vitbench.models.layers import resample_abs_pos_embed
from vitbench.models.naflexvit import patchify

SMALL = dict(depth=1, img_size=64, embed_dim=64, num_heads=4)


def _naflex(arch: str = "naflexvit_base_patch16_gap", **kw):
    """A 1-block, 64 px, width-64 NaFlexViT of `arch` with a 4x4 position table (random weights)."""
    return build_model(arch, **{**SMALL, "pos_embed_grid": 4, **kw}).eval()


def _randomized(model):
    """`model`'s state dict with every tensor random (so no zero-init token hides a mistake)."""
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=g) * 0.5 for k, v in model.state_dict().items()}


@pytest.mark.parametrize("vit_arch, vit_kw, naflex_kw", [
    # SBB layout: 4 registers, positions for the patch tokens only (a square table)
    ("vit_betwixt_patch16_reg4_gap_256", {}, {}),
    # a class token and 2 registers that have positions of their own: folded into the tokens
    ("vit_base_patch16_224", dict(reg_tokens=2, global_pool="avg"),
     dict(class_token=True, reg_tokens=2, init_values=None)),
    # class-token readout through the final norm
    ("vit_base_patch16_224", {}, dict(class_token=True, reg_tokens=0, init_values=None, global_pool="token")),
])
@torch.no_grad()
def test_vit_state_dict_remapped_computes_the_same(vit_arch, vit_kw, naflex_kw):
    vit = build_model(vit_arch, **SMALL, **vit_kw).eval()
    sd = _randomized(vit)
    vit.load_state_dict(sd)
    naflex = _naflex(**naflex_kw)
    before = {k: v.clone() for k, v in sd.items()}
    naflex.load_state_dict(naflex.checkpoint_filter_fn(sd, naflex), strict=True)
    assert all(torch.equal(sd[k], before[k]) for k in sd)                   # the filter is pure
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(naflex(x), vit(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(naflex.forward_head(naflex.forward_features(x), pre_logits=True),
                               vit.forward_head(vit.forward_features(x), pre_logits=True), atol=1e-5, rtol=1e-5)


def test_linear_patch_embed_is_the_permuted_conv():
    conv = torch.nn.Conv2d(3, 8, 4, stride=4)
    x = torch.randn(2, 3, 8, 12)
    tokens = F.linear(patchify(x, 4), conv.weight.permute(0, 2, 3, 1).flatten(1), conv.bias)
    torch.testing.assert_close(tokens, conv(x).flatten(2).transpose(1, 2))     # (B, 2*3, 8), row-major


def test_filter_resamples_a_vit_table_of_another_grid_and_passes_naflex_keys():
    model = _naflex()
    vit = build_model("vit_betwixt_patch16_reg4_gap_256", **{**SMALL, "img_size": 96})   # a 6x6 table
    out = model.checkpoint_filter_fn(vit.state_dict(), model)
    assert out["embeds.pos_embed"].shape == (1, 4, 4, 64)
    expected = resample_abs_pos_embed(vit.pos_embed, (4, 4), num_prefix_tokens=0).view(1, 4, 4, 64)
    torch.testing.assert_close(out["embeds.pos_embed"], expected)
    own = model.state_dict()
    assert model.checkpoint_filter_fn(own, model).keys() == own.keys()       # timm's NaFlexViT layout as is


def test_factorized_model_refuses_a_2d_vit_table():
    model = _naflex("naflexvit_base_patch16_parfac_gap")
    vit = build_model("vit_betwixt_patch16_reg4_gap_256", **SMALL)
    with pytest.raises(ValueError, match="cannot be loaded into 'factorized' positions"):
        model.checkpoint_filter_fn(vit.state_dict(), model)


@torch.no_grad()
def test_positions_of_each_variant_on_a_non_square_grid():
    plain, par, fac = (_naflex(a) for a in ("naflexvit_base_patch16_gap", "naflexvit_base_patch16_par_gap",
                                            "naflexvit_base_patch16_parfac_gap"))
    par.load_state_dict(plain.state_dict())
    table = plain.embeds.pos_embed.reshape(1, 16, 64)
    stretched = resample_abs_pos_embed(table, (4, 6), num_prefix_tokens=0)
    square = resample_abs_pos_embed(table, (6, 6), num_prefix_tokens=0).view(1, 6, 6, 64)
    torch.testing.assert_close(plain.embeds.grid_positions((4, 6)), stretched)
    torch.testing.assert_close(par.embeds.grid_positions((4, 6)), square[:, :4].reshape(1, 24, 64))
    torch.testing.assert_close(par.embeds.grid_positions((4, 4)), plain.embeds.grid_positions((4, 4)))
    y, x = fac.embeds.pos_embed_y, fac.embeds.pos_embed_x                    # at the table's own grid
    torch.testing.assert_close(fac.embeds.grid_positions((4, 4)).view(4, 4, 64), y[0, :, None] + x[0, None])
    assert fac(torch.randn(1, 3, 64, 96)).shape == (1, 1000)                # any multiple of the patch


def test_shapes_intermediates_and_config_errors():
    model = _naflex()
    assert model.num_prefix_tokens == 4 and model.grid_size == (4, 4) and model.num_features == 64
    x = torch.randn(2, 3, 64, 64)
    assert model.forward_features(x).shape == (2, 4 + 16, 64)
    assert [f.shape for f in model.forward_intermediates(x, indices=1)] == [(2, 64, 4, 4)]
    with pytest.raises(ValueError, match="multiples of the patch size 16, got 64x70"):
        model(torch.randn(1, 3, 64, 70))
    with pytest.raises(ValueError, match="pos_embed='sincos'"):
        _naflex(pos_embed="sincos")
    with pytest.raises(ValueError, match="global_pool='token' needs a class token"):
        _naflex(global_pool="token")
