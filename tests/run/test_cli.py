"""`vitbench run` through the command line: a real registered checkpoint end to end (generated
weights and images), the bare-machine main job, and the flags that must fail cleanly."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import make_wnid_folders, val_name
from vitbench import cli
from vitbench.catalog import imagenet_synsets
from vitbench.records import bench_path, eval_path, read_record, stats_path

TINY = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
SMALL = "vit_small_patch16_224.augreg_in21k_ft_in1k"


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """No network, an empty HF cache, no VITBENCH_DATA: a bare machine."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("VITBENCH_DATA", raising=False)


@pytest.fixture
def cheap_bench(monkeypatch):
    """One timed step at batch 1 on the CPU: the test checks the record, not the number."""
    import vitbench.bench as bench

    monkeypatch.setitem(bench.DEFAULTS, "cpu", bench.BenchSettings(batch_size=1, warmup_steps=0,
                                                                     timed_steps=1, repeats=1))


def _noise_images(root: Path, n: int) -> None:
    """n ImageNet-val-named JPEGs of random content in wnid folders of classes 0..n-1."""
    rng = np.random.default_rng(0)
    make_wnid_folders(root, [])
    syn = imagenet_synsets()
    for i in range(n):
        a = rng.integers(0, 256, size=(64 + 8 * i, 80, 3), dtype=np.uint8)   # varied aspect ratios
        Image.fromarray(a).save(root / syn[i] / val_name(i + 1), quality=90)


