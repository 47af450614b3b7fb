"""Resume is honest: a record stands for a job only when it was measured on the same data (the
data fingerprint), and absent data keeps an 'ok' record as it is."""

from __future__ import annotations

import json
import logging

import pytest

from support import (
    CKPT,
    TEN,
    cli_run,
    csv_rows,
    make_flat,
    make_wnid_folders,
    rec,
    val_name,
)
from vitbench.catalog import imagenet_synsets
from vitbench.records import eval_path, read_record

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


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
    with caplog.at_level(logging.INFO, logger="vitbench.run.runner"):
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
    with caplog.at_level(logging.INFO, logger="vitbench.run.runner"):
        assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert any("file list or labels" in r.getMessage() for r in caplog.records)
    assert rec(tmp_path, "imagenet").top1 == 75.0
    # a copy of the same images elsewhere: another root, so it is measured again
    other = make_flat(tmp_path / "copy", [(n, c, c) for n, c, _ in TEN[:4]])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vitbench.run.runner"):
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
    with caplog.at_level(logging.INFO, logger="vitbench.run.runner"):
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

