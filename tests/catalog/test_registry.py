import functools
import json
from pathlib import Path

import pytest

import vitbench
from support import FIXTURES
from vitbench.catalog.registry import UnknownModelError, get_checkpoint, list_models

REFERENCE = json.loads((FIXTURES / "reference" / "checkpoints.json").read_text())
HF_HYBRID = "google/vit-hybrid-base-bit-384"


def test_registry_holds_the_whole_zoo_plus_hf_hybrid():
    """Every one of timm's 178 ViT-family ImageNet-1k classifiers, under its own name, and the
    transformers-format hybrid: nothing missing, nothing else."""
    assert HF_HYBRID in list_models()
    missing, extra = set(REFERENCE) - set(list_models()), set(list_models()) - {HF_HYBRID} - set(REFERENCE)
    assert not missing and not extra, f"missing {sorted(missing)}, not in the reference {sorted(extra)}"
    assert len(REFERENCE) == 178 and len(list_models()) == 179


def test_packaged_pretrained_configs_are_the_reference():
    from vitbench.catalog.registry import PRETRAINED_FIELDS, timm_pretrained

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


# ---------------------------------------------------------------------------- datasets from the tag

@functools.cache
def _tokens() -> dict:
    from vitbench.catalog.registry import _load_catalog

    return _load_catalog()["tag_tokens"]


@pytest.mark.parametrize("name", list_models())
def test_every_registered_tag_parses_with_known_tokens(name):
    """Every token of every registered tag is in the catalog's `tag_tokens` (an unknown one is a
    catalog error), and the card's datasets are the tag's."""
    from vitbench.catalog.registry import parse_tag

    cfg = get_checkpoint(name)
    data = parse_tag(cfg.tag or "in21k_ft_in1k", _tokens())
    assert cfg.dataset == data.dataset == "ImageNet-1k"
    assert cfg.fine_tune_datasets == data.fine_tune_datasets
    assert (cfg.fine_tune_datasets == ()) == ("_ft_" not in (cfg.tag or "_ft_"))
    # a lineage may refine the tag's pretraining data (ImageNet-21k-P) or name what a method token does
    # not (EVA-CLIP's LAION-400M), never drop it
    assert cfg.pretrain_dataset is not None or data.pretrain_dataset is None


def test_every_zoo_tag_parses():
    """Every tag of timm's zoo (registered or not yet) reads with the token table."""
    from vitbench.catalog.registry import parse_tag, timm_pretrained

    for name, ref in timm_pretrained().items():
        parse_tag(ref["tag"], _tokens(), name)


@pytest.mark.parametrize("tag, pretrain, fine_tune", [
    ("augreg_in21k_ft_in1k", "ImageNet-21k", ("ImageNet-1k",)),
    ("mim_in22k_ft_in22k_in1k", "ImageNet-22k", ("ImageNet-22k", "ImageNet-1k")),
    ("laion2b_ft_in12k_in1k", "LAION-2B", ("ImageNet-12k", "ImageNet-1k")),
    ("fb_in22k_ft_in1k", "ImageNet-22k", ("ImageNet-1k",)),
    ("sbb2_e200_in12k_ft_in1k", "ImageNet-12k", ("ImageNet-1k",)),
    ("openai_ft_in12k_in1k", "WIT-400M (OpenAI CLIP)", ("ImageNet-12k", "ImageNet-1k")),
    ("mim_m38m_ft_in22k_in1k", "Merged-38M", ("ImageNet-22k", "ImageNet-1k")),
    ("clip_ft_in1k", None, ("ImageNet-1k",)),           # a method, not data: the lineage names the data
    ("e300_s576_in1k", None, ()),
    ("naver_in1k", None, ()),
    ("300ep_in1k", None, ()),
    ("sam_in1k", None, ()),                             # SAM is the optimizer, not data
])
def test_parse_tag(tag, pretrain, fine_tune):
    from vitbench.catalog.registry import parse_tag

    data = parse_tag(tag, _tokens())
    assert (data.pretrain_dataset, data.fine_tune_datasets, data.dataset) == (pretrain, fine_tune, "ImageNet-1k")


def test_tag_errors_name_the_token_and_the_fix():
    import copy

    from vitbench.catalog.registry import _load_catalog, parse_catalog, parse_tag

    with pytest.raises(ValueError, match=r"unknown tokens \['in5k'\].*tag_tokens"):
        parse_tag("augreg_in5k_ft_in1k", _tokens(), "checkpoint 'x'")
    with pytest.raises(ValueError, match="does not read as"):
        parse_tag("in22k_in1k", _tokens())
    catalog = copy.deepcopy(_load_catalog())
    catalog["lineages"]["augreg_in21k_ft_in1k"]["pretrain_dataset"] = "ImageNet-21k"
    with pytest.raises(ValueError, match=r"states pretrain_dataset.*already implies; remove the line"):
        parse_catalog(catalog)


# The lower floors (catalog, models, data, weights) never import the floors above them: the catalog
# nothing of vitbench but itself, data not models, and none of them records, eval, run or report.
_UPPER = ("records", "eval", "run", "report", "results", "distributed", "runner", "engine", "evaluate", "cli",
          "bench", "plots", "precision")
_BANNED = {"catalog": _UPPER + ("data", "models", "weights", "stats"),
           "data": _UPPER + ("models", "weights", "stats"),
           "models": _UPPER + ("stats",),
           "weights.py": _UPPER + ("models", "data", "stats")}


def test_lower_floors_import_nothing_above():
    import ast

    package = Path(vitbench.__file__).parent
    bad = []
    for floor, banned in _BANNED.items():
        files = [package / floor] if floor.endswith(".py") else sorted((package / floor).rglob("*.py"))
        for f in files:
            for node in ast.walk(ast.parse(f.read_text())):          # function-level imports too
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                bad += [f"{f.relative_to(package)}:{node.lineno} imports {n}" for n in names
                        if any(n == f"vitbench.{b}" or n.startswith(f"vitbench.{b}.") for b in banned)]
    assert bad == []