def test_real_tiny_checkpoint_end_to_end(no_hub, cheap_bench, tmp_path, capsys):
    """vit_tiny with generated weights in --weights-dir over 10 generated images with --limit 8:
    every stage for real (weights, model, transform, loader, evaluate, records, CSVs, cards)."""
    import torch
    from safetensors.torch import save_file

    from vitbench.models import create_model

    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in create_model(TINY).state_dict().items()}
    save_file(sd, str(wdir / f"{TINY}.safetensors"))
    _noise_images(tmp_path / "data" / "imagenet", 10)
    argv = ["run", TINY, "--datasets", "imagenet,real", "--data-root", str(tmp_path / "data"),
            "--weights-dir", str(wdir), "--limit", "8", "--batch-size", "4", "--workers", "1",
            "--results-dir", str(tmp_path / "results"), "--reports-dir", str(tmp_path / "reports")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "done: 2" in out and "failed: 0" in out
    r = read_record(eval_path(tmp_path / "results", "imagenet", TINY, "fp32"))
    assert r.status == "ok" and r.architecture == "vit_tiny_patch16_224" and r.img_size == 224
    assert (r.n_images, r.limit, r.complete, r.n_expected) == (8, 8, False, 50_000)
    assert r.weights.source == "weights-dir" and len(r.weights.sha256) == 64
    assert r.data_config["crop_pct"] == 0.9 and r.data_config["interpolation"] == "bicubic"
    assert r.provenance.torch_version and r.provenance.created_at and r.images_per_sec > 0
    assert 0.0 <= r.top1 <= r.top5 <= 100.0
    # the record's numbers follow from the predictions file
    import pandas as pd

    df = pd.read_parquet(eval_path(tmp_path / "results", "imagenet", TINY, "fp32").with_suffix(".parquet"))
    top1 = 100 * np.mean([row[0] == t for row, t in zip(df["top5_idx"], df["target"], strict=True)])
    assert r.top1 == pytest.approx(top1)
    real = read_record(eval_path(tmp_path / "results", "real", TINY, "fp32"))
    assert real.status == "ok" and real.n_scored <= 8
    # stats, bench, CSVs, cards
    assert read_record(stats_path(tmp_path / "results", TINY)).param_count == sum(v.numel() for v in sd.values())
    assert read_record(bench_path(tmp_path / "results", TINY, "fp32", "cpu")).samples_per_sec > 0
    rows = list(csv.DictReader(open(tmp_path / "results" / "results-imagenet.csv")))
    assert [row["model"] for row in rows] == [TINY]
    assert (tmp_path / "results" / "benchmark-infer-fp32-cpu.csv").is_file()
    assert (tmp_path / "reports" / "cards" / f"{TINY}.md").is_file()
    print(f"\ntiny end to end: {r.n_images} images, {r.images_per_sec} img/s, {r.wall_time_s} s eval",
          file=sys.stderr)


def test_bare_machine_main_job(no_hub, cheap_bench, tmp_path, capsys, monkeypatch):
    """No data, no weights, no network: stats and throughput for every checkpoint, each accuracy job
    recorded as not run with the reason, benchmark CSV and cards written, exit status 0."""
    res, rep = tmp_path / "results", tmp_path / "reports"
    argv = ["run", TINY, SMALL, "--datasets", "imagenet,real,a", "--results-dir", str(res),
            "--reports-dir", str(rep), "--workers", "0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "not run: 8" in out and "not a failure" in out and "failed: 0" in out
    assert "No weights found" in out and "not found" in out and "--data-root" in out and "--weights-dir" in out
    for name in (TINY, SMALL):
        assert read_record(stats_path(res, name)).gmacs > 0
        assert read_record(bench_path(res, name, "fp32", "cpu")).samples_per_sec > 0
        for ds in ("imagenet", "real", "a-clean", "a"):
            assert not eval_path(res, ds, name, "fp32").exists()     # not run: no record
    assert (res / "benchmark-infer-fp32-cpu.csv").is_file()
    assert (rep / "cards" / f"{TINY}.md").is_file() and (rep / "comparison.md").is_file()
    # a rerun retries the not-run jobs (they stay not run) and changes no file: no record, CSV, card
    # or plot is rewritten, so a results folder under git stays clean
    before = _files(tmp_path)
    assert cli.main(argv) == 0
    assert "not run: 8" in capsys.readouterr().out
    assert _files(tmp_path) == before
    # nor does committing the results (a new commit, so another git sha in the provenance)
    import importlib

    provenance = importlib.import_module("vitbench.records.provenance")   # the module, not its function
    monkeypatch.setattr(provenance, "git_sha", lambda: "0" * 40)
    assert cli.main(argv) == 0
    assert "not run: 8" in capsys.readouterr().out
    assert _files(tmp_path) == before


def _files(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root: (mtime in ns, bytes)."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file() and "hf" not in p.relative_to(root).parts}


def test_run_as_a_process_on_a_bare_machine(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TQDM_DISABLE": "1"}
    env.pop("VITBENCH_DATA", None)
    p = subprocess.run([sys.executable, "-m", "vitbench", "run", TINY, "--datasets", "v2", "--no-bench",
                        "--no-report", "--results-dir", str(tmp_path / "r")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "not run: 1" in p.stdout
    assert not eval_path(tmp_path / "r", "v2", TINY, "fp32").exists()


def test_all_selects_every_registered_checkpoint(monkeypatch):
    import vitbench.run
    from vitbench import list_models

    seen = []
    monkeypatch.setattr(vitbench.run, "run", lambda cfg: seen.append(cfg) or 0)
    assert cli.main(["run", "--all", "--datasets", "imagenet,r", "--data", "imagenet=/x"]) == 0
    cfg = seen[0]
    assert cfg.checkpoints == tuple(list_models()) and cfg.datasets == ("imagenet", "r")
    assert cfg.data_overrides == (("imagenet", "/x"),) and cfg.bench and cfg.report
    assert cfg.batch_size is None and cfg.device == "cpu" and cfg.precision == "fp32"


@pytest.mark.parametrize("argv, message", [
    (["run", TINY, "--datasets", "imagenet,bogus"], "bogus"),
    (["run", TINY, "--data", "imagenet"], "NAME=PATH"),
    (["run", TINY, "--data", "nope=/tmp"], "unknown dataset 'nope'"),
    (["run", TINY, "--data", "imagenet=/definitely/not/here"], "does not exist"),
    (["run", "not_a_model"], "Unknown model"),
    (["run"], "--all"),
])
def test_usage_errors_exit_2_without_traceback(argv, message, tmp_path, capsys):
    assert cli.main(argv + ["--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # the same on a GPU machine
    assert cli.main(["run", TINY, "--device", "cuda", "--results-dir", str(tmp_path / "r")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
