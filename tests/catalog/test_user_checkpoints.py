"""Your own checkpoints beside the zoo: a user catalog (training checkpoints, EMA, globs, claimed
numbers), local-dir: and hf-hub: names in timm's format (an offline HF cache), each evaluated end to end
from the CLI, and every bad input answered in one line naming the thing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from support import hf_golden_folder, make_wnid_folders, write_image
from vitbench import cli
from vitbench.catalog import imagenet_synsets
from vitbench.records import eval_path, read_record

ARCH = "vit_tiny_patch16_224"
ZOO = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
SHA = "0123456789abcdef0123456789abcdef01234567"


pytestmark = pytest.mark.usefixtures("user_registry")     # conftest: user checkpoints of this test only


@pytest.fixture(scope="module")
def tiny_state():
    import vitbench

    torch.manual_seed(0)
    return {k: v.contiguous() for k, v in vitbench.create_model(ARCH).state_dict().items()}


def _data(tmp_path: Path) -> Path:
    root = make_wnid_folders(tmp_path / "data" / "imagenet", [])
    syn = imagenet_synsets()
    for n, cls in enumerate((0, 1, 2), start=1):
        write_image(root / syn[cls] / f"ILSVRC2012_val_{n:08d}.JPEG", cls)
    return tmp_path / "data"


def _run(tmp_path, *argv) -> int:
    return cli.main(["run", *argv, "--datasets", "imagenet", "--data-root", str(tmp_path / "data"),
                     "--results-dir", str(tmp_path / "results"), "--workers", "0", "--batch-size", "2",
                     "--no-bench", "--no-report"])


def _timm_folder(folder: Path, state: dict, crop_pct: float = 0.95) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({
        "architecture": ARCH, "num_classes": 1000, "pretrained_cfg": {
            "input_size": [3, 224, 224], "crop_pct": crop_pct, "crop_mode": "center", "interpolation": "bilinear",
            "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": 1000, "license": "mit"}}))
    save_file(state, str(folder / "model.safetensors"))
    return folder


# ---------------------------------------------------------------------------- a catalog of training checkpoints

def _training_checkpoint(state: dict, ema_delta: float = 0.0) -> dict:
    import argparse

    return {"epoch": 9, "state_dict": {f"module.{k}": v for k, v in state.items()},
            "state_dict_ema": {k: v + ema_delta for k, v in state.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": []}]},
            "args": argparse.Namespace(model=ARCH, lr=1e-3)}


def test_a_catalog_checkpoint_is_listed_and_evaluated_with_its_ema_weights(tmp_path, tiny_state, capsys):
    _data(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    torch.save(_training_checkpoint(tiny_state, 0.01), runs / "checkpoint-9.pth")
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(f"""checkpoints:
  - name: {ARCH}.my_ft
    architecture: {ARCH}
    weights: runs/checkpoint-9.pth
    ema: true
    data_config: {{crop_pct: 0.95}}
    claimed: {{imagenet: 75.5}}
    family: My fine-tunes
