"""Data that is there but cannot be read fails its job naming the file (exit 1); only absent data
is 'not run'. Truncated or mismatched parquet, a broken save_to_disk folder, a file given as a
dataset, broken symlinks and empty class folders."""

from __future__ import annotations

import logging

import pytest

from support import (
    TEN,
    cli_run,
    hf_repo_copy,
    hf_table,
    make_numbered,
    make_wnid_folders,
    png_bytes,
    rec,
    val_name,
    write_image,
)
from vitbench.catalog import imagenet_synsets
from vitbench.data.datasets import DatasetLayoutError, open_dataset

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


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
    hf_table([1, 2], [0, 1]).to_parquet(str(folder / "a.parquet"))
    other = datasets.Dataset.from_dict({"image": [{"bytes": png_bytes((1, 2, 3)), "path": val_name(3)}],
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
    hf_table([1, 2], [0, 1]).save_to_disk(str(folder))
    (folder / "dataset_info.json").write_text("{ not json")
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", f"imagenet={folder}", data=False) == 1
    assert rec(tmp_path, "imagenet").status == "failed"


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

