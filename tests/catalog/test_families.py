"""Catalog families: every checkpoint belongs to exactly one, a new family is data only, and the
report keeps no model facts of its own."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

import vitbench
from vitbench.catalog.registry import (
    _load_catalog,
    get_checkpoint,
    get_family,
    list_families,
    list_models,
    parse_catalog,
)
from vitbench.records import RecordStore
from vitbench.report.card import card_view, related, size_word


def catalog() -> dict:
    return copy.deepcopy(_load_catalog())


def test_every_checkpoint_has_a_family_and_every_family_a_checkpoint():
    used = {get_checkpoint(n).family for n in list_models()}
    assert used == set(list_families())
    for name in list_families():
        family = get_family(name)
        assert family.title and family.papers, name
        assert all(row.size for row in family.size_table), name


def test_families_group_model_families():
    assert {get_checkpoint(n).family for n in list_models("deit_*")} == {"deit"}
    assert {get_checkpoint(n).family for n in list_models("deit3_*")} == {"deit3"}
    assert {get_checkpoint(n).family for n in list_models("vit_*clip*")} == {"clip"}
    assert get_checkpoint("vit_base_r50_s16_384.orig_in21k_ft_in1k").family == "hybrid"
    assert get_checkpoint("google/vit-hybrid-base-bit-384").family == "vit_hybrid_hf"
    sbb = [n for n in list_models() if get_checkpoint(n).family == "sbb"]
    assert all(".sbb" in n for n in sbb) and len(sbb) == 19
    # the differential-attention SBB ViTs are a family of their own; BEiT-3 is not BEiT's
    diff = [n for n in list_models() if get_checkpoint(n).family == "sbb_diff"]
    assert sorted(diff) == sorted(list_models("vit_d*_patch16_reg1_gap_256.*")) and len(diff) == 5
    assert {get_checkpoint(n).family for n in list_models("beit3_*")} == {"beit3"}


def test_size_words_come_from_the_models():
    assert size_word(get_checkpoint("vit_pwee_patch16_reg1_gap_256.sbb_in1k")) == "pwee"
    assert size_word(get_checkpoint("google/vit-hybrid-base-bit-384")) == "base"
    assert size_word(get_checkpoint("vit_relpos_base_patch32_plus_rpn_256.sw_in1k")) == "base_plus"
    cfg = get_checkpoint("deit_tiny_patch16_224.fb_in1k")
    rel = related(cfg)
    assert set(rel) == {n for n in list_models() if get_checkpoint(n).family == "deit"
                        or size_word(get_checkpoint(n)) == "tiny"}
    assert rel == [n for n in list_models() if n in rel]             # catalog order



def test_model_families_are_one_registry_with_titles():
    """Every architecture has one ModelFamily, and each family has the title reports show."""
    from vitbench.models import list_architectures, model_family

    families = {model_family(a).name: model_family(a) for a in list_architectures()}
    assert {n: f.title for n, f in families.items()} == {
        "vision_transformer": "ViT", "deit": "DeiT", "beit": "BEiT", "eva": "EVA / RoPE ViT",
        "vision_transformer_relpos": "ViT (relative position)",
        "vision_transformer_hybrid": "ViT hybrid (ResNetV2 backbone)", "naflexvit": "NaFlexViT"}
    assert all(a in model_family(a).archs for a in list_architectures())
    with pytest.raises(vitbench.UnknownModelError, match="Did you mean: vit_base_patch16_224"):
        model_family("vit_bse_patch16_224")


def test_token_shapes_and_size_words_come_from_the_models():
    from vitbench.models import architecture_size, token_shapes

    shapes = token_shapes("vit_base_patch16_224.augreg2_in21k_ft_in1k")
    assert (shapes.width, shapes.patch, shapes.grid, shapes.prefix, shapes.tokens) == (768, 16, 14, 1, 197)
    reg = token_shapes("vit_betwixt_patch16_reg4_gap_256.sbb_in12k_ft_in1k")
    assert (reg.width, reg.grid, reg.prefix, reg.tokens) == (640, 16, 4, 260)      # 4 registers, no class token
    assert architecture_size("vit_betwixt_patch16_reg4_gap_256") == "betwixt"

def test_size_table_and_card_text_are_catalog_data(tmp_path):
    empty = RecordStore.load(tmp_path)
    sbb = card_view(get_checkpoint("vit_wee_patch16_reg1_gap_256.sbb_in1k"), empty)
    rows = {r.cells[0].text: [c.text for c in r.cells] for r in sbb["size_table"]["table"].rows}
    assert rows["pwee"][4] == "16 (parallel)" and rows["wee"][5] == "y" and rows["base"][5] == "n"
    assert sbb["card_text"] is None
    hf = card_view(get_checkpoint("google/vit-hybrid-base-bit-384"), empty)
    assert hf["size_table"] is None
    assert hf["card_text"]["heading"] == "Vision Transformer (base-sized model) - Hybrid"


def test_a_new_family_is_data_only():
    """A family added to the YAML alone: matched by architecture pattern, which beats the lineage its
    checkpoints share with DeiT."""
    raw = catalog()
    raw["families"]["deit_tiny"] = {"title": "DeiT-Ti", "match": {"architectures": ["deit_tiny_*"]},
                                    "papers": ["deit"],
                                    "size_table": {"intro": "Sizes:", "rows": [{"size": "tiny", "timm_orig": False}]}}
    checkpoints, families = parse_catalog(raw)
    assert checkpoints["deit_tiny_patch16_224.fb_in1k"].family == "deit_tiny"
    assert checkpoints["deit_small_patch16_224.fb_in1k"].family == "deit"
    assert families["deit_tiny"].size_table[0].size == "tiny"


@pytest.mark.parametrize("change, message", [
    (lambda c: [c["families"][f]["match"].update(architectures=["vit_relpos_*"]) for f in ("deit", "relpos")],
     r"matches families \['deit', 'relpos'\] by architecture pattern"),
    (lambda c: c["families"]["relpos"]["match"].update(lineages=[]), "matches no family"),
    (lambda c: c["families"]["deit"].update(sizes=["tiny"]), "unknown keys: \\['sizes'\\]"),
    (lambda c: c["families"]["deit"].update(papers=["nope"]), "family 'deit' cites unknown bibliography"),
])
def test_bad_family_data_names_the_problem(change, message):
    raw = catalog()
    change(raw)
    with pytest.raises(ValueError, match=message):
        parse_catalog(raw)


def test_report_keeps_no_model_facts():
    """Families, size tables and card prose live in the catalog, not in the report or the templates."""
    package = Path(vitbench.__file__).parent
    for module in sorted((package / "report").glob("*.py")):
        assert not re.search(r"SBB_VARIANTS|FAMILIES|\"pwee\"|\.split\(\"_\"\)", module.read_text()), module.name
    templates = package.parent / "templates"
    for t in templates.glob("*.j2"):
        assert "base-sized" not in t.read_text() and "ViT-Hybrid" not in t.read_text(), t.name
