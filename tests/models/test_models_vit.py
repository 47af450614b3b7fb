"""The plain ViT family's own behaviour (golden parity of every architecture: test_models_parity.py)."""
from __future__ import annotations

import pytest
import torch

from vitbench.models import get_builder
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


# ------------------------------------------------------------------------------ differential attention

def test_diff_lambda_init_follows_the_block_index():
    """lambda_init = 0.8 - 0.6 exp(-0.3 i) for block i (from 0), in plain and parallel blocks alike."""
    import math

    with torch.device("meta"):
        for arch, depth in (("vit_dwee_patch16_reg1_gap_256", 14), ("vit_dpwee_patch16_reg1_gap_256", 16)):
            model = get_builder(arch)()
            got = [getattr(blk, "attn", blk).lambda_init for blk in model.blocks]
            assert got == pytest.approx([0.8 - 0.6 * math.exp(-0.3 * i) for i in range(depth)])
            assert got[0] == pytest.approx(0.2) and got[-1] < 0.8
    assert model.blocks[0].out_proj.in_features == 256 + 1280      # dpwee: one fused output projection


@torch.no_grad()
def test_diff_attention_is_the_difference_of_two_softmax_attentions():
    """DiffAttention = sub_norm(attn(q1, k1, v) - lambda attn(q2, k2, v)) * (1 - lambda_init), with q, k
    heads split in halves and v whole; written here with SDPA, against the layer's explicit maps."""
    import torch.nn.functional as F

    from vitbench.models.layers import DiffAttention, merge_heads

    torch.manual_seed(0)
    attn = DiffAttention(32, num_heads=2, depth_index=3).eval()
    x = torch.randn(2, 5, 32)
    q, k, v = attn.qkv_heads(x)                                           # (2, 2, 5, 16)
    lam = (attn.lambda_q1 @ attn.lambda_k1).exp() - (attn.lambda_q2 @ attn.lambda_k2).exp() + attn.lambda_init
    o = F.scaled_dot_product_attention(q[..., :8], k[..., :8], v) \
        - lam * F.scaled_dot_product_attention(q[..., 8:], k[..., 8:], v)
    o = F.rms_norm(o, (16,), attn.sub_norm.weight, eps=1e-5) * (1 - attn.lambda_init)
    torch.testing.assert_close(attn(x), attn.proj(merge_heads(o)))
    assert attn.lambda_q1.shape == (8,) and attn.sub_norm.weight.shape == (16,)


def test_diff_attention_settings_name_the_value():
    from vitbench.models.layers import DiffAttention, ParallelScalingBlock

    with pytest.raises(ValueError, match="attn_layer='bogus'"):
        _build("vit_dwee_patch16_reg1_gap_256", attn_layer="bogus")
    with pytest.raises(ValueError, match="head dim 9 is odd"):
        DiffAttention(18, num_heads=2)
    with pytest.raises(ValueError, match="no sub-LNs"):
        ParallelScalingBlock(32, 2, attn_layer=DiffAttention, scale_attn_norm=True)
    with pytest.raises(ValueError, match="no rotary embedding"):
        DiffAttention(32, num_heads=2)(torch.randn(1, 3, 32), rope=(torch.ones(3, 16), torch.zeros(3, 16)))


# ---------------------------------------------------------------------------------------------- BEiT-3

def _beit3_release(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's BEiT-3 state dict written back in the original release's layout (torchscale's multiway
    encoder: vision expert 'A', language expert 'B', separate q/k/v, 2 unused position rows)."""
    out = {"beit3.text_embed.weight": torch.randn(64, 8), "beit3.vision_embed.mask_token": torch.randn(1, 1, 8)}
    sub = {"norm1": "self_attn_layer_norm.A", "norm2": "final_layer_norm.A", "attn.norm": "self_attn.inner_attn_ln.A",
           "attn.proj": "self_attn.out_proj.A", "mlp.norm": "ffn.A.ffn_layernorm", "mlp.fc1": "ffn.A.fc1",
           "mlp.fc2": "ffn.A.fc2"}
    for k, v in sd.items():
        if k == "pos_embed":
            out["beit3.encoder.embed_positions.A.weight"] = torch.cat([torch.randn(2, v.shape[-1]), v[0]])
            out["beit3.encoder.embed_positions.B.weight"] = torch.randn(10, v.shape[-1])
        elif k in ("cls_token",) or k.startswith("patch_embed."):
            out["beit3.vision_embed." + k.replace("patch_embed.", "")] = v
        elif k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            name, kind = rest.rsplit(".", 1)
            prefix = f"beit3.encoder.layers.{i}."
            if name == "attn.qkv":
                for proj, part in zip("qkv", v.chunk(3), strict=True):
                    out[f"{prefix}self_attn.{proj}_proj.A.{kind}"] = part
                    out[f"{prefix}self_attn.{proj}_proj.B.{kind}"] = torch.randn_like(part)
            else:
                out[f"{prefix}{sub[name]}.{kind}"] = v
                out[f"{prefix}{sub[name].replace('.A', '.B')}.{kind}"] = torch.randn_like(v)
        else:                                                             # fc_norm, head
            out[k] = v
    return out


@torch.no_grad()
def test_beit3_filter_maps_the_original_release():
    model = _build("beit3_base_patch16_224", depth=2)
    sd = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    release = _beit3_release(sd)
    assert not any(k.startswith(("blocks.", "pos_embed", "cls_token")) for k in release)
    out = model.checkpoint_filter_fn(release, model)
    assert out.keys() == sd.keys()
    for k in sd:
        torch.testing.assert_close(out[k], sd[k], rtol=0, atol=0, msg=k)
    model.load_state_dict(out, strict=True)
    # timm's own Hub weights are already in this layout and pass through as they are
    assert all(checkpoint_filter_fn(sd, model)[k] is sd[k] for k in sd)
