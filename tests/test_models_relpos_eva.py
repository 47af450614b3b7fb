"""The rel-pos ViT and the RoPE ViTs with registers (timm's Eva): interface and derived buffers.
(Golden parity of every architecture: test_models_parity.py.)"""
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
]
ARCHS = RELPOS + ROPE


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
    # intermediates are the blocks' outputs, before the final norm (identity under fc_norm)
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
    assert derived, "rope tables / rel-pos indices should be buffers (they follow .to(device))"
    assert not set(derived) & set(persistent)
    # The family filter drops such buffers if a foreign state dict carries them.
    extra = {**model.state_dict(), **{name: buf for name, buf in model.named_buffers()}}
    assert model.checkpoint_filter_fn(extra, model).keys() == persistent
