"""The plain ViT family's own behaviour (golden parity of every architecture: test_models_parity.py)."""
from __future__ import annotations

import pytest
import torch

from vitbench.models._registry import get_builder
from vitbench.models.vision_transformer import VisionTransformer, checkpoint_filter_fn



def _build(arch: str, **kwargs) -> VisionTransformer:
    return get_builder(arch)(num_classes=1000, **kwargs).eval()


@torch.no_grad()
def test_interface_tiny():
    model = _build("vit_tiny_patch16_224")
    assert (model.num_features, model.embed_dim, model.num_prefix_tokens, model.img_size, model.patch_size) == \
        (192, 192, 1, 224, 16)
    x = torch.randn(2, 3, 224, 224)
    assert model.forward_features(x).shape == (2, 197, 192)
    assert torch.equal(model(x), model.forward_head(model.forward_features(x)))
    feats = model.forward_intermediates(x, indices=2)
    assert [f.shape for f in feats] == [(2, 192, 14, 14)] * 2
    assert [f.shape for f in model.forward_intermediates(x, indices=[0, -1])] == [(2, 192, 14, 14)] * 2
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
    assert model(x).shape == (2, 192)
    model.reset_classifier(10)
    assert model(x).shape == (2, 10)


@torch.no_grad()
def test_interface_registers_gap():
    model = _build("vit_wee_patch16_reg1_gap_256")
    assert model.num_prefix_tokens == 1 and model.pos_embed.shape[1] == 256
    x = torch.randn(2, 3, 256, 256)
    feats = model.forward_features(x)
    assert feats.shape == (2, 257, 256)
    # 'avg' pools the patch tokens only (the register token is left out), then fc_norm
    expected = model.fc_norm(feats[:, 1:].mean(1))
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), expected)
    assert model.forward_intermediates(x)[0].shape == (2, 256, 16, 16)


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match="expects 224x224"):
        _build("vit_tiny_patch16_224")(torch.randn(1, 3, 256, 256))


@torch.no_grad()
def test_filter_resamples_pos_embed_224_to_384():
    small = _build("vit_tiny_patch16_224")
    big = _build("vit_tiny_patch16_224", img_size=384)
    sd = small.state_dict()
    out = big.checkpoint_filter_fn(sd, big)           # the builder binds the family's filter
    assert out["pos_embed"].shape == (1, 1 + 24 * 24, 192)
    torch.testing.assert_close(out["pos_embed"][:, :1], sd["pos_embed"][:, :1])   # class position kept
    big.load_state_dict(out, strict=True)
    assert big(torch.randn(1, 3, 384, 384)).shape == (1, 1000)
    # a grid that already matches is passed through untouched
    assert checkpoint_filter_fn(sd, small)["pos_embed"] is sd["pos_embed"]


@torch.no_grad()
def test_filter_resamples_patch_only_pos_embed():
    small = _build("vit_wee_patch16_reg1_gap_256", depth=1)
    big = _build("vit_wee_patch16_reg1_gap_256", depth=1, img_size=384)
    out = checkpoint_filter_fn(small.state_dict(), big)
    assert out["pos_embed"].shape == (1, 24 * 24, 256)
    big.load_state_dict(out, strict=True)


def test_default_head_is_timms_and_a_checkpoint_sets_its_own():
    """A bare architecture gets timm's default head (MIIL: its 11221 ImageNet-21K-P classes; SigLIP: the
    bare tower); a registered checkpoint gets the head of its pretrained config."""
    from vitbench.models import create_model

    with torch.device("meta"):
        assert get_builder("vit_base_patch16_224_miil")().head.out_features == 11221
        assert isinstance(get_builder("vit_so400m_patch14_siglip_378")().head, torch.nn.Identity)
        assert get_builder("vit_so400m_patch14_siglip_378")(num_classes=10).head.out_features == 10
        assert create_model("vit_so400m_patch14_siglip_378.webli_ft_in1k").head.out_features == 1000
        assert create_model("vit_base_patch16_224_miil.in21k_ft_in1k").head.out_features == 1000


@torch.no_grad()
def test_flexivit_filter_resamples_positions_bilinearly():
    """timm resizes the big_vision FlexiViT position tables bilinearly without antialias (its default
    elsewhere: antialiased bicubic); FlexiViT's table covers the patch tokens only."""
    import torch.nn.functional as F

    small = get_builder("flexivit_small")(depth=1)
    big = get_builder("flexivit_small")(depth=1, img_size=320)
    sd = small.state_dict()
    out = big.checkpoint_filter_fn(sd, big)
    grid = sd["pos_embed"].reshape(1, 15, 15, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(20, 20), mode="bilinear", antialias=False)
    torch.testing.assert_close(out["pos_embed"], expected.permute(0, 2, 3, 1).reshape(1, 400, -1))
    big.load_state_dict(out, strict=True)
