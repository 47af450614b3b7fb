"""A local copy of a Hugging Face dataset repo (parquet shards by split, save_to_disk folders): only
the asked split is read, in place, never copied."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import class_colour, cli_run, hf_repo_copy, hf_table, rec, val_name
from vitbench.catalog import imagenet_synsets
from vitbench.data.datasets import DatasetLayoutError, open_dataset
from vitbench.data.layouts import parse_source

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


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


def test_datasets_progress_bars_are_off(tmp_path):
    import datasets

    datasets.enable_progress_bars()
    repo = hf_repo_copy(tmp_path / "imagenet-1k", splits=("validation",))
    open_dataset("imagenet", override=str(repo))
    assert not datasets.is_progress_bar_enabled()


def test_local_parquet_through_worker_processes(tmp_path):
    import torch

    from vitbench.data.datasets import collate_eval

    ds = open_dataset("imagenet", override=str(hf_repo_copy(tmp_path / "imagenet-1k")))
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_eval)
    assert [(int(i), int(t)) for _, t, i, _ in loader] == [(0, 0), (1, 1), (2, 2), (3, 3)]



def test_hf_id_of_any_repo_reads_only_the_split_from_the_hf_cache(dummy, tmp_path, monkeypatch):
    """`--data imagenet=hf:ORG/NAME` for a repo vitbench has no row for: its snapshot in the HF cache is
    read in place, only the validation split's parquet (the train shard here is garbage: never opened)."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-hub-cache" / "datasets--someone--imagenet-copy"
    snap = repo / "snapshots" / sha / "data"
    snap.mkdir(parents=True)
    hf_table([1, 2, 3, 4], [0, 1, 2, 3]).to_parquet(str(snap / "validation-00000-of-00001.parquet"))
    (snap / "train-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--data", "imagenet=hf:someone/imagenet-copy",
                   data=False) == 0
    r = rec(tmp_path, "imagenet")
    assert r.status == "ok" and r.n_images == 4 and r.top1 == 100.0
    assert r.dataset_root.endswith(f"{sha}@validation") and "train" not in str(r.provenance.data_fingerprint)
