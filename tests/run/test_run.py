"""`vitbench run` with the colour dummy model (tests/test_evaluate.py) on generated datasets.

The dummy is injected by monkeypatching `vitbench.models.create_model`; its weights are a real
safetensors file in a --weights-dir, so weight resolution, strict loading and the sha256 in the record
are the real thing. Images are solid colours (`class_colour`), so every accuracy is known in advance.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from support import (
    CKPT,
    CKPT2,
    DUMMY_CONFIG,
    TEN,
    ColourModel,
    base_cfg,
    cli_run,
    make_flat,
    make_numbered,
    make_wnid_folders,
    rec,
    val_name,
    write_image,
)
from vitbench.catalog import imagenet_synsets, real_labels, subset_indices, subset_synsets
from vitbench.records import eval_path, read_record
from vitbench.run import Job, Run, RunConfig, run

# ---------------------------------------------------------------------------- generated data


# ---------------------------------------------------------------------------- the dummy checkpoint


# 10 ImageNet-val images of classes 0..9; image 10 is coloured as class 42 (a wrong prediction)


# ---------------------------------------------------------------------------- plan

def test_plan_expands_r_and_a_and_names_record_paths(tmp_path):
    cfg = base_cfg(tmp_path, checkpoints=(CKPT, CKPT2), datasets=("imagenet", "r", "a", "real"))
    jobs = Run(cfg).plan()
    assert [j.dataset for j in jobs if j.checkpoint == CKPT] == ["imagenet", "r-clean", "r", "a-clean", "a", "real"]
    assert len(jobs) == 12 and all(isinstance(j, Job) for j in jobs)
    assert jobs[0].record == tmp_path / "results" / "records" / "imagenet" / f"{CKPT}__fp32.json"


# ---------------------------------------------------------------------------- end to end, dummy model

def test_imagenet_folder_end_to_end(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    r = rec(tmp_path, "imagenet")
    assert r.status == "ok" and r.top1 == 90.0 and r.top5 >= 90.0
    assert (r.n_images, r.n_expected, r.n_scored, r.complete, r.limit) == (10, 50_000, 10, False, None)
    assert r.top1_ci[0] < 90.0 < r.top1_ci[1]
    # provenance
    p = r.provenance
    assert p.torch_version == torch.__version__ and p.device == "cpu" and p.device_name and p.vitbench_version
    assert r.weights.source == "weights-dir" and r.weights.path.endswith(f"{CKPT}.safetensors")
    from vitbench.weights import file_sha256

    assert r.weights.sha256 == file_sha256(r.weights.path)
    assert r.data_config["input_size"] == [3, 32, 32] and r.batch_size == 4
    assert r.dataset_root == str(tmp_path / "data" / "imagenet")
    assert r.wall_time_s > 0 and r.images_per_sec > 0
    # predictions beside the record
    import pandas as pd

    df = pd.read_parquet(eval_path(tmp_path / "results", "imagenet", CKPT, "fp32").with_suffix(".parquet"))
    assert r.predictions_file == f"{CKPT}__fp32.parquet" and len(df) == 10
    assert df["file"].iloc[0].endswith(val_name(1)) and df["target"].tolist() == list(range(10))
    # CSV and stats
    rows = list(csv.DictReader(open(tmp_path / "results" / "results-imagenet.csv")))
    assert rows[0]["model"] == CKPT and float(rows[0]["top1"]) == 90.0
    assert (tmp_path / "results" / "records" / "stats" / f"{CKPT}.json").is_file()
    out = capsys.readouterr().out
    assert "done: 1" in out and "failed: 0" in out


def test_flat_labels_root_and_real(dummy, tmp_path):
    # ReaL sets of val images 1..16 (packaged); colour each image as the first class of its set, so
    # ReaL top-1 is 100% over the scored images; empty sets are not scored
    sets = real_labels()[:16]
    items = [(n, (sets[n - 1] or (7,))[0], (sets[n - 1] or (7,))[0]) for n in range(1, 17)]
    make_flat(tmp_path / "data" / "imagenet", items)
    assert cli_run(tmp_path, "--datasets", "imagenet,real") == 0
    real = rec(tmp_path, "real")
    n_scored = sum(1 for s in sets if s)
    assert real.status == "ok" and real.n_images == 16 and real.n_scored == n_scored
    assert real.top1 == 100.0 and real.n_expected == 50_000
    assert rec(tmp_path, "imagenet").top1 == 100.0
    import pandas as pd

    df = pd.read_parquet(eval_path(tmp_path / "results", "real", CKPT, "fp32").with_suffix(".parquet"))
    assert [tuple(x) for x in df["real_labels"]] == [tuple(s) for s in sets]


def test_real_counts_a_wrong_label_set_as_wrong(dummy, tmp_path):
    sets = real_labels()[:16]
    first = next(i for i, s in enumerate(sets) if s)
    # image `first` coloured as a class outside its ReaL set
    wrong = next(c for c in range(1000) if c not in sets[first])
    items = [(n, (sets[n - 1] or (7,))[0], wrong if n - 1 == first else (sets[n - 1] or (7,))[0])
             for n in range(1, 17)]
    make_flat(tmp_path / "data" / "imagenet", items)
    assert cli_run(tmp_path, "--datasets", "real") == 0
    n_scored = sum(1 for s in sets if s)
    assert rec(tmp_path, "real").top1 == pytest.approx(round(100 * (n_scored - 1) / n_scored, 4))


def test_r_masking_and_clean_baseline(dummy, tmp_path):
    sub = subset_indices("r")
    outside = next(c for c in range(1000) if c not in sub)
    dummy["boost"] = (outside,)         # wins every image unless logits are restricted to R's classes
    chosen = list(sub[:6])
    # imagenet-r: 200 wnid folders; images of 6 subset classes
    root = tmp_path / "data" / "imagenet-r"
    for w in subset_synsets("r"):
        (root / w).mkdir(parents=True, exist_ok=True)
    syn = imagenet_synsets()
    for k, c in enumerate(chosen):
        write_image(root / syn[c] / f"art_{k}.jpg", c)
    # imagenet-val: those classes plus two classes outside R (dropped by r-clean)
    items = [(k + 1, c, c) for k, c in enumerate(chosen)] + [(20, outside, outside), (21, 0, 0)]
    make_wnid_folders(tmp_path / "data" / "imagenet", items)
    assert cli_run(tmp_path, "--datasets", "r") == 0
    r, clean = rec(tmp_path, "r"), rec(tmp_path, "r-clean")
    assert r.status == clean.status == "ok"
    assert (r.n_images, r.top1, r.n_expected) == (6, 100.0, 30_000)
    assert (clean.n_images, clean.top1, clean.n_expected) == (len([c for c in chosen]), 100.0, 10_000)
    assert (tmp_path / "results" / "results-imagenet-r.csv").is_file()


def test_v2_numeric_folder_order(dummy, tmp_path):
    from vitbench.data.datasets import open_dataset

    make_numbered(tmp_path / "data" / "imagenetv2-matched-frequency", [(2, 2), (10, 10), (100, 100), (100, 5)])
    ds = open_dataset("v2", data_root=tmp_path / "data")
    assert ds.targets == [2, 10, 100, 100]           # numeric folder order, not "10" < "100" < "2"
    assert cli_run(tmp_path, "--datasets", "v2") == 0
    r = rec(tmp_path, "v2")
    assert r.n_images == 4 and r.top1 == 75.0 and r.n_expected == 10_000


def test_limit_marks_incomplete(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    r = rec(tmp_path, "imagenet")
    assert (r.limit, r.n_images, r.complete, r.top1) == (3, 3, False, 100.0)
    # the same limit is done; another limit, or a full run, is not
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    assert "skipped (had a record): 1" in capsys.readouterr().out
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "5") == 0
    assert rec(tmp_path, "imagenet").n_images == 5
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    r = rec(tmp_path, "imagenet")
    assert (r.n_images, r.limit) == (10, None)
    # and a full record serves a later smoke run
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    assert rec(tmp_path, "imagenet").limit is None


def test_bf16_precision_on_cpu(dummy, tmp_path):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--precision", "bf16") == 0
    r = rec(tmp_path, "imagenet", precision="bf16")
    assert r.precision == "bf16" and r.top1 == 90.0


# ---------------------------------------------------------------------------- resume, force, interrupts

def test_interrupt_then_resume(dummy, tmp_path, monkeypatch, capsys):
    from vitbench.eval.engine import Pass

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    make_numbered(tmp_path / "data" / "imagenetv2-matched-frequency", [(1, 1), (2, 2)])
    real_pass, calls = Pass.run, []

    def interrupting(*a, **kw):          # the second decode pass (v2) is interrupted
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_pass(*a, **kw)

    monkeypatch.setattr(Pass, "run", interrupting)
    assert cli_run(tmp_path, "--datasets", "imagenet,v2") == 130
    first = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    second = eval_path(tmp_path / "results", "v2", CKPT, "fp32")
    assert first.is_file() and not second.exists()
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    stamp = first.stat().st_mtime_ns
    monkeypatch.setattr(Pass, "run", real_pass)
    capsys.readouterr()
    assert cli_run(tmp_path, "--datasets", "imagenet,v2") == 0
    assert first.stat().st_mtime_ns == stamp                       # skipped, not rerun
    assert rec(tmp_path, "v2").status == "ok"
    out = capsys.readouterr().out
    assert "done: 1" in out and "skipped (had a record): 1" in out


def test_force_reruns(dummy, tmp_path):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    path = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    before = json.loads(path.read_text())
    path.write_text(json.dumps({**before, "top1": 1.0}))          # a number we can see replaced
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert rec(tmp_path, "imagenet").top1 == 1.0                  # skipped
    assert cli_run(tmp_path, "--datasets", "imagenet", "--force") == 0
    assert rec(tmp_path, "imagenet").top1 == 90.0


def test_a_changed_weights_file_reruns_its_jobs(dummy, tmp_path, caplog):
    """Resume reuses a record only for the same weights (sha256): a re-trained file under the same
    name reruns; the same file again does not."""
    import logging

    from safetensors.torch import save_file

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    first = rec(tmp_path, "imagenet")
    assert first.weights.sha256 and dummy["built"] == [CKPT]
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert dummy["built"] == [CKPT]                                    # same weights: skipped
    state = {k: v.contiguous() for k, v in ColourModel().state_dict().items()}
    state["bias"] = state["bias"].clone()
    state["bias"][999] = -2e4                                          # another file, same predictions
    save_file(state, str(dummy["weights_dir"] / f"{CKPT}.safetensors"))
    with caplog.at_level(logging.INFO, logger="vitbench.run.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert dummy["built"] == [CKPT, CKPT]
    assert "measured with other weights" in caplog.text
    again = rec(tmp_path, "imagenet")
    assert again.weights.sha256 != first.weights.sha256 and again.top1 == first.top1


def test_a_model_from_python_joins_the_records(tmp_path):
    """vitbench.evaluate(model, ...) writes the records a run writes, with provenance 'python'; it is
    reused only when the caller passes a weights hash."""
    import vitbench

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    kw = dict(datasets=["imagenet"], data_config=DUMMY_CONFIG, name="my_colour_model", data_root=tmp_path / "data",
              results_dir=tmp_path / "results", batch_size=4)
    out = vitbench.evaluate(ColourModel(), **kw)
    r = out["imagenet"]
    assert r.status == "ok" and r.top1 == 90.0 and r.checkpoint == "my_colour_model"
    assert (r.weights.source, r.weights.path, r.weights.sha256) == ("python", None, None)
    assert read_record(tmp_path / "results" / "records" / "stats" / "my_colour_model.json").param_count == 3000
    stamp = eval_path(tmp_path / "results", "imagenet", "my_colour_model", "fp32").stat().st_mtime_ns
    vitbench.evaluate(ColourModel(), **kw)                              # no hash: evaluated again
    path = eval_path(tmp_path / "results", "imagenet", "my_colour_model", "fp32")
    assert path.stat().st_mtime_ns != stamp
    vitbench.evaluate(ColourModel(), weights_sha256="ab" * 32, **kw)
    stamp = path.stat().st_mtime_ns
    vitbench.evaluate(ColourModel(), weights_sha256="ab" * 32, **kw)    # the same hash: reused
    assert path.stat().st_mtime_ns == stamp
    rows = list(csv.DictReader(open(tmp_path / "results" / "results-imagenet.csv")))
    assert [row["model"] for row in rows] == ["my_colour_model"]


def test_model_built_once_per_checkpoint(dummy, tmp_path):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    make_numbered(tmp_path / "data" / "imagenetv2-matched-frequency", [(1, 1)])
    assert cli_run(tmp_path, "--datasets", "imagenet,v2,real", names=(CKPT, CKPT2)) == 0
    assert dummy["built"] == [CKPT, CKPT2]


# ---------------------------------------------------------------------------- bad images

@pytest.mark.parametrize("workers", ["0", "1"])
def test_corrupt_image_fails_the_job_without_skip(dummy, tmp_path, capsys, workers):
    root = make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    bad = root / imagenet_synsets()[3] / val_name(4)
    bad.write_bytes(b"not a jpeg at all")
    make_numbered(tmp_path / "data" / "imagenetv2-matched-frequency", [(1, 1)])
    assert cli_run(tmp_path, "--datasets", "imagenet,v2", "--workers", workers) == 1
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and str(bad) in r.reason and "--skip-bad-images" in r.reason
    assert r.reason.startswith("BadImageError: cannot read image")   # also from a worker process
    assert rec(tmp_path, "v2").status == "ok"                      # the run went on
    out = capsys.readouterr().out
    assert "failed: 1" in out and str(bad) in out


def test_corrupt_image_skipped_and_recorded(dummy, tmp_path):
    root = make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    bad = root / imagenet_synsets()[3] / val_name(4)
    bad.write_bytes(b"not a jpeg at all")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--skip-bad-images") == 0
    r = rec(tmp_path, "imagenet")
    assert r.status == "ok" and r.skipped_files == [str(bad)] and r.n_images == 9
    assert r.complete is False and r.top1 == pytest.approx(round(100 * 8 / 9, 4))


def test_failed_force_rerun_keeps_the_ok_record(dummy, tmp_path):
    root = make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    (root / imagenet_synsets()[3] / val_name(4)).write_bytes(b"garbage")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--force") == 1
    assert rec(tmp_path, "imagenet").status == "ok"


# ---------------------------------------------------------------------------- not run

def test_missing_weights_is_not_run_then_replaced(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    assert cli_run(tmp_path, "--datasets", "imagenet", "--weights-dir", str(empty), weights=False) == 0
    # a job that cannot run here leaves no record (a fact about this machine, not a measurement);
    # the summary says why and how to fix it
    assert not eval_path(tmp_path / "results", "imagenet", CKPT, "fp32").exists()
    out = capsys.readouterr().out
    assert "not run: 1" in out and "not a failure" in out
    assert "No weights found" in out and str(empty) in out and "--weights-dir" in out
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0     # weights now given
    assert rec(tmp_path, "imagenet").status == "ok"


def test_missing_dataset_is_not_run(dummy, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert cli_run(tmp_path, "--datasets", "imagenet,sketch") == 0
    out = capsys.readouterr().out
    assert "not run: 2" in out and "dataset not found: 2 job(s): imagenet, sketch (1 each)" in out
    for ds in ("imagenet", "sketch"):
        assert not eval_path(tmp_path / "results", ds, CKPT, "fp32").exists()
    assert "(imagenet) not found" in out and "--data-root" in out


def test_a_not_run_record_of_an_older_vitbench_is_removed(dummy, tmp_path):
    """Schema 1 wrote a 'not_run' record per job that could not run; a run now removes it."""
    (tmp_path / "data").mkdir()
    path = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"checkpoint": CKPT, "dataset": "imagenet", "precision": "fp32",
                                "status": "not_run", "reason": "No weights found for it", "kind": "eval",
                                "schema_version": 1}))
    assert read_record(path).reasons[0].kind == "weights"          # upgraded on read
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert not path.exists()


def test_bad_layout_is_failed(dummy, tmp_path):
    root = tmp_path / "data" / "imagenet"
    write_image(root / val_name(1), 0)                           # flat folder, no labels file
    assert cli_run(tmp_path, "--datasets", "imagenet") == 1
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and "labels file" in r.reason


# ---------------------------------------------------------------------------- config errors

def test_bad_data_override_is_a_clear_error(dummy, tmp_path, capsys):
    assert cli_run(tmp_path, "--data", f"imagenet={tmp_path / 'nope'}") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert cli_run(tmp_path, "--data", f"imagenet-x={tmp_path}") == 2
    assert "unknown dataset 'imagenet-x'" in capsys.readouterr().err
    assert not (tmp_path / "results" / "records").exists()


def test_data_override_points_real_at_the_imagenet_images(dummy, tmp_path):
    elsewhere = make_flat(tmp_path / "val", [(n, c, c) for n, c, _ in TEN[:4]])
    assert cli_run(tmp_path, "--datasets", "imagenet,real", "--data", f"imagenet={elsewhere}", data=False) == 0
    assert rec(tmp_path, "imagenet").dataset_root == str(elsewhere)
    assert rec(tmp_path, "real").dataset_root == str(elsewhere)


def test_run_config_errors_return_2(tmp_path, capsys):
    assert run(base_cfg(tmp_path, datasets=("imagenet", "bogus"))) == 2
    assert run(base_cfg(tmp_path, precision="fp8")) == 2
    assert run(base_cfg(tmp_path, device="tpu")) == 2
    assert run(base_cfg(tmp_path, batch_size=0)) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "fp8" in err and "tpu" in err


def test_default_batch_size():
    cfg = RunConfig(checkpoints=(), datasets=(), data_root=None, data_overrides=(), device="cpu",
                    precision="fp32", batch_size=None, workers=0, limit=None, weights_dir=None,
                    results_dir=Path("r"), reports_dir=Path("p"), force=False, skip_bad_images=False,
                    bench=None, report=False)
    assert cfg.eval_batch_size == 32
    from dataclasses import replace

    assert replace(cfg, device="cuda:1").eval_batch_size == 256
    assert replace(cfg, batch_size=8).eval_batch_size == 8


def test_sigterm_stops_the_run_like_ctrl_c():
    import os
    import signal

    from vitbench.run.runner import _sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with _sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            import time

            time.sleep(5)     # the handler fires before this ends
    assert signal.getsignal(signal.SIGTERM) == before
