"""Honest reuse and honest data errors (issue 10): each test replays what a user did, on data it makes.

A record stands for a job only when it was measured on the same data; data the user named that is
there but unreadable fails the job (exit 1) naming the file; only absent data is "not run".
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from test_evaluate import class_colour
from test_run import (  # noqa: F401 - `dummy` is a fixture
    CKPT, TEN, cli_run, dummy, make_flat, make_numbered, make_wnid_folders, rec, val_name, write_image,
)
from vitbench.catalog import imagenet_synsets
from vitbench.data.datasets import DatasetLayoutError, open_dataset
from vitbench.data.layouts import parse_source
from vitbench.records import eval_path, read_record, write_record

SYN = imagenet_synsets()


@pytest.fixture(autouse=True)
def _hf_cache_in_tmp(tmp_path, monkeypatch):
    """Whatever `datasets` might cache goes under tmp_path/hf-cache, where the tests can look."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    # the HF hub cache a dataset is looked for in after the data root, and vitbench's own: empty
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    monkeypatch.setenv("VITBENCH_CACHE", str(tmp_path / "vitbench-cache"))


def csv_rows(tmp_path, name="results-imagenet.csv"):
    return list(csv.DictReader(open(tmp_path / "results" / name, encoding="utf-8")))


# ---------------------------------------------------------------------------- 1. reuse only for the same data

def test_a_record_of_100_images_is_not_reused_for_the_full_folder(dummy, tmp_path, caplog, capsys):
    root = tmp_path / "data" / "imagenet"
    make_wnid_folders(root, TEN[:4])                        # the "100-image" folder
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert rec(tmp_path, "imagenet").n_images == 4
    fp = rec(tmp_path, "imagenet").provenance.data_fingerprint
    assert (fp.root, fp.n_images, len(fp.sha256)) == (str(root), 4, 64)
    # the same data again: reused
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert "skipped (had a record): 1" in capsys.readouterr().out
    # the full folder: the job reruns, says why in one line, and the CSV shows the new number
    make_wnid_folders(root, TEN)
    with caplog.at_level(logging.INFO, logger="vitbench.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert "done: 1" in capsys.readouterr().out
    why = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rerun ")]
    assert len(why) == 1 and "other data" in why[0] and "4 -> 10 images" in why[0]
    r = rec(tmp_path, "imagenet")
    assert (r.n_images, r.top1) == (10, 90.0)
    assert csv_rows(tmp_path)[0]["n"] == "10"


def test_same_count_other_files_or_labels_or_root_reruns(dummy, tmp_path, caplog):
    root = tmp_path / "data" / "imagenet"
    make_flat(root, [(n, c, c) for n, c, _ in TEN[:4]])
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    # one label changed, same files and count
    rows = (root / "labels.csv").read_text().replace(f"{val_name(2)},1", f"{val_name(2)},7")
    (root / "labels.csv").write_text(rows)
    with caplog.at_level(logging.INFO, logger="vitbench.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert any("file list or labels" in r.getMessage() for r in caplog.records)
    assert rec(tmp_path, "imagenet").top1 == 75.0
    # a copy of the same images elsewhere: another root, so it is measured again
    other = make_flat(tmp_path / "copy", [(n, c, c) for n, c, _ in TEN[:4]])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vitbench.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={other}", data=False) == 0
    assert any("data root" in r.getMessage() for r in caplog.records)
    assert rec(tmp_path, "imagenet").dataset_root == str(other)


def test_a_record_without_a_fingerprint_is_rerun_and_says_so(dummy, tmp_path, caplog):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:4])
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    path = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    data = json.loads(path.read_text())
    del data["provenance"]["data_fingerprint"]               # a record from before fingerprints
    path.write_text(json.dumps(data))
    assert read_record(path).provenance.data_fingerprint is None
    with caplog.at_level(logging.INFO, logger="vitbench.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert any("does not say which data" in r.getMessage() for r in caplog.records)
    assert rec(tmp_path, "imagenet").provenance.data_fingerprint is not None


def test_limit_rule_still_holds_with_fingerprints(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    # a full record of the same data serves a smoke run; its fingerprint is of the data, not the limit
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    assert "skipped (had a record): 1" in capsys.readouterr().out
    assert rec(tmp_path, "imagenet").limit is None


def test_explicit_broken_data_is_checked_not_skipped(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:4])
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={bad}") == 1
    out = capsys.readouterr().out
    assert "failed: 1" in out and "bad.parquet" in out and "skipped (had a record): 0" in out


def test_absent_data_keeps_the_ok_record(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:4])
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert cli_run(tmp_path, "--datasets", "imagenet", data=False) == 0      # a machine without the data
    assert "skipped (had a record): 1" in capsys.readouterr().out
    assert rec(tmp_path, "imagenet").status == "ok"