""")
    assert cli.main(["list", "*my_ft", "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert f"{ARCH}.my_ft" in out and "crop 0.95" in out
    assert _run(tmp_path, f"{ARCH}.my_ft", "--catalog", str(catalog)) == 0
    rec = read_record(eval_path(tmp_path / "results", "imagenet", f"{ARCH}.my_ft", "fp32"))
    assert rec.status == "ok" and rec.n_images == 3 and rec.data_config["crop_pct"] == 0.95
    assert rec.weights.entry == "state_dict_ema" and rec.weights.path == str(runs / "checkpoint-9.pth")
    from vitbench.catalog.registry import get_checkpoint, get_family

    cfg = get_checkpoint(f"{ARCH}.my_ft")
    assert cfg.claimed == (("imagenet", 75.5),) and get_family(cfg.family).title == "My fine-tunes"


def test_a_glob_registers_one_checkpoint_per_file(tmp_path, tiny_state, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    for epoch in (100, 200, 300):
        torch.save(_training_checkpoint(tiny_state), runs / f"checkpoint-{epoch}.pth")
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(f"checkpoints:\n  - name: {ARCH}.run7\n    architecture: {ARCH}\n"
                       f"    weights: runs/checkpoint-*.pth\n")
    assert cli.main(["list", "--catalog", str(catalog), f"{ARCH}.run7*"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert names == [f"{ARCH}.run7-checkpoint-{e}" for e in (100, 200, 300)]


# ---------------------------------------------------------------------------- local-dir: and hf-hub:

def test_a_local_dir_in_timm_format_evaluates(tmp_path, tiny_state):
    _data(tmp_path)
    folder = _timm_folder(tmp_path / "my-vit", tiny_state)
    name = f"local-dir:{folder}"
    assert _run(tmp_path, name) == 0
    rec = read_record(eval_path(tmp_path / "results", "imagenet", name, "fp32"))
    assert rec.status == "ok" and rec.data_config["crop_pct"] == 0.95
    assert rec.data_config["interpolation"] == "bilinear" and rec.weights.path == str(folder)


def test_an_hf_hub_repo_from_an_offline_cache_evaluates(tmp_path, tiny_state):
    _data(tmp_path)
    repo = tmp_path / "hf" / "models--someone--my-vit"
    _timm_folder(repo / "snapshots" / SHA, tiny_state, crop_pct=0.875)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    assert _run(tmp_path, "hf-hub:someone/my-vit") == 0
    rec = read_record(eval_path(tmp_path / "results", "imagenet", "hf-hub:someone/my-vit", "fp32"))
    assert rec.status == "ok" and rec.data_config["crop_pct"] == 0.875
    assert rec.weights.source == "hf-cache" and SHA in rec.weights.path          # the revision read


# ---------------------------------------------------------------------------- transformers format

def _hf_cache_repo(tmp_path: Path, repo: str, case: str) -> Path:
    """An offline HF cache holding golden checkpoint `case` as Hub repo `repo` (refs/main -> SHA)."""
    root = tmp_path / "hf" / f"models--{repo.replace('/', '--')}"
    hf_golden_folder(root / "snapshots" / SHA, case)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(SHA)
    return root / "snapshots" / SHA


def test_a_transformers_local_dir_registers_from_its_config_and_evaluates(tmp_path):
    """ViT's golden folder (depth 2): the nearest registered architecture and how it differs, the data
    config its ViTImageProcessor gives, its head from id2label; evaluated from the CLI, its model
    built from its own config.json, the record naming the config files' hashes."""
    _data(tmp_path)
    folder = hf_golden_folder(tmp_path / "my-hf-vit", "vit-base-patch16-224")
    name = f"local-dir:{folder}"
    from vitbench.models import resolve_checkpoint

    cfg = resolve_checkpoint(name)
    assert (cfg.weights_format, cfg.library_name, cfg.architecture) == ("transformers", "transformers",
                                                                          "vit_base_patch16_224")
    assert cfg.extra["differs_from_architecture"] == {"depth": 2} and cfg.num_classes == 1000
    assert (cfg.crop_mode, cfg.extra["resize_size"], cfg.interpolation) == ("hf_resize", (224, 224), "bilinear")
    assert _run(tmp_path, name) == 0
    rec = read_record(eval_path(tmp_path / "results", "imagenet", name, "fp32"))
    assert rec.status == "ok" and rec.data_config["crop_mode"] == "hf_resize" and rec.weights.path == str(folder)
    assert rec.weights.files == {f: _sha(folder / f) for f in ("config.json", "preprocessor_config.json")}
    assert rec.weights.repo is None and rec.weights.sha256 == _sha(folder / "model.safetensors")
    import vitbench

    assert len(vitbench.create_model(name).blocks) == 2              # no weights: still its own config's depth
    assert vitbench.count_stats(name).param_count == sum(
        p.numel() for p in vitbench.create_model(name).parameters())


def test_a_transformers_hf_hub_repo_from_an_offline_cache_evaluates(tmp_path):
    """A distilled DeiT repo in the HF cache (offline): the resolved repo and revision in the record."""
    _data(tmp_path)
    snapshot = _hf_cache_repo(tmp_path, "someone/my-deit", "deit-base-distilled-patch16-224")
    name = "hf-hub:someone/my-deit"
    assert _run(tmp_path, name) == 0
    rec = read_record(eval_path(tmp_path / "results", "imagenet", name, "fp32"))
    assert rec.status == "ok" and rec.data_config["resize_size"] == [256, 256]
    assert (rec.weights.source, rec.weights.repo, rec.weights.revision) == ("hf-cache", "someone/my-deit", SHA)
    assert rec.weights.files["preprocessor_config.json"] == _sha(snapshot / "preprocessor_config.json")
    from vitbench.catalog.registry import get_checkpoint

    cfg = get_checkpoint(name)
    assert cfg.architecture == "deit_base_distilled_patch16_224" and cfg.extra["transformers_class"] == \
        "DeiTForImageClassificationWithTeacher"


