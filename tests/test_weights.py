"""vitbench.weights: finding weights (file, weights dir, HF cache, Hub) and loading them strictly.

Never touches the network: HF_HUB_OFFLINE=1 and the HF cache points into tmp_path; the two Hub tests
replace `hf_hub_download` with a fake.
"""
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

import vitbench
from vitbench import hub
from vitbench.weights import (
    ResolvedWeights,
    WeightsLoadError,
    WeightsNotFoundError,
    load_pretrained,
    load_weights,
    read_state_dict,
    resolve_weights,
)

VIT = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
HYBRID = "google/vit-hybrid-base-bit-384"          # registered, weights_format 'transformers'
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def hf_env(tmp_path, monkeypatch):
    """An empty HF cache in tmp_path, offline, and no memory of an unreachable Hub."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HUB", hub.HubAccess(probe=lambda: ""))   # never a real connection
    return tmp_path / "hf" / "hub"


def vit(num_classes=None, seed=0):
    torch.manual_seed(seed)
    return vitbench.create_model(VIT, num_classes=num_classes).eval()


@pytest.fixture(scope="module")
def vit_sd():
    """A vit_tiny state dict different from any fresh random init (seed 1 vs the tests' seed 0)."""
    return {k: v.clone() for k, v in vit(seed=1).state_dict().items()}


def small_sd():
    g = torch.Generator().manual_seed(0)
    return {"a.weight": torch.randn(4, 3, generator=g), "a.bias": torch.zeros(4),
            "n.steps": torch.tensor([3], dtype=torch.int64)}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def make_hf_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """The real hub cache layout: blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for fname, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / fname).symlink_to(os.path.relpath(blob, snap))
    return snap


def st_bytes(sd, tmp_path) -> bytes:
    p = tmp_path / "tmp.safetensors"
    save_file(sd, str(p))
    return p.read_bytes()


# ---------------------------------------------------------------------------- reading files

@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".bin"])
def test_read_state_dict_formats(tmp_path, suffix):
    sd, p = small_sd(), tmp_path / f"w{suffix}"
    save_file(sd, str(p)) if suffix == ".safetensors" else torch.save(sd, p)
    assert_same(read_state_dict(p), sd)


@pytest.mark.parametrize("wrap", [
    lambda sd: {"model": sd},
    lambda sd: {"state_dict": sd, "epoch": 3, "arch": "x"},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
])
def test_read_state_dict_unwraps_containers(tmp_path, wrap):
    torch.save(wrap(small_sd()), tmp_path / "w.pth")
    assert_same(read_state_dict(tmp_path / "w.pth"), small_sd())


def _training_checkpoint(sd: dict, **extra) -> dict:
    """What timm's train.py saves: epoch, arch, the DDP-wrapped weights, the EMA weights, the optimizer
    state and the run's argparse.Namespace."""
    import argparse

    import numpy as np

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    return {"epoch": 299, "arch": "vit_small_patch16_224", "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "optimizer": opt.state_dict(), "version": 2, "metric": np.float64(81.4),
            "args": argparse.Namespace(model="vit_small_patch16_224", lr=1e-3, epochs=300), **extra}


def test_a_training_checkpoint_loads_its_model_or_its_ema_weights(tmp_path):
    from vitbench.weights import read_checkpoint

    ema = {k: v + 1 for k, v in small_sd().items()}
    for key in ("state_dict_ema", "model_ema", "model_ema_state_dict"):
        torch.save(_training_checkpoint(small_sd(), **{key: ema}), tmp_path / "ckpt.pth")
        sd, entry = read_checkpoint(tmp_path / "ckpt.pth")
        assert entry == "state_dict" and set(sd) == set(small_sd())          # module. taken off
        assert_same(sd, small_sd())
        sd, entry = read_checkpoint(tmp_path / "ckpt.pth", ema=True)
        assert entry == key
        assert_same(sd, ema)
    torch.save(_training_checkpoint(small_sd()), tmp_path / "no-ema.pth")
    with pytest.raises(WeightsLoadError, match=r"no-ema\.pth: `ema: true`, but the checkpoint has no EMA"):
        read_checkpoint(tmp_path / "no-ema.pth", ema=True)
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in small_sd().items()}}, tmp_path / "compiled.pth")
    assert_same(read_state_dict(tmp_path / "compiled.pth"), small_sd())    # torch.compile's prefix


