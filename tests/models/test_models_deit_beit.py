"""DeiT (distilled, DeiT-III) and BEiT: the checkpoint filters on the original release layouts, the
distilled head, BEiT's bias index. (Golden parity of every architecture: test_models_parity.py.)"""
from __future__ import annotations

import pytest
import torch

from vitbench.models import build_model
from vitbench.weights import load_weights


def _small(arch: str, **kw):
    """A 1-block, 64 px model of `arch`'s family and width (random weights)."""
    return build_model(arch, depth=1, img_size=64, **kw).eval()


def _filtered_load(model, sd):
    model.load_state_dict(model.checkpoint_filter_fn(sd, model), strict=True)


def test_deit3_filter_renames_the_original_release_layer_scale():
    model = _small("deit3_small_patch16_224")
    sd = {k.replace(".ls1.gamma", ".gamma_1").replace(".ls2.gamma", ".gamma_2"): torch.randn_like(v)
          for k, v in model.state_dict().items()}
    assert "blocks.0.gamma_1" in sd and "blocks.0.ls1.gamma" not in sd
    _filtered_load(model, {"model": sd})                         # the FB release wraps it in 'model'
    torch.testing.assert_close(model.blocks[0].ls1.gamma.data, sd["blocks.0.gamma_1"])


@torch.no_grad()
def test_distilled_head_averages_both_tokens_and_resamples_its_positions():
    model = _small("deit_tiny_distilled_patch16_224")
    assert model.num_prefix_tokens == 2 and model.pos_embed.shape[1] == 2 + 16
    x = torch.randn(2, 3, 64, 64)
    feats = model.forward_features(x)
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), (feats[:, 0] + feats[:, 1]) / 2)
    torch.testing.assert_close(model(x), (model.head(feats[:, 0]) + model.head_dist(feats[:, 1])) / 2)

    # weights for an 8x8 grid load into the 4x4 model: the two prefix positions are kept as they are
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["pos_embed"] = torch.randn(1, 2 + 64, model.embed_dim)
    out = model.checkpoint_filter_fn(sd, model)
    assert out["pos_embed"].shape == model.pos_embed.shape
    torch.testing.assert_close(out["pos_embed"][:, :2], sd["pos_embed"][:, :2])

    model.reset_classifier(0)
    assert model(x).shape == (2, model.embed_dim)


def test_distilled_rejects_pooling_it_cannot_do():
    with pytest.raises(ValueError, match="global_pool='token'"):
        _small("deit_tiny_distilled_patch16_224", global_pool="avg", class_token=True)


def test_beit_filter_drops_derived_buffers_and_unwraps(tmp_path):
    from safetensors.torch import save_file

    model = _small("beitv2_base_patch16_224")
    attn = model.blocks[0].attn
    sd = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    # the original BEiT v2 release: under 'module', with the index and the zero k-bias saved
    sd["blocks.0.attn.relative_position_index"] = attn.relative_position_index.clone()
    sd["blocks.0.attn.k_bias"] = torch.zeros_like(attn.q_bias)
    _filtered_load(model, {"module": sd})
    torch.testing.assert_close(attn.relative_position_bias_table.data, sd["blocks.0.attn.relative_position_bias_table"])

    # a table for another grid: a clear error through the loader, naming the key
    sd["blocks.0.attn.relative_position_bias_table"] = torch.zeros(9 * 9 + 3, attn.num_heads)    # a 5x5 grid's table
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(Exception, match=r"blocks\.0\.attn\.relative_position_bias_table.*another input size"):
        load_weights(model, tmp_path / "w.safetensors")


def test_beit_index_class_rows():
    from vitbench.models.beit import beit_relative_position_index

    idx = beit_relative_position_index((2, 3)).view(7, 7)
    offsets = 3 * 5
    assert idx[0, 1:].eq(offsets).all() and idx[1:, 0].eq(offsets + 1).all() and idx[0, 0] == offsets + 2
    assert idx[1:, 1:].diagonal().eq(offsets // 2).all()               # zero offset: the table's centre
    assert int(idx.max()) == offsets + 2 and int(idx[1:, 1:].max()) == offsets - 1
