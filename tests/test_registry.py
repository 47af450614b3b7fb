import json

import pytest

import vitbench
from vitbench.registry import UnknownModelError, get_checkpoint, list_models

from conftest import FIXTURES

REFERENCE = json.loads((FIXTURES / "reference" / "checkpoints.json").read_text())
HF_HYBRID = "google/vit-hybrid-base-bit-384"


def test_registry_holds_only_reference_checkpoints_plus_hf_hybrid():
    assert HF_HYBRID in list_models()
    assert set(list_models()) - {HF_HYBRID} <= set(REFERENCE)


def test_packaged_pretrained_configs_are_the_reference():
    from vitbench.registry import PRETRAINED_FIELDS, timm_pretrained

    packaged = timm_pretrained()
    assert packaged.keys() == REFERENCE.keys()
    for name, ref in REFERENCE.items():
        assert {f: packaged[name][f] for f in PRETRAINED_FIELDS} == {f: ref[f] for f in PRETRAINED_FIELDS}, name


@pytest.mark.parametrize("name", [n for n in list_models() if n != HF_HYBRID])
def test_pretrained_config_equals_timm(name):
    ref, cfg = REFERENCE[name], get_checkpoint(name)
    assert cfg.architecture == ref["architecture"] and cfg.tag == ref["tag"]
    assert list(cfg.input_size) == ref["input_size"]
    assert cfg.crop_pct == ref["crop_pct"]
    assert cfg.crop_mode == ref["crop_mode"]
    assert cfg.interpolation == ref["interpolation"]
    assert list(cfg.mean) == ref["mean"] and list(cfg.std) == ref["std"]
    assert cfg.num_classes == ref["num_classes"]
    assert cfg.hf_hub_id == ref["hf_hub_id"]
    assert cfg.license == ref["license"]


@pytest.mark.parametrize("name", list_models())
def test_every_checkpoint_has_card_facts(name):
    cfg = get_checkpoint(name)
    assert cfg.description and cfg.model_type and cfg.dataset and cfg.original.startswith("https://")
    assert cfg.papers and all(p.url.startswith("https://") and p.title for p in cfg.papers)
    assert cfg.citations and all(p.bibtex.startswith("@") for p in cfg.citations)


def test_seed_card_facts():
    rope = get_checkpoint("vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k")
    assert [p.url for p in rope.papers] == [
        "https://arxiv.org/abs/2303.11331", "https://arxiv.org/abs/2309.16588",
        "https://arxiv.org/abs/2010.11929v2"]
    assert rope.license == "mit" and rope.pretrain_dataset is None
    augreg = get_checkpoint("vit_base_patch16_384.augreg_in21k_ft_in1k")
    assert augreg.pretrain_dataset == "ImageNet-21k"
    assert augreg.original == "https://github.com/google-research/vision_transformer"
    hf = get_checkpoint(HF_HYBRID)
    assert hf.weights_format == "transformers" and hf.architecture == "vit_base_r50_s16_384"


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownModelError, match=r"Did you mean: vit_base_patch16_224\.augreg_in21k_ft_in1k"):
        get_checkpoint("vit_base_patch16_224.augreg_in21k_ft_in1kk")


def test_list_models_pattern():
    assert list_models("deit_*_patch16_224.fb_in1k")[:3] == [
        "deit_tiny_patch16_224.fb_in1k", "deit_small_patch16_224.fb_in1k", "deit_base_patch16_224.fb_in1k"]
    assert list_models("deit_tiny*") == ["deit_tiny_patch16_224.fb_in1k", "deit_tiny_distilled_patch16_224.fb_in1k"]
    assert vitbench.list_models is list_models


def test_resolve_data_config_from_name():
    dc = vitbench.resolve_data_config("deit_small_patch16_224.fb_in1k")
    assert dc.input_size == (3, 224, 224) and dc.mean == (0.485, 0.456, 0.406)


def test_catalog_and_architecture_registry_agree():
    """Every catalog checkpoint names a registered architecture; every architecture has a checkpoint."""
    from vitbench.models import list_architectures

    used = {get_checkpoint(n).architecture for n in list_models()}
    assert sorted(used - set(list_architectures())) == []
    assert sorted(set(list_architectures()) - used) == []


def test_catalog_input_size_must_match_the_architecture():
    from dataclasses import replace

    from vitbench.models import build_model

    cfg = get_checkpoint("deit_tiny_patch16_224.fb_in1k")
    with pytest.raises(ValueError, match=r"input_size \(3, 256, 256\) does not match architecture "
                                         r"'deit_tiny_patch16_224'.*224x224"):
        build_model(cfg.architecture, cfg=replace(cfg, input_size=(3, 256, 256)))