def test_a_training_checkpoint_loads_into_a_model_and_says_which_entry(tmp_path, vit_sd):
    model = vitbench.create_model(VIT)
    torch.save(_training_checkpoint(vit_sd, state_dict_ema=vit_sd), tmp_path / "checkpoint-300.pth")
    load_weights(model, tmp_path / "checkpoint-300.pth", ema=True)
    assert model.weights_entry == "state_dict_ema"
    assert_same(model.state_dict(), vit_sd)


def test_ambiguous_container_refused(tmp_path):
    torch.save({"model": small_sd(), "state_dict": small_sd()}, tmp_path / "w.pth")
    with pytest.raises(WeightsLoadError, match=r"w\.pth.*ambiguous"):
        read_state_dict(tmp_path / "w.pth")


class NeedsCode:
    def __init__(self):
        self.x = 1


def test_pickle_needing_code_refused(tmp_path):
    torch.save(_training_checkpoint(small_sd(), hook=NeedsCode()), tmp_path / "evil.pth")
    with pytest.raises(WeightsLoadError) as e:
        read_state_dict(tmp_path / "evil.pth")
    msg = str(e.value)
    assert "evil.pth" in msg and "needs code" in msg and "NeedsCode" in msg and "safetensors" in msg


def test_truncated_safetensors(tmp_path):
    full = st_bytes(small_sd(), tmp_path)
    (tmp_path / "cut.safetensors").write_bytes(full[: len(full) - 20])
    with pytest.raises(WeightsLoadError, match=r"cut\.safetensors.*truncated"):
        read_state_dict(tmp_path / "cut.safetensors")


@pytest.mark.parametrize("content,found", [
    (json.dumps({"architectures": ["ViT"], "hidden_size": 768}), "JSON"),
    ("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML"),
    ("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "Git LFS pointer"),
    ("", "empty"),
])
def test_non_weight_file_named_safetensors(tmp_path, content, found):
    (tmp_path / "model.safetensors").write_text(content)
    with pytest.raises(WeightsLoadError) as e:
        read_state_dict(tmp_path / "model.safetensors")
    assert "model.safetensors" in str(e.value) and found in str(e.value)


def test_corrupt_pth(tmp_path):
    data = (tmp_path / "w.pth")
    torch.save(small_sd(), data)
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(WeightsLoadError, match=r"w\.pth: not a readable torch checkpoint"):
        read_state_dict(data)


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsLoadError, match="config.json"):
        read_state_dict(tmp_path)


# ---------------------------------------------------------------------------- resolving

@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".bin"])
def test_weights_dir_files_load(tmp_path, vit_sd, suffix):
    p = tmp_path / f"{VIT}{suffix}"
    save_file(vit_sd, str(p)) if suffix == ".safetensors" else torch.save(vit_sd, p)
    r = resolve_weights(VIT, weights_dir=tmp_path)
    assert r == ResolvedWeights(p, "weights-dir")
    model = vit()
    assert load_weights(model, r.path) == p
    assert_same(model.state_dict(), vit_sd)


def test_weights_dir_prefers_safetensors(tmp_path):
    for s in (".bin", ".pth", ".safetensors"):
        (tmp_path / f"{VIT}{s}").write_bytes(b"x")
    assert resolve_weights(VIT, weights_dir=tmp_path).path.suffix == ".safetensors"


def test_weights_dir_transformers_folder(tmp_path, vit_sd):
    folder = tmp_path / VIT
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    torch.save(vit_sd, folder / "pytorch_model.bin")
    r = resolve_weights(VIT, weights_dir=tmp_path)
    assert r == ResolvedWeights(folder, "weights-dir")
    model = vit()
    assert load_weights(model, folder) == folder / "pytorch_model.bin"
    assert_same(model.state_dict(), vit_sd)