# ---------------------------------------------------------------------------- 2. splits of a local HF repo copy

def _png(colour) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(b, "PNG")
    return b.getvalue()


def _table(numbers, labels, paths=True):
    """An HF-style image/label table: image n is coloured as its label's class."""
    import datasets

    return datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(class_colour(max(c, 0))), "path": val_name(n) if paths else None}
                   for n, c in zip(numbers, labels)],
         "label": list(labels)},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}))


def hf_repo_copy(root: Path, splits=("train", "validation", "test")) -> Path:
    """What `huggingface-cli download ILSVRC/imagenet-1k` leaves: data/<split>-0000k-of-0000n.parquet."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: other\n---\n")
    spec = {"train": ([101, 102, 103], [5, 6, 7]), "validation": ([1, 2, 3, 4], [0, 1, 2, 3]),
            "test": ([201, 202], [-1, -1])}
    for split in splits:
        numbers, labels = spec[split]
        for k in range(2):                          # two shards per split
            part = slice(k * 2, k * 2 + 2)
            _table(numbers[part], labels[part]).to_parquet(
                str(root / "data" / f"{split}-{k:05d}-of-00002.parquet"))
    return root


def test_local_hf_copy_reads_the_validation_split_only(tmp_path):
    repo = hf_repo_copy(tmp_path / "imagenet-1k")
    ds = open_dataset("imagenet", override=str(repo))
    assert ds.targets == [0, 1, 2, 3] and [Path(f).name for f in ds.files] == [val_name(n) for n in (1, 2, 3, 4)]
    assert ds.layout.endswith("@validation")
    x, t, _ = ds[3]
    assert t == 3 and tuple(x[:, 0, 0].tolist()) == class_colour(3)
    # an explicit split
    train = open_dataset("imagenet", override=f"{repo}@train")
    assert train.targets == [5, 6, 7] and train.root == f"{repo}@train"
    # the test split has no labels: a clear error, not a confusing one
    with pytest.raises(DatasetLayoutError, match="test split"):
        open_dataset("imagenet", override=f"{repo}@test")
    with pytest.raises(DatasetLayoutError, match=r"no 'val' split .*has test, train, validation"):
        open_dataset("imagenet", override=f"{repo}@val")


def test_local_hf_copy_without_validation_refuses_and_names_the_splits(tmp_path):
    repo = hf_repo_copy(tmp_path / "imagenet-1k", splits=("train", "test"))
    with pytest.raises(DatasetLayoutError, match=r"splits test, train .*@SPLIT"):
        open_dataset("imagenet", override=str(repo))


def test_split_syntax_through_the_cli(dummy, tmp_path):
    repo = hf_repo_copy(tmp_path / "imagenet-1k")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={repo}@validation", data=False) == 0
    r = rec(tmp_path, "imagenet")
    assert (r.status, r.n_images, r.top1) == ("ok", 4, 100.0)
    assert r.dataset_root == f"{repo}@validation"


def test_parse_source():
    assert parse_source("hf:ILSVRC/imagenet-1k@validation") == ("hf:ILSVRC/imagenet-1k", "validation")
    assert parse_source("hf:ILSVRC/imagenet-1k") == ("hf:ILSVRC/imagenet-1k", None)
    assert parse_source("/data/in1k@test") == ("/data/in1k", "test")
    assert parse_source("/data/in1k") == ("/data/in1k", None)


def test_local_parquet_is_read_in_place_not_copied(tmp_path):
    repo = hf_repo_copy(tmp_path / "imagenet-1k", splits=("validation",))
    ds = open_dataset("imagenet", override=str(repo))
    assert [ds[i][1] for i in range(len(ds))] == [0, 1, 2, 3]
    cache = tmp_path / "hf-cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


# ---------------------------------------------------------------------------- 3. explicit but broken data fails

def test_truncated_parquet_fails_the_job_naming_the_file(dummy, tmp_path, capsys):
    repo = hf_repo_copy(tmp_path / "imagenet-1k", splits=("validation",))
    shard = repo / "data" / "validation-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DatasetLayoutError, match="validation-00001-of-00002.parquet: not a readable parquet"):
        open_dataset("imagenet", override=str(repo))
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={repo}", data=False) == 1
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and "validation-00001-of-00002.parquet" in r.reason
    assert "failed: 1" in capsys.readouterr().out


def test_parquet_files_with_different_schemas_fail_naming_the_file(dummy, tmp_path):
    import datasets

    folder = tmp_path / "pq"
    folder.mkdir()
    _table([1, 2], [0, 1]).to_parquet(str(folder / "a.parquet"))
    other = datasets.Dataset.from_dict({"image": [{"bytes": _png((1, 2, 3)), "path": val_name(3)}],
                                        "label": [2], "extra": ["x"]},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "label": datasets.Value("int64"),
                                                                   "extra": datasets.Value("string")}))
    other.to_parquet(str(folder / "b.parquet"))
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={folder}", data=False) == 1
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and "b.parquet: its columns differ" in r.reason


def test_broken_save_to_disk_folder_fails(dummy, tmp_path):
    folder = tmp_path / "saved"
    _table([1, 2], [0, 1]).save_to_disk(str(folder))
    (folder / "dataset_info.json").write_text("{ not json")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={folder}", data=False) == 1
    assert rec(tmp_path, "imagenet").status == "failed"


# ---------------------------------------------------------------------------- 4. a file that is not a dataset

@pytest.mark.parametrize("name", ["ILSVRC2012_img_val.tar", "ILSVRC2012_val_00000001.JPEG"])
def test_a_file_as_data_is_a_layout_error_and_the_run_goes_on(dummy, tmp_path, capsys, name):
    import tarfile

    path = tmp_path / name
    if name.endswith(".tar"):
        img = write_image(tmp_path / "x" / val_name(1), 0)
        with tarfile.open(path, "w") as tar:
            tar.add(img, arcname=img.name)
    else:
        write_image(path, 0)
    make_numbered(tmp_path / "data" / "imagenetv2-matched-frequency", [(3, 3)])   # the next job's data
    code = cli_run(tmp_path, "--datasets", "imagenet,v2", "--data", f"imagenet={path}")
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and str(path) in r.reason and "is a file" in r.reason
    assert "wnid class folders" in r.reason and "hf:DATASET_ID" in r.reason
    assert rec(tmp_path, "v2").status == "ok"                # the run went on
    assert (tmp_path / "results" / "results-imagenetv2-matched-frequency.csv").is_file()


# ---------------------------------------------------------------------------- 5. subsets are not compared

def test_a_subset_run_gets_no_delta_or_flag_and_is_labelled_everywhere(dummy, tmp_path, monkeypatch):
    from vitbench import plots, report
    from vitbench.catalog import published_top1

    assert published_top1("imagenet", CKPT) is not None          # there is a figure to (not) compare with
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    r = rec(tmp_path, "imagenet")
    assert (r.comparable_to_published, r.subset_label) == (False, "subset, 3 of 50,000")
    # CSV: the published figure stays, the delta does not; the row says what it is
    row = csv_rows(tmp_path)[0]
    assert row["published_top1"] and row["published_delta"] == "" and row["subset"] == "subset, 3 of 50,000"
    # reports: card, comparison (leaderboard, measured-vs-published) and the plots
    monkeypatch.undo()                     # the real models again (cards build them on the meta device)
    drawn = []
    real_scatter = plots.scatter
    monkeypatch.setattr(plots, "scatter", lambda path, pts, **kw: drawn.append(pts) or real_scatter(path, pts, **kw))
    out = tmp_path / "reports"
    report.render_reports(tmp_path / "results", out)
    card = (out / "cards" / f"{CKPT}.md").read_text(encoding="utf-8")
    line = next(ln for ln in card.splitlines() if ln.startswith("| ImageNet-1k val") and "100.000" in ln)
    assert "subset, 3 of 50,000" in line and "+" not in line                # no Δ vs published
    cmp = (out / "comparison.md").read_text(encoding="utf-8")
    assert "outside 95% CI**" not in cmp.split("## Measured vs published")[1].split("##")[0].split("\n", 3)[-1]
    assert f"{CKPT} (subset, 3 of 50,000)" in cmp
    assert "not compared: subset, 3 of 50,000" in cmp
    assert f"records under `{tmp_path / 'results' / 'records'}/`" in cmp      # item 8: the actual results dir
    points = [p for pts in drawn for p in pts if p.label.startswith(CKPT)]
    assert points and all(p.subset and p.label.endswith("(subset, 3 of 50,000)") for p in points)


def test_a_complete_record_is_compared():
    from vitbench.records import EvalRecord

    full = EvalRecord("m", "imagenet", "fp32", "ok", n_images=50_000, n_expected=50_000, complete=True)
    part = EvalRecord("m", "imagenet", "fp32", "ok", n_images=49_990, n_expected=50_000, complete=False)
    assert (full.comparable_to_published, full.subset_label) == (True, None)
    assert (part.comparable_to_published, part.subset_label) == (False, "subset, 49,990 of 50,000")
    assert EvalRecord("m", "imagenet", "fp32", "not_run").subset_label is None


# ---------------------------------------------------------------------------- 6. label forms in parquet

def test_wnid_string_labels_in_parquet_are_accepted(tmp_path):
    import datasets

    folder = tmp_path / "pq"
    folder.mkdir()
    datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(class_colour(c)), "path": val_name(n)} for n, c in ((1, 0), (2, 5))],
         "label": [SYN[0], SYN[5]]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")}),
    ).to_parquet(str(folder / "validation-00000-of-00001.parquet"))
    assert open_dataset("imagenet", override=str(folder)).targets == [0, 5]


def test_wrong_label_strings_and_renamed_columns_say_what_is_accepted(tmp_path):
    import datasets

    def write(name, cols, features):
        path = tmp_path / name
        datasets.Dataset.from_dict(cols, features=datasets.Features(features)).to_parquet(str(path))
        return path

    img = [{"bytes": _png((1, 2, 3)), "path": val_name(1)}]
    bad = write("bad.parquet", {"image": img, "label": ["tench"]},
                {"image": datasets.Image(), "label": datasets.Value("string")})
    with pytest.raises(DatasetLayoutError, match=r"'?tench'? .*accepted labels are class indices.*wnid strings"):
        open_dataset("imagenet", override=str(bad))
    renamed = write("renamed.parquet", {"picture": img, "target": [0]},
                    {"picture": datasets.Image(), "target": datasets.Value("int64")})
    with pytest.raises(DatasetLayoutError, match=r"found columns \['picture', 'target'\].*image, img, jpg.*label, labels, cls"):
        open_dataset("imagenet", override=str(renamed))


# ---------------------------------------------------------------------------- 7. unreadable folder entries

def test_broken_symlink_is_named_and_fails_unless_skipped(dummy, tmp_path, caplog):
    root = make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:4])
    link = root / SYN[7] / val_name(8)
    link.symlink_to(tmp_path / "gone.JPEG")
    with caplog.at_level(logging.WARNING):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 1
    assert any("broken symlink" in r.getMessage() and str(link) in r.getMessage() for r in caplog.records)
    r = rec(tmp_path, "imagenet")
    assert r.status == "failed" and val_name(8) in r.reason
    assert cli_run(tmp_path, "--datasets", "imagenet", "--skip-bad-images") == 0
    r = rec(tmp_path, "imagenet")
    assert r.status == "ok" and r.n_images == 4 and r.skipped_files == [str(link)] and r.complete is False


def test_empty_class_folder_is_named_in_the_preflight(tmp_path, caplog):
    from vitbench.catalog import subset_synsets

    root = tmp_path / "imagenet-a"
    for k, w in enumerate(subset_synsets("a")):
        if k != 3:
            write_image(root / w / f"a_{k}.jpg", 0)
    (root / subset_synsets("a")[3]).mkdir()
    with caplog.at_level(logging.WARNING):
        ds = open_dataset("a", data_root=tmp_path)
    assert len(ds) == 199
    assert any("empty class folder" in r.getMessage() and subset_synsets("a")[3] in r.getMessage()
               for r in caplog.records)


# ---------------------------------------------------------------------------- 8. smaller ones

def test_labels_csv_with_a_utf8_bom(dummy, tmp_path):
    root = make_flat(tmp_path / "data" / "imagenet", [(n, c, c) for n, c, _ in TEN[:3]])
    for name in ("labels.csv",):
        text = (root / name).read_text(encoding="utf-8")
        (root / name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert open_dataset("imagenet", data_root=tmp_path / "data").targets == [0, 1, 2]
    (root / "labels.csv").unlink()
    rows = "ImageId,PredictionString\n" + "".join(f"{val_name(n)[:-5]},{SYN[c]} 1 2 3 4\n" for n, c, _ in TEN[:3])
    (root / "LOC_val_solution.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode("utf-8"))
    assert open_dataset("imagenet", data_root=tmp_path / "data").targets == [0, 1, 2]


def test_datasets_progress_bars_are_off(tmp_path):
    import datasets

    datasets.enable_progress_bars()
    repo = hf_repo_copy(tmp_path / "imagenet-1k", splits=("validation",))
    open_dataset("imagenet", override=str(repo))
    assert not datasets.is_progress_bar_enabled()


def test_reports_default_beside_the_results(dummy, tmp_path, monkeypatch):
    from vitbench import cli, report

    monkeypatch.chdir(tmp_path)
    assert cli.reports_dir_for(Path("results"), None) == Path("reports")
    assert cli.reports_dir_for(Path("runs/a"), None) == Path("runs/a/reports")
    assert cli.reports_dir_for(Path("runs/a"), Path("elsewhere")) == Path("elsewhere")
    rendered = []
    monkeypatch.setattr(report, "render_reports", lambda results, out, **kw: rendered.append((results, out)) or [])
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN[:2])
    argv = ["run", CKPT, "--datasets", "imagenet", "--results-dir", "runs/a", "--workers", "0",
            "--batch-size", "4", "--no-bench", "--data-root", "data", "--weights-dir", "weights"]
    assert cli.main(argv) == 0
    assert cli.main(["report", "--results-dir", "runs/a"]) == 0
    assert cli.main(["report"]) == 0
    assert rendered == [(Path("runs/a"), Path("runs/a/reports"))] * 2 + [(Path("results"), Path("reports"))]


_SIGTERM_DRIVER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import vitbench.models, vitbench.stats
from test_evaluate import ColourModel
from vitbench import cli, records

started = Path(sys.argv[2])

class Slow(ColourModel):
    def forward(self, x):
        started.write_text("x")
        time.sleep(60)
        return super().forward(x)

vitbench.models.create_model = lambda name, **kw: Slow()
vitbench.stats.stats_record = lambda name: records.StatsRecord(
    checkpoint=name, architecture="dummy", img_size=32, param_count=1, gmacs=0.0, gmacs_no_attn=0.0, macts=0.0)
sys.exit(cli.main(sys.argv[3:]))
"""


def test_sigterm_with_workers_stops_quietly(dummy, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    started = tmp_path / "started"
    argv = ["run", CKPT, "--datasets", "imagenet", "--results-dir", str(tmp_path / "results"), "--workers", "2",
            "--batch-size", "2", "--no-bench", "--no-report", "--data-root", str(tmp_path / "data"),
            "--weights-dir", str(tmp_path / "weights")]
    proc = subprocess.Popen([sys.executable, "-c", _SIGTERM_DRIVER, str(Path(__file__).parent), str(started), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(1200):                         # wait (not timed: a generous bound) until it is evaluating
        if started.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert started.exists(), proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGTERM)           # the whole group, workers too, as a scheduler does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "killed by signal" not in err, err


def test_local_parquet_through_worker_processes(tmp_path):
    import torch

    from vitbench.data.datasets import collate_eval

    ds = open_dataset("imagenet", override=str(hf_repo_copy(tmp_path / "imagenet-1k")))
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_eval)
    assert [(int(i), int(t)) for _, t, i, _ in loader] == [(0, 0), (1, 1), (2, 2), (3, 3)]
