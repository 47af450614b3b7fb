import json
import subprocess
import sys

import pytest

from vitbench.catalog.registry import list_models
from vitbench.cli import UsageError, _data_overrides, _select, main


def test_list_prints_every_checkpoint(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(list_models())
    assert lines[0].startswith("vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k")


def test_list_json_has_full_config(capsys):
    assert main(["list", "deit_tiny_patch*", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["deit_tiny_patch16_224.fb_in1k"]
    entry = data["deit_tiny_patch16_224.fb_in1k"]
    assert entry["mean"] == [0.485, 0.456, 0.406] and entry["hf_hub_id"] == "timm/deit_tiny_patch16_224.fb_in1k"
    assert entry["papers"][0]["url"] == "https://arxiv.org/abs/2012.12877"


def test_select_patterns_and_all():
    assert _select(["deit_*_patch16_224.fb_in1k"], False)[:3] == [
        "deit_tiny_patch16_224.fb_in1k", "deit_small_patch16_224.fb_in1k", "deit_base_patch16_224.fb_in1k"]
    assert _select([], True) == list_models()
    with pytest.raises(UsageError, match="not both"):
        _select(["deit_*"], True)
    with pytest.raises(UsageError, match="at least one checkpoint"):
        _select([], False)
    with pytest.raises(UsageError, match="matches no registered checkpoint"):
        _select(["nothing_like_this*"], False)


def test_unknown_name_is_a_clear_error_with_suggestion(capsys):
    assert main(["stats", "deit_tiny_patch16_224.fb_in1kk"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'deit_tiny_patch16_224.fb_in1kk'" in err
    assert "Did you mean: deit_tiny_patch16_224.fb_in1k" in err
    assert "Traceback" not in err


def test_data_override_parsing():
    assert _data_overrides(["imagenet=/data/val", "v2=hf:vaishaal/ImageNetV2"]) == {
        "imagenet": "/data/val", "v2": "hf:vaishaal/ImageNetV2"}
    with pytest.raises(UsageError, match="NAME=PATH"):
        _data_overrides(["imagenet"])


def test_bad_dataset_name_is_usage_error(capsys):
    assert main(["run", "deit_tiny_patch16_224.fb_in1k", "--datasets", "imagenet,imagenet-z"]) == 2
    assert "unknown ['imagenet-z']" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "vitbench", "list", "vit_base_r50*"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("vit_base_r50_s16_384.orig_in21k_ft_in1k")