def test_hub_id_names_in_weights_dir(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "google--vit-hybrid-base-bit-384.safetensors").write_bytes(b"x")
    found = resolve_weights(HYBRID, weights_dir=flat)
    assert found == ResolvedWeights(flat / "google--vit-hybrid-base-bit-384.safetensors", "weights-dir")
    nested = tmp_path / "nested" / "google" / "vit-hybrid-base-bit-384"
    nested.mkdir(parents=True)
    (nested / "config.json").write_text("{}")
    (nested / "model.safetensors").write_bytes(b"x")
    assert resolve_weights(HYBRID, weights_dir=tmp_path / "nested") == ResolvedWeights(nested, "weights-dir")


def test_explicit_file_wins(tmp_path):
    (tmp_path / f"{VIT}.safetensors").write_bytes(b"x")
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"y")
    assert resolve_weights(VIT, weights=mine, weights_dir=tmp_path) == ResolvedWeights(mine, "file")
    with pytest.raises(WeightsNotFoundError, match="nope.safetensors does not exist"):
        resolve_weights(VIT, weights=tmp_path / "nope.safetensors", weights_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotFoundError, match="empty: not a transformers folder, it lacks config.json, model"):
        resolve_weights(VIT, weights=tmp_path / "empty")


def test_hf_cache_offline(tmp_path, hf_env, vit_sd):
    data = st_bytes(vit_sd, tmp_path)
    snap = make_hf_cache(hf_env, f"timm/{VIT}", {"model.safetensors": data})
    r = resolve_weights(VIT)
    assert r == ResolvedWeights(snap / "model.safetensors", "hf-cache")
    assert r.sha256() == hashlib.sha256(data).hexdigest()
    model = vit()
    info = load_pretrained(model, VIT)
    assert (info.source, info.path, info.sha256) == ("hf-cache", str(r.path), r.sha256())
    assert model.weights_info is info
    assert_same(model.state_dict(), vit_sd)


def test_hf_cache_pytorch_model_bin_and_other_snapshot(tmp_path, hf_env):
    torch.save(small_sd(), tmp_path / "w.bin")
    snap = make_hf_cache(hf_env, f"timm/{VIT}", {"pytorch_model.bin": (tmp_path / "w.bin").read_bytes()})
    (snap.parent.parent / "refs" / "main").unlink()     # fetched by commit: no refs/main
    assert resolve_weights(VIT) == ResolvedWeights(snap / "pytorch_model.bin", "hf-cache")


def test_hf_cache_transformers_folder(tmp_path, hf_env, golden):
    cfg = golden / "hf" / "vit-hybrid-base-bit-384"
    snap = make_hf_cache(hf_env, HYBRID, {
        "config.json": (cfg / "config.json").read_bytes(),
        "preprocessor_config.json": (cfg / "preprocessor_config.json").read_bytes(),
        "model.safetensors": st_bytes(small_sd(), tmp_path)})
    r = resolve_weights(HYBRID)
    assert r == ResolvedWeights(snap, "hf-cache")
    assert r.file == snap / "model.safetensors"
    assert_same(read_state_dict(r.path), small_sd())


def test_nothing_found_lists_places(tmp_path, hf_env):
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_weights(VIT, weights_dir=tmp_path / "wd")
    msg = str(e.value)
    for part in (f"{VIT}{{.safetensors,.pth,.bin}}", f"folder {VIT}/", str(tmp_path / "wd"),
                 str(hf_env), f"timm/{VIT}", "HF_HUB_OFFLINE=1", "--weights-dir",
                 f"huggingface-cli download timm/{VIT}", "HF_HOME"):
        assert part in msg, part


def test_unregistered_name_not_found(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="not a registered checkpoint"):
        resolve_weights("vit_tiny_patch16_224", weights_dir=tmp_path)


def test_hub_unreachable_is_a_clear_error(monkeypatch, hf_env):
    import huggingface_hub

    calls = []

    def no_network(repo_id, filename, **kw):
        calls.append(filename)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(WeightsNotFoundError, match=r"unreachable \(OSError: .*name resolution"):
        resolve_weights(VIT)
    with pytest.raises(WeightsNotFoundError, match="unreachable"):
        resolve_weights(HYBRID)
    assert calls == ["model.safetensors"]     # the second lookup did not try again


def test_hub_probe_fails_fast(monkeypatch, hf_env):
    import socket

    import huggingface_hub

    def refused(addr, timeout=None):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example:8443")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(hub, "HUB", hub.HubAccess())                  # the real probe, once
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("hub was asked"))
    with pytest.raises(WeightsNotFoundError, match=r"unreachable \(cannot connect to hub.example:8443"):
        resolve_weights(VIT)


