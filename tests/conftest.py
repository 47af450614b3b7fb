import os
import tempfile
from pathlib import Path

import pytest

from support import CKPT, CKPT2, FIXTURES, GOLDEN, ColourModel
from vitbench import records

# Tests never touch the network: the HF hub client must answer from the local cache or fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# weight hashes are cached between runs (vitbench.weights.sha_cache_file): never in the user's ~/.cache
os.environ.setdefault("VITBENCH_CACHE", tempfile.mkdtemp(prefix="vitbench-cache-"))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def golden() -> Path:
    return GOLDEN


@pytest.fixture
def dummy(monkeypatch, tmp_path):
    """create_model -> ColourModel (`boost`: classes given +1000); weights written to tmp_path/weights; stats stubbed (cheap)."""
    from safetensors.torch import save_file

    import vitbench.models
    import vitbench.stats

    state = {"boost": ()}
    built = []

    def fake_create_model(name, pretrained=False, weights=None, num_classes=None, weights_dir=None, **kw):
        m = ColourModel(boost=state["boost"])
        built.append(name)
        return m

    def fake_stats_record(name):
        return records.StatsRecord(checkpoint=name, architecture="dummy", img_size=32, param_count=3000,
                                   gmacs=0.0, gmacs_no_attn=0.0, macts=0.0)

    monkeypatch.setattr(vitbench.models, "create_model", fake_create_model)
    monkeypatch.setattr(vitbench.stats, "measure", fake_stats_record)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    for name in (CKPT, CKPT2):
        save_file({k: v.contiguous() for k, v in ColourModel().state_dict().items()},
                  str(wdir / f"{name}.safetensors"))
    state.update(weights_dir=wdir, built=built)
    return state


@pytest.fixture
def user_registry(monkeypatch, tmp_path):
    """The test registers its own user checkpoints (catalog.user) and forgets them after; an empty
    offline HF cache in tmp_path/hf; the report facts cached about earlier ones forgotten."""
    from vitbench.catalog import registry
    from vitbench.report.facts import facts

    monkeypatch.setattr(registry, "_USER", {})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VITBENCH_CATALOG", raising=False)
    facts.cache_clear()
    yield
    facts.cache_clear()


@pytest.fixture
def hf_caches_in_tmp(tmp_path, monkeypatch):
    """What `datasets` caches, the HF hub cache a dataset is looked for in after the data root, and
    vitbench's own cache: all empty, under tmp_path, never the user's ~/.cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    monkeypatch.setenv("VITBENCH_CACHE", str(tmp_path / "vitbench-cache"))
