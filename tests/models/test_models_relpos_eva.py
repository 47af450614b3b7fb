"""The rel-pos ViT and the EVA family (EVA-02, timm's SBB RoPE ViTs, Naver's RoPE-ViTs): interface,
derived buffers and the EVA checkpoint filter. (Golden parity of every architecture: test_models_parity.py.)"""
from __future__ import annotations

import pytest
import torch

import vitbench

RELPOS = ["vit_relpos_base_patch16_clsgap_224", "vit_relpos_medium_patch16_cls_224", "vit_srelpos_small_patch16_224"]
ROPE = [
    "vit_betwixt_patch16_rope_reg4_gap_256",
    "vit_mediumd_patch16_rope_reg1_gap_256",
    "vit_base_patch16_rope_reg1_gap_256",
    "vit_medium_patch16_rope_reg1_gap_256",
    "eva02_tiny_patch14_336",                   # class token + learned positions + axial rope, packed SwiGLU
]
MIXED = ["vit_small_patch16_rope_mixed_ape_224"]   # learned per-block rope frequencies, positions on patches
ARCHS = RELPOS + ROPE + MIXED


@pytest.fixture(scope="module", params=ARCHS)
def small_model(request):
    """A 2-block, 128 px model of the same family and width (random weights): for the interface checks."""
    return vitbench.create_model(request.param, depth=2, img_size=128).eval()


@torch.no_grad()
def test_intermediates_and_reset_classifier(small_model):
    model = small_model
    size, grid = model.img_size, model.img_size // model.patch_size
    x = torch.randn(1, 3, size, size)

    feats = model.forward_intermediates(x, indices=2)
    assert [tuple(f.shape) for f in feats] == [(1, model.embed_dim, grid, grid)] * 2
    (last,) = model.forward_intermediates(x, indices=[-1])
    torch.testing.assert_close(last, feats[1])
    tokens = model.forward_features(x)
    assert tokens.shape == (1, model.num_prefix_tokens + grid * grid, model.embed_dim)
    # intermediates are the blocks' raw outputs; forward_features ends with the final norm (a
    # per-token LayerNorm for class-token readout, identity under fc_norm)
    torch.testing.assert_close(tokens[:, model.num_prefix_tokens:], model.norm(last.flatten(2).transpose(1, 2)))

    pooled = model.forward_head(tokens, pre_logits=True)
    assert pooled.shape == (1, model.num_features)
    assert model(x).shape == (1, model.num_classes) and model.get_classifier() is model.head
    model.reset_classifier(0)
    assert model.num_classes == 0
    torch.testing.assert_close(model(x), pooled)
    model.reset_classifier(10)
    assert model(x).shape == (1, 10)


def test_shared_rel_pos_is_one_module_for_all_blocks():
    """srelpos: one bias MLP owned by the model (timm's `shared_rel_pos.*` keys), none in the blocks."""
    with torch.device("meta"):
        model = vitbench.create_model("vit_srelpos_medium_patch16_224")
    keys = model.state_dict().keys()
    assert "shared_rel_pos.mlp.fc1.weight" in keys and not any(".rel_pos." in k for k in keys)
    assert model.shared_rel_pos.mlp.fc1.out_features == 512


def test_derived_buffers_not_persistent(small_model):
    model = small_model
    persistent = model.state_dict().keys()
    derived = [name for name, _ in model.named_buffers()]
    if getattr(model, "rope_kind", None) == "mixed":        # learned: the frequencies are weights
        assert not derived and "rope.freqs" in persistent
        return
    assert derived, "rope tables / rel-pos indices should be buffers (they follow .to(device))"
    assert not set(derived) & set(persistent)
    # The family filter drops such buffers if a foreign state dict carries them.
    extra = {**model.state_dict(), **{name: buf for name, buf in model.named_buffers()}}
    assert model.checkpoint_filter_fn(extra, model).keys() == persistent


@torch.no_grad()
def test_eva_filter_maps_the_original_release_layout():
    """EVA's original release (an OpenCLIP `visual.` tower, `mlp.w1/w2/w3`, `ffn_ln`, `q_bias`/`v_bias`
    beside separate q/k/v projections, a stored rope table) loads strictly after the filter."""
    model = vitbench.create_model("eva02_base_patch14_448", depth=1, img_size=112).eval()
    timm_sd = model.state_dict()
    renames = {"mlp.fc1_g": "mlp.w1", "mlp.fc1_x": "mlp.w2", "mlp.fc2": "mlp.w3", "mlp.norm": "mlp.ffn_ln",
               "attn.q_proj.bias": "attn.q_bias", "attn.v_proj.bias": "attn.v_bias"}
    original = {}
    for k, v in timm_sd.items():
        for new, old in renames.items():
            k = k.replace(new, old)
        original[f"visual.{k}"] = torch.randn_like(v)
    original["visual.rope.freqs_cos"] = torch.zeros(64, 64)      # derived table: dropped
    original["text.token_embedding.weight"] = torch.zeros(3, 3)  # not the image tower: dropped

    filtered = model.checkpoint_filter_fn(original, model)
    assert filtered.keys() == timm_sd.keys()
    model.load_state_dict(filtered, strict=True)
    torch.testing.assert_close(model.blocks[0].mlp.fc1_g.weight, original["visual.blocks.0.mlp.w1.weight"])
    torch.testing.assert_close(model.blocks[0].attn.q_proj.bias, original["visual.blocks.0.attn.q_bias"])


def test_eva_filter_resamples_positions_and_keeps_learned_rope():
    model = vitbench.create_model("vit_small_patch16_rope_mixed_ape_224", depth=1)
    sd = {**model.state_dict(), "pos_embed": torch.randn(1, 7 * 7, model.embed_dim)}
    filtered = model.checkpoint_filter_fn(sd, model)
    assert filtered["pos_embed"].shape == model.pos_embed.shape      # 7x7 -> 14x14 patch grid
    assert "rope.freqs" in filtered


def test_eva_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="rope='spiral'"):
        vitbench.create_model("eva02_tiny_patch14_336", depth=1, rope="spiral")
    with pytest.raises(ValueError, match="grid_indexing='yx'"):
        vitbench.create_model("vit_small_patch16_rope_224", depth=1, rope_grid_indexing="yx")