def test_hub_download(tmp_path, monkeypatch, hf_env):
    import huggingface_hub

    data = st_bytes(small_sd(), tmp_path)

    def fake_download(repo_id, filename, cache_dir=None, **kw):
        assert Path(cache_dir) == hf_env
        if filename != "pytorch_model.bin":
            from huggingface_hub.utils import EntryNotFoundError
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(make_hf_cache(Path(cache_dir), repo_id, {filename: data}) / filename)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    r = resolve_weights(VIT)
    assert r.source == "hf-hub" and r.path.name == "pytorch_model.bin"


# ---------------------------------------------------------------------------- strict loading

def load_error(model, sd, tmp_path) -> str:
    p = tmp_path / "bad.safetensors"
    save_file(sd, str(p))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsLoadError) as e:
        load_weights(model, p)
    assert_same(model.state_dict(), before)      # nothing was loaded
    assert str(p) in str(e.value)
    return str(e.value)


def test_missing_key(tmp_path, vit_sd):
    sd = {k: v for k, v in vit_sd.items() if k != "blocks.3.mlp.fc2.bias"}
    msg = load_error(vit(), sd, tmp_path)
    assert "missing from the checkpoint (1)" in msg and "blocks.3.mlp.fc2.bias" in msg


def test_unexpected_key(tmp_path, vit_sd):
    msg = load_error(vit(), {**vit_sd, "dist_token": torch.zeros(1, 1, 192)}, tmp_path)
    assert "unexpected in the checkpoint (1)" in msg and "dist_token" in msg


def test_shape_mismatch(tmp_path, vit_sd):
    sd = {**vit_sd, "blocks.0.attn.qkv.weight": torch.zeros(576, 96)}
    msg = load_error(vit(), sd, tmp_path)
    assert "shape mismatches (1)" in msg
    assert "blocks.0.attn.qkv.weight: checkpoint (576, 96), model (576, 192)" in msg


def test_many_missing_keys_are_truncated(tmp_path, vit_sd):
    sd = {k: v for k, v in vit_sd.items() if not k.startswith("blocks.")}
    msg = load_error(vit(), sd, tmp_path)
    assert "... and" in msg and msg.count("    blocks.") == 10


def test_wrong_num_classes(tmp_path, vit_sd):
    msg = load_error(vit(num_classes=10), vit_sd, tmp_path)
    assert "the checkpoint has 1000 classes, the model 10: pass num_classes=1000" in msg
    assert "head.weight" in msg


def test_small_model_without_filter(tmp_path):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)

    p = tmp_path / "t.safetensors"
    save_file({"a.weight": torch.ones(4, 3), "a.bias": torch.ones(4)}, str(p))
    model = Tiny()
    assert load_weights(model, p) == p
    assert torch.equal(model.a.weight, torch.ones(4, 3))
    save_file({"a.weight": torch.ones(4, 3)}, str(p))
    with pytest.raises(WeightsLoadError, match="a.bias"):
        load_weights(model, p)


def test_sha256_cached_and_refreshed(tmp_path):
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"abc")
    r = ResolvedWeights(p, "file")
    assert r.sha256() == hashlib.sha256(b"abc").hexdigest() == r.sha256()
    p.write_bytes(b"abcd")
    assert r.sha256() == hashlib.sha256(b"abcd").hexdigest()


def test_public_export():
    assert vitbench.load_weights is load_weights


# ---------------------------------------------------------------------------- end to end, real model

def test_create_model_pretrained_from_weights_dir(tmp_path, vit_sd):
    save_file(vit_sd, str(tmp_path / f"{VIT}.safetensors"))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        random_out = vit()(x)
        torch.manual_seed(0)
        model = vitbench.create_model(VIT, pretrained=True, weights_dir=tmp_path).eval()
        out = model(x)
        reference = vit(seed=1)(x)
    assert not torch.allclose(out, random_out)
    torch.testing.assert_close(out, reference)
    assert model.weights_info.source == "weights-dir"
    data = (tmp_path / f"{VIT}.safetensors").read_bytes()
    assert model.weights_info.sha256 == hashlib.sha256(data).hexdigest()
