"""Golden parity of every registered architecture against timm 1.0.31 (../shared/golden/README.md).

One test over the whole architecture registry, whatever the family:
- the full-size model (built on the meta device: shapes only) has exactly timm's state-dict keys and
  shapes, and timm's parameter count;
- with the golden weights on the golden input, logits and pre_logits match timm's within 1e-4 (fp32,
  CPU, eval). Architectures over 100 M parameters are checked at the depth the manifest names
  (`golden_kwargs`, e.g. depth=2), whose state dict must equal the manifest's `golden_state_dict`.
An architecture without a golden pair fails: nothing is registered unchecked. Models are built with
their default head, as timm built the goldens (e.g. 11221 classes for the MIIL ViT, none for SigLIP).
"""
from __future__ import annotations

import json

import pytest
import torch

from support import GOLDEN, golden_input, golden_state_dict, timm_manifest, timm_outputs
from vitbench.models import get_builder, list_architectures

TOL = 1e-4
GOLDEN_INDEX = json.loads((GOLDEN / "timm" / "index.json").read_text())


def _shapes(sd) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in sd.items()}


def _manifest_shapes(entries) -> dict[str, list[int]]:
    return {k: list(shape) for k, shape, _ in entries}


def _golden_cases():
    """Every architecture; the full-size goldens (over 100 M parameters at full depth: ViT-L) are
    marked slow, so `pytest -m "not slow"` leaves them out."""
    for arch in list_architectures():
        manifest = timm_manifest(arch)
        full_size = not manifest.get("golden_kwargs") and manifest["param_count"] > 100e6
        yield pytest.param(arch, marks=pytest.mark.slow) if full_size else arch


def test_every_registered_architecture_has_a_golden():
    missing = sorted(set(list_architectures()) - set(GOLDEN_INDEX))
    assert not missing, f"registered architectures without a golden pair: {missing}"


@pytest.mark.parametrize("arch", list_architectures())
def test_full_size_state_dict_matches_timm(arch):
    manifest = timm_manifest(arch)
    with torch.device("meta"):
        model = get_builder(arch)()
    ours, theirs = _shapes(model.state_dict()), _manifest_shapes(manifest["state_dict"])
    assert ours.keys() == theirs.keys(), \
        f"missing {sorted(theirs.keys() - ours.keys())[:8]}, extra {sorted(ours.keys() - theirs.keys())[:8]}"
    assert ours == theirs
    assert sum(p.numel() for p in model.parameters()) == manifest["param_count"]


@pytest.mark.parametrize("arch", _golden_cases())
@torch.no_grad()
def test_golden_logits(arch):
    manifest = timm_manifest(arch)
    kwargs = manifest.get("golden_kwargs") or {}
    model = get_builder(arch)(**kwargs).eval()
    sd = model.state_dict()
    if kwargs:
        assert _shapes(sd) == _manifest_shapes(manifest["golden_state_dict"])
    model.load_state_dict(model.checkpoint_filter_fn(golden_state_dict(sd), model), strict=True)
    expected = timm_outputs(arch)
    feats = model.forward_features(golden_input(manifest["input_size"]))
    pre_logits = model.forward_head(feats, pre_logits=True)
    logits = model.forward_head(feats)
    assert (pre_logits - expected["pre_logits"]).abs().max().item() <= TOL
    assert (logits - expected["logits"]).abs().max().item() <= TOL
