"""The engine: one decode per image and preprocessing key, one ImageNet-val forward for its derived
sets, and results identical to the one-model path (one model, one dataset, `evaluate.evaluate`)."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from support import CKPT, CKPT2, ColourModel, cli_run, subset_data
from vitbench.records import eval_path, read_record

DEIT = ("deit_tiny_patch16_224.fb_in1k", "deit_small_patch16_224.fb_in1k", "deit_base_patch16_224.fb_in1k")
# two real checkpoints sharing the key 224/0.9/center/bicubic, with different mean/std
TINY = ("vit_tiny_patch16_224.augreg_in21k_ft_in1k", "deit_tiny_patch16_224.fb_in1k")
ALL = ("imagenet", "real", "r", "a")


def _count_opens(monkeypatch) -> Counter:
    from vitbench.data import layouts

    opened: Counter = Counter()
    real_call = layouts.FileLoader.__call__

    def counting(self, i):
        opened[self.files[i]] += 1
        return real_call(self, i)

    monkeypatch.setattr(layouts.FileLoader, "__call__", counting)
    return opened


# ---------------------------------------------------------------------------- one decode per image

def test_deit_tsb_over_imagenet_r_a_open_each_file_once(dummy, tmp_path, monkeypatch, capsys):  # noqa: F811
    from safetensors.torch import save_file

    for name in DEIT:
        save_file({k: v.contiguous() for k, v in ColourModel().state_dict().items()},
                  str(dummy["weights_dir"] / f"{name}.safetensors"))
    files = subset_data(tmp_path / "data")
    opened = _count_opens(monkeypatch)
    assert cli_run(tmp_path, "--datasets", ",".join(ALL), names=DEIT) == 0
    # every file of every dataset opened exactly once: 3 models x 6 ImageNet-val jobs and 2 shift sets
    assert sorted(opened) == sorted(f for fs in files.values() for f in fs)
    assert set(opened.values()) == {1}
    assert dummy["built"] == list(DEIT)                        # each model built once
    for name in DEIT:
        for d in ("imagenet", "real", "r-clean", "a-clean", "r", "a"):
            assert read_record(eval_path(tmp_path / "results", d, name, "fp32")).status == "ok"
    assert read_record(eval_path(tmp_path / "results", "r-clean", DEIT[0], "fp32")).n_images == 6
    assert "3 decode pass(es), 18 image decode(s) for 18 job(s)" in capsys.readouterr().out


def test_resume_runs_only_the_rest_of_a_group(dummy, tmp_path, monkeypatch, capsys):  # noqa: F811

    files = subset_data(tmp_path / "data")
    assert cli_run(tmp_path, "--datasets", "imagenet", names=(CKPT,)) == 0
    done = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    stamp = done.stat().st_mtime_ns
    opened = _count_opens(monkeypatch)
    capsys.readouterr()
    assert cli_run(tmp_path, "--datasets", "imagenet,r", names=(CKPT, CKPT2)) == 0
    assert done.stat().st_mtime_ns == stamp                     # its ok record was skipped
    out = capsys.readouterr().out
    assert "done: 5" in out and "skipped (had a record): 1" in out
    assert set(opened.values()) == {1} and len(opened) == len(files["imagenet"]) + len(files["imagenet-r"])


# ---------------------------------------------------------------------------- identical to one model

@pytest.fixture
def tiny_weights(tmp_path, monkeypatch) -> Path:
    """Random-weight safetensors of the two real TINY checkpoints, one block deep (fast); the real
    create_model builds and strictly loads them."""
    from safetensors.torch import save_file

    import vitbench.models

    real_create = vitbench.models.create_model

    def create_model(name, *a, **kw):
        return real_create(name, *a, **{"depth": 1, **kw})

    monkeypatch.setattr(vitbench.models, "create_model", create_model)
    # stats count (and cache) the architecture: keep the one-block models out of that cache
    import vitbench.stats
    from vitbench import records

    monkeypatch.setattr(vitbench.stats, "measure", lambda name: records.StatsRecord(
        checkpoint=name, architecture="tiny", img_size=224, param_count=1, gmacs=0.0, gmacs_no_attn=0.0,
        macts=0.0))
    wdir = tmp_path / "weights"
    wdir.mkdir()
    for seed, name in enumerate(TINY):
        torch.manual_seed(seed)
        model = create_model(name)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(wdir / f"{name}.safetensors"))
    return wdir


def _one_model(name: str, dataset: str, data_root: Path, weights: Path, limit: int):
    """The one-model path: one model, one dataset, its own loader, evaluate.evaluate."""
    import vitbench.models
    from vitbench.data.datasets import open_dataset
    from vitbench.data.transforms import create_crop_transform
    from vitbench.eval import EvalSpec, evaluate
    from vitbench.eval.loader import build_loader

    model = vitbench.models.create_model(name, weights=weights / f"{name}.safetensors").eval()
    ds = open_dataset(dataset, data_root=data_root, limit=limit)
    ds.transform = create_crop_transform(model.data_config)
    spec = EvalSpec.for_dataset(ds, model.data_config)
    return evaluate(model, build_loader(ds, 4), spec)


_VOLATILE = {"provenance", "wall_time_s", "images_per_sec"}


def test_records_identical_to_the_one_model_path(tmp_path, tiny_weights):
    subset_data(tmp_path / "data", noise=True)
    # --limit 5: r-clean's and a-clean's first five are not all among imagenet's first five, so the
    # shared pass decodes the union and routes each image to the datasets that hold it
    flags = ("--limit", "5", "--datasets", ",".join(ALL))
    assert cli_run(tmp_path, *flags, names=TINY) == 0
    # each job alone, in its own run
    for name in TINY:
        for d in ALL:
            sep = tmp_path / f"sep-{name}-{d}"
            shutil.copytree(tmp_path / "results" / "records" / "stats", sep / "results" / "records" / "stats")
            argv = ["--results-dir", str(sep / "results"), "--reports-dir", str(sep / "reports")]
            assert cli_run(tmp_path, *flags[:2], "--datasets", d, *argv, names=(name,)) == 0
    for name in TINY:
        for d in ("imagenet", "real", "r-clean", "r", "a-clean", "a"):
            shared = read_record(eval_path(tmp_path / "results", d, name, "fp32"))
            sep_dir = tmp_path / f"sep-{name}-{d.replace('-clean', '')}" / "results"
            alone = read_record(eval_path(sep_dir, d, name, "fp32"))
            a, b = vars(shared), vars(alone)
            assert {k: v for k, v in a.items() if k not in _VOLATILE} == \
                   {k: v for k, v in b.items() if k not in _VOLATILE}, (name, d)
            assert shared.status == "ok" and shared.provenance.world_size == 1
            # and the per-image predictions equal evaluate.evaluate's, one model on one dataset
            ref = _one_model(name, d, tmp_path / "data", tiny_weights, 5)
            df = pd.read_parquet(eval_path(tmp_path / "results", d, name, "fp32").with_suffix(".parquet"))
            assert df["index"].tolist() == ref.predictions.index.tolist()
            assert np.array_equal(np.stack(df["top5_idx"]), ref.predictions.top5_idx), (name, d)
            assert np.allclose(np.stack(df["top5_prob"]), ref.predictions.top5_prob, rtol=1e-5, atol=1e-7)
            assert shared.top1 == round(ref.top1, 4) and shared.n_scored == ref.n_scored
    # the CSVs the two ways write are the same files
    for d in ("imagenet", "real"):
        csv = {"imagenet": "results-imagenet.csv", "real": "results-imagenet-real.csv"}[d]
        shared_csv = pd.read_csv(tmp_path / "results" / csv)
        alone = pd.concat([pd.read_csv(tmp_path / f"sep-{n}-{d}" / "results" / csv) for n in TINY])
        cols = ["model", "top1", "top5", "n", "top1_ci_low", "top1_ci_high"]
        assert shared_csv.sort_values("model")[cols].reset_index(drop=True).equals(
            alone.sort_values("model")[cols].reset_index(drop=True))


def test_the_union_keeps_each_image_once_and_maps_it_back():
    from vitbench.eval.engine import UnionDataset

    class Fake:
        def __init__(self, rows, name):
            self.rows, self.files = rows, [f"f{r}" for r in rows]
            self.spec = type("S", (), {"name": name})
            self.transform = None

        def __getitem__(self, i):
            return torch.zeros(1), 0, i

    a, b = Fake([0, 1, 2, 3], "imagenet"), Fake([2, 7, 9], "r-clean")
    u = UnionDataset([a, b], transform=None)
    assert u.files == ["f0", "f1", "f2", "f3", "f7", "f9"]
    assert u.positions(b).tolist() == [-1, -1, 0, -1, 1, 2]
    assert u.positions(a).tolist() == [0, 1, 2, 3, -1, -1]
    assert u[4][2] == 4