def test_a_catalog_entry_from_a_transformers_folder(tmp_path):
    """`from: local-dir:` of a transformers folder, with the entry's own name, family and claim."""
    hf_golden_folder(tmp_path / "dino", "dinov2-small-imagenet1k-1-layer")
    catalog = tmp_path / "mine.yaml"
    catalog.write_text("checkpoints:\n  - name: my_dino.ft\n    from: local-dir:dino\n"
                       "    claimed: {imagenet: 70.1}\n    family: Dinos\n    license: mit\n")
    from vitbench.catalog.registry import get_checkpoint
    from vitbench.models import register_catalog

    assert register_catalog(catalog) == ["my_dino.ft"]
    cfg = get_checkpoint("my_dino.ft")
    assert (cfg.weights_format, cfg.family, cfg.license, cfg.claimed) == ("transformers", "Dinos", "mit",
                                                                           (("imagenet", 70.1),))
    assert cfg.weights == str(tmp_path / "dino") and cfg.extra["differs_from_architecture"]["patch_size"] == 14


def test_a_transformers_config_vitbench_cannot_build_is_one_line(tmp_path, capsys):
    folder = tmp_path / "swin"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "swin", "architectures": ["SwinForImageClassification"]}))
    assert cli.main(["run", f"local-dir:{folder}", "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'config.json'}: model_type 'swin' (SwinForImageClassification) is not supported" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- bad input: one line, no record

@pytest.mark.parametrize("text, message", [
    ("checkpoints:\n  - name: x.y\n    architecture: [unclosed\n", "mine.yaml:3: not valid YAML"),
    ("checkpoints:\n  - name: x.y\n    architecture: vit_tiny_patch16_244\n    weights: w.pth\n",
     "mine.yaml:2: entry 'x.y': field 'architecture': 'vit_tiny_patch16_244' is not an architecture vitbench "
     "has. Did you mean: vit_tiny_patch16_224"),
    (f"checkpoints:\n  - name: {ZOO}\n    architecture: {ARCH}\n    weights: w.pth\n",
     f"mine.yaml:2: entry '{ZOO}': the name collides with a registered checkpoint"),
    (f"checkpoints:\n  - name: a.b\n    architecture: {ARCH}\n    weights: nope.pth\n",
     "mine.yaml:2: entry 'a.b': field 'weights':"),
    (f"checkpoints:\n  - name: a.b\n    architecture: {ARCH}\n    weights: w.pth\n    claimed: {{imagenet-x: 80}}\n",
     "field 'claimed': unknown dataset 'imagenet-x'"),
    (f"checkpoints:\n  - name: a.b\n    architecture: {ARCH}\n    weights: w.pth\n    colour: red\n",
     "entry 'a.b': unknown field(s) ['colour']"),
])
def test_a_bad_catalog_is_one_line_naming_the_file_line_and_field(tmp_path, text, message, capsys):
    (tmp_path / "w.pth").write_bytes(b"x")
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(text)
    assert cli.main(["run", "--all", "--catalog", str(catalog), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_weights_that_do_not_fit_fail_the_job_naming_keys_and_shapes(tmp_path, tiny_state, caplog):
    _data(tmp_path)
    bad = dict(tiny_state)
    bad["head.weight"] = torch.zeros(10, 192)
    bad["head.bias"] = torch.zeros(10)
    save_file(bad, str(tmp_path / "w.safetensors"))
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(f"checkpoints:\n  - name: {ARCH}.bad\n    architecture: {ARCH}\n    weights: w.safetensors\n")
    assert _run(tmp_path, f"{ARCH}.bad", "--catalog", str(catalog)) == 1
    rec = read_record(eval_path(tmp_path / "results", "imagenet", f"{ARCH}.bad", "fp32"))
    assert rec.status == "failed" and "head.weight" in rec.reason and "num_classes=10" in rec.reason


def test_a_config_naming_an_architecture_vitbench_lacks(tmp_path, capsys):
    folder = tmp_path / "convnext"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "convnext_tiny", "num_classes": 1000}))
    assert cli.main(["run", f"local-dir:{folder}", "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "convnext/config.json: architecture 'convnext_tiny' is not an architecture vitbench has" in err
    assert "Traceback" not in err


def test_an_hf_hub_repo_offline_and_not_cached_says_how_to_get_it(tmp_path, capsys):
    assert cli.main(["run", "hf-hub:someone/absent", "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "hf-hub:someone/absent: config.json not found" in err and "offline" in err and "hf download" in err
