"""Datasets by name: every accepted layout, class order, subsets, ReaL label sets, pre-flight
errors, bad images, --limit, and collation through worker processes. Tiny generated images."""
import dataclasses
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vitbench
from vitbench.catalog import imagenet_synsets, real_labels, subset_indices, subset_synsets
from vitbench.data.config import DataConfig
from vitbench.data.datasets import (
    DATASETS,
    BadImage,
    BadImageError,
    DatasetLayoutError,
    DatasetNotFoundError,
    collate_eval,
    expand_datasets,
    open_dataset,
    resolve_override,
    selectable_datasets,
    shift_datasets,
)
from vitbench.data.transforms import create_crop_transform

pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")

SYN = imagenet_synsets()
RESOURCES = resources.files("vitbench.catalog")
VAL = "ILSVRC2012_val_{:08d}.JPEG"


def write_image(path, color=(10, 20, 30), size=(40, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt or ("PNG" if path.suffix == ".png" else "JPEG"))
    return path


def class_folders(root, names, images: dict):
    """All `names` as folders (cheap), images only in those of `images` {folder: n}."""
    for n in names:
        (root / n).mkdir(parents=True, exist_ok=True)
    for folder, n in images.items():
        for k in range(n):
            write_image(root / folder / f"img_{k}.png", color=(k, 0, 0))
    return root


def val_labels_of(numbers):
    """Some image number -> class: image n is class (n * 37) % 1000."""
    return {n: (n * 37) % 1000 for n in numbers}


@pytest.fixture
def flat(tmp_path):
    root = tmp_path / "imagenet"
    labels = val_labels_of([1, 2, 3, 5, 8])
    for n in labels:
        write_image(root / VAL.format(n), color=(n, n, n))
    return root, labels


# ---------------------------------------------------------------- specs

def test_specs_are_data():
    assert {n: s.n_expected for n, s in DATASETS.items()} == {
        "imagenet": 50_000, "real": 50_000, "v2": 10_000, "sketch": 50_889, "r": 30_000,
        "r-clean": 10_000, "a": 7_500, "a-clean": 10_000}
    assert DATASETS["real"].n_scored == 46_837 == sum(1 for s in real_labels() if s)
    assert DATASETS["v2"].folder == "imagenetv2-matched-frequency"
    assert DATASETS["a"].class_subset == subset_indices("a") and DATASETS["imagenet"].class_subset is None
    assert DATASETS["r-clean"].based_on == "imagenet" and DATASETS["r-clean"].folder == "imagenet"
    assert DATASETS["sketch"].csv == "results-sketch"
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["a"].n_expected = 1


def test_every_dataset_states_its_facts():
    """Title, short name and CSV stem are stated once per dataset, are unique, and each baseline is a
    dataset of the table; the derived selections follow from it."""
    for spec in DATASETS.values():
        assert spec.title and spec.short and spec.csv.startswith("results-"), spec.name
        assert spec.baseline is None or spec.baseline in DATASETS, spec.name
        assert (RESOURCES / "published" / f"{spec.csv}.csv").is_file(), spec.name
    for field in ("title", "short", "csv"):
        assert len({getattr(s, field) for s in DATASETS.values()}) == len(DATASETS), field
    assert {n: s.baseline for n, s in DATASETS.items() if s.baseline} == {
        "real": "imagenet", "v2": "imagenet", "sketch": "imagenet", "r": "r-clean", "a": "a-clean"}
    assert selectable_datasets() == ("imagenet", "real", "v2", "sketch", "r", "a")
    assert shift_datasets() == ("real", "v2", "sketch", "r", "a")
    assert expand_datasets(["a", "imagenet", "r"]) == ["a-clean", "a", "imagenet", "r-clean", "r"]
    with pytest.raises(KeyError, match="Unknown dataset 'c'"):
        expand_datasets(["c"])



def test_published_top1_reads_the_datasets_csv():
    from vitbench.catalog import published_results
    from vitbench.data.specs import published_top1

    name = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert published_top1("imagenet", name) == pytest.approx(85.108)
    assert published_top1("real", name) == float(published_results("results-imagenet-real").loc[name, "top1"])
    assert published_top1("imagenet", "not_a_model.x") is None and published_top1("imagenet-c", name) is None

# names of the per-module dataset lists the table replaced; none may come back
_OLD_LISTS = re.compile(r"\b(DATASET_TITLES|SHORT|SHIFT_SETS|DATASET_ORDER|BASELINE|RESULTS_CSV)\b\s*[:=]"
                        r"|^DATASETS\s*[:=]", re.M)


def test_no_module_keeps_its_own_dataset_list():
    package = Path(vitbench.__file__).parent
    offenders = [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))
                 if p.name != "specs.py" and _OLD_LISTS.search(p.read_text())]
    assert offenders == [], f"dataset facts belong in vitbench/data/specs.py DATASETS, not in {offenders}"


def test_expand_datasets_puts_baselines_first():
    assert expand_datasets(["imagenet", "r", "a"]) == ["imagenet", "r-clean", "r", "a-clean", "a"]
    assert expand_datasets(["a", "a-clean"]) == ["a-clean", "a"]
    with pytest.raises(KeyError, match="Available"):
        expand_datasets(["imagenet-c"])


def test_resolve_override_falls_back_to_base():
    assert resolve_override("real", {"imagenet": "/x"}) == "/x"
    assert resolve_override("real", {"real": "/y", "imagenet": "/x"}) == "/y"
    assert resolve_override("v2", {"imagenet": "/x"}) is None


# ---------------------------------------------------------------- ImageNet-val layouts

def test_wnid_folders(tmp_path, caplog):
    root = class_folders(tmp_path / "imagenet", SYN, {SYN[0]: 2, SYN[999]: 1})
    with caplog.at_level(logging.WARNING):
        ds = open_dataset("imagenet", data_root=tmp_path)
    assert "expected 50000" in caplog.text
    assert (ds.n_images, ds.n_expected, ds.complete) == (3, 50_000, False)
    assert ds.root == str(root) and ds.subset is None and ds.label_sets is None
    x, t, i = ds[1]
    assert x.dtype == torch.uint8 and x.shape == (3, 30, 40) and (t, i) == (999, 1)
    assert [ds[k][1] for k in range(3)] == [0, 999, 0]      # round-robin over classes (no val numbers)
    assert ds.files[0].endswith(f"{SYN[0]}/img_0.png") and ds.files[2].endswith(f"{SYN[0]}/img_1.png")


def test_nested_val_folder(tmp_path):
    class_folders(tmp_path / "imagenet" / "val", SYN, {SYN[5]: 1})
    (tmp_path / "imagenet" / "train").mkdir()
    ds = open_dataset("imagenet", override=str(tmp_path / "imagenet"))
    assert ds.targets == [5] and ds.root.endswith("val")


def test_flat_loc_solution(flat):
    root, labels = flat
    rows = ["ImageId,PredictionString"] + [
        f"ILSVRC2012_val_{n:08d},{SYN[c]} 1 2 3 4 {SYN[c]} 5 6 7 8" for n, c in labels.items()]
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    ds = open_dataset("imagenet", override=str(root))
    assert ds.layout == "flat+LOC_val_solution.csv"
    assert ds.targets == [labels[n] for n in sorted(labels)]


@pytest.mark.parametrize("as_index", [False, True])
def test_flat_filename_label_csv(flat, as_index):
    root, labels = flat
    body = [f"{VAL.format(n)},{c if as_index else SYN[c]}" for n, c in labels.items()]
    (root / "labels.csv").write_text("filename,label\n" + "\n".join(body))
    ds = open_dataset("imagenet", override=str(root))
    assert ds.targets == [labels[n] for n in sorted(labels)]


def _ground_truth(root, labels, id_of_class):
    gt = [str(id_of_class[labels.get(n, 0)]) for n in range(1, max(labels) + 1)]
    (root / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(gt) + "\n")


def test_flat_ground_truth_txt_needs_a_mapping(flat):
    root, labels = flat
    id_of_class = {c: 1000 - c for c in range(1000)}       # devkit IDs are not class indices
    _ground_truth(root, labels, id_of_class)
    with pytest.raises(DatasetLayoutError, match="meta.mat"):
        open_dataset("imagenet", override=str(root))
    (root / "map_clsloc.txt").write_text(
        "".join(f"{SYN[c]} {i} name_{c}\n" for c, i in id_of_class.items()))
    ds = open_dataset("imagenet", override=str(root))
    assert ds.targets == [labels[n] for n in sorted(labels)]


def test_flat_ground_truth_with_devkit_meta_mat(tmp_path):
    import scipy.io as sio  # a test dependency (pyproject [test]); at runtime only for meta.mat
    root = tmp_path / "imagenet"
    labels = val_labels_of([1, 2, 4])
    for n in labels:
        write_image(root / VAL.format(n))
    id_of_class = {c: 1000 - c for c in range(1000)}
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    _ground_truth(data, labels, id_of_class)
    syn = np.zeros((1010, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    for k in range(1010):                               # leaves first, then inner synsets
        syn[k, 0] = (k + 1, SYN[999 - k] if k < 1000 else f"n0000{k:04d}")
    sio.savemat(data / "meta.mat", {"synsets": syn})
    ds = open_dataset("imagenet", data_root=tmp_path)
    assert ds.targets == [labels[n] for n in sorted(labels)]


def test_flat_without_labels_is_a_layout_error(flat):
    root, _ = flat
    with pytest.raises(DatasetLayoutError, match="no labels file.*LOC_val_solution.csv"):
        open_dataset("imagenet", override=str(root))


def test_flat_with_unlabelled_images(flat):
    root, labels = flat
    (root / "labels.csv").write_text(f"{VAL.format(1)},{SYN[1]}\n")
    with pytest.raises(DatasetLayoutError, match="4 of 5 images have no label"):
        open_dataset("imagenet", override=str(root))


def test_flat_unknown_wnid(flat):
    root, labels = flat
    (root / "labels.csv").write_text("".join(f"{VAL.format(n)},n99999999\n" for n in labels))
    with pytest.raises(DatasetLayoutError, match="neither a wnid|outside the 1000"):
        open_dataset("imagenet", override=str(root))


def _hf_dataset(labels, with_paths=True):
    import io

    import datasets

    def png(n):
        b = io.BytesIO()
        Image.new("RGB", (40, 30), (n, 0, 0)).save(b, "PNG")
        return b.getvalue()

    nums = sorted(labels)
    return datasets.Dataset.from_dict(
        {"image": [{"bytes": png(n), "path": VAL.format(n) if with_paths else None} for n in nums],
         "label": [labels[n] for n in nums]},
        features=datasets.Features({"image": datasets.Image(),
                                    "label": datasets.ClassLabel(names=list(SYN))}))


def test_hf_parquet_file_and_folder(tmp_path):
    labels = val_labels_of([1, 2, 3])
    folder = tmp_path / "pq" / "data"
    folder.mkdir(parents=True)
    _hf_dataset(labels).to_parquet(str(folder / "validation-00000.parquet"))
    for src in (folder / "validation-00000.parquet", tmp_path / "pq"):
        ds = open_dataset("imagenet", override=str(src))
        assert ds.targets == [labels[n] for n in sorted(labels)]
        assert ds.files[0] == VAL.format(1)
        x, t, i = ds[1]
        assert x.shape == (3, 30, 40) and int(x[0, 0, 0]) == 2


def test_hf_save_to_disk_and_real(tmp_path):
    import datasets

    labels = val_labels_of([2, 4])
    datasets.DatasetDict({"validation": _hf_dataset(labels)}).save_to_disk(str(tmp_path / "imagenet"))
    ds = open_dataset("real", data_root=tmp_path)
    assert ds.layout.startswith("hf:") and ds.targets == [labels[2], labels[4]]
    assert ds.label_sets == [real_labels()[1], real_labels()[3]]


def test_hf_real_without_file_names_needs_all_rows(tmp_path, monkeypatch):
    import vitbench.data.datasets as vd

    _hf_dataset(val_labels_of([1, 2]), with_paths=False).save_to_disk(str(tmp_path / "imagenet"))
    assert open_dataset("imagenet", data_root=tmp_path).files[0].endswith("#0")
    with pytest.raises(DatasetLayoutError, match="exactly 50,000 rows"):
        open_dataset("real", data_root=tmp_path)
    # a split with as many rows as there are ReaL label sets is taken in row order
    monkeypatch.setattr(vd, "real_labels", lambda: ((1, 2), (3,)))
    assert open_dataset("real", data_root=tmp_path, limit=2).label_sets == [(1, 2), (3,)]


def test_hf_dataset_through_worker_processes(tmp_path):
    labels = val_labels_of([1, 2, 3])
    _hf_dataset(labels).save_to_disk(str(tmp_path / "imagenet"))
    ds = open_dataset("imagenet", data_root=tmp_path)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_eval)
    got = [(i, t) for _, targets, indices, _ in loader for i, t in zip(indices.tolist(), targets.tolist(), strict=True)]
    assert got == [(k, labels[n]) for k, n in enumerate(sorted(labels))]


def test_hf_hub_id_missing_offline_is_not_found():
    with pytest.raises(DatasetNotFoundError, match="hf:vitbench-test/does-not-exist"):
        open_dataset("imagenet", override="hf:vitbench-test/does-not-exist")


# ---------------------------------------------------------------- ReaL

def test_real_label_sets_by_file_name(tmp_path):
    root = tmp_path / "imagenet"
    class_folders(root, SYN, {})
    # image 2 filed under its class folder, image 1 (empty ReaL set) under another
    write_image(root / SYN[970] / VAL.format(2))
    write_image(root / SYN[65] / VAL.format(1))
    ds = open_dataset("real", data_root=tmp_path)
    by_file = {f.rsplit("/", 1)[1]: s for f, s in zip(ds.files, ds.label_sets, strict=True)}
    assert by_file == {VAL.format(2): real_labels()[1], VAL.format(1): real_labels()[0]}
    assert real_labels()[0] == () and 970 in real_labels()[1]


def test_real_needs_validation_file_names(tmp_path):
    class_folders(tmp_path / "imagenet", SYN, {SYN[3]: 1})
    with pytest.raises(DatasetLayoutError, match="ILSVRC2012_val_00000001"):
        open_dataset("real", data_root=tmp_path)


# ---------------------------------------------------------------- V2, Sketch, R, A

def test_v2_folders_map_by_number(tmp_path):
    root = class_folders(tmp_path / "imagenetv2-matched-frequency", [str(i) for i in range(1000)],
                         {"10": 1, "2": 1, "999": 1})
    ds = open_dataset("v2", data_root=tmp_path)
    assert sorted(zip(ds.files, ds.targets, strict=True)) == sorted([
        (str(root / "10" / "img_0.png"), 10), (str(root / "2" / "img_0.png"), 2),
        (str(root / "999" / "img_0.png"), 999)])


def test_v2_nested_tarball_folder(tmp_path):
    inner = tmp_path / "imagenetv2-matched-frequency" / "imagenetv2-matched-frequency-format-val"
    class_folders(inner, [str(i) for i in range(1000)], {"7": 1})
    assert open_dataset("v2", data_root=tmp_path).targets == [7]


def test_v2_wrong_folders(tmp_path):
    root = class_folders(tmp_path / "imagenetv2-matched-frequency", [str(i) for i in range(999)], {"1": 1})
    with pytest.raises(DatasetLayoutError, match="found 999 class folders.*0..999.*missing: 999"):
        open_dataset("v2", data_root=tmp_path)
    (root / "1000").mkdir()
    (root / "999").mkdir()
    with pytest.raises(DatasetLayoutError, match="not expected: 1000"):
        open_dataset("v2", data_root=tmp_path)


def test_sketch_nested_folder(tmp_path):
    class_folders(tmp_path / "imagenet-sketch" / "sketch", SYN, {SYN[42]: 2})
    ds = open_dataset("sketch", data_root=tmp_path)
    assert ds.targets == [42, 42] and ds.subset is None


@pytest.mark.parametrize("name", ["a", "r"])
def test_a_r_subsets(tmp_path, name):
    syn = subset_synsets(name)
    class_folders(tmp_path / f"imagenet-{name}", syn, {syn[0]: 1, syn[199]: 2})
    ds = open_dataset(name, data_root=tmp_path)
    assert ds.subset == subset_indices(name) and len(ds.subset) == 200
    assert ds.targets == [0, 199, 199]                  # positions in the subset = logits[:, subset]
    assert SYN[ds.subset[199]] == syn[199]


def test_a_with_imagenet_folders_is_a_layout_error(tmp_path):
    class_folders(tmp_path / "imagenet-a", SYN, {SYN[0]: 1})
    with pytest.raises(DatasetLayoutError, match="expected the 200 wnid class folders.*not expected"):
        open_dataset("a", data_root=tmp_path)


@pytest.mark.parametrize("name", ["a", "r"])
def test_clean_baselines_restrict_imagenet_val(tmp_path, name):
    idx = subset_indices(name)
    outside = next(c for c in range(1000) if c not in idx)
    class_folders(tmp_path / "imagenet", SYN, {SYN[idx[0]]: 1, SYN[idx[5]]: 1, SYN[outside]: 3})
    ds = open_dataset(f"{name}-clean", data_root=tmp_path)
    assert ds.targets == [0, 5] and ds.n_expected == 10_000 and ds.spec.based_on == "imagenet"


def test_wrong_class_folders(tmp_path):
    root = class_folders(tmp_path / "imagenet", SYN[:999], {SYN[0]: 1})
    with pytest.raises(DatasetLayoutError, match="found 999 class folders.*missing: n15075141"):
        open_dataset("imagenet", data_root=tmp_path)
    (root / SYN[999]).mkdir()
    (root / "n00000001").mkdir()
    with pytest.raises(DatasetLayoutError, match="not expected: n00000001"):
        open_dataset("imagenet", data_root=tmp_path)


def test_empty_folder_is_a_layout_error(tmp_path):
    (tmp_path / "imagenet").mkdir()
    with pytest.raises(DatasetLayoutError, match="neither wnid class folders nor a flat folder"):
        open_dataset("imagenet", data_root=tmp_path)


# ---------------------------------------------------------------- not found

def test_not_found_says_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as e:
        open_dataset("a", data_root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "imagenet-a") in msg and "--data a=PATH" in msg and "VITBENCH_DATA" in msg
    monkeypatch.delenv("VITBENCH_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="VITBENCH_DATA is unset"):
        open_dataset("real")
    with pytest.raises(DatasetNotFoundError, match="--data imagenet=PATH"):
        open_dataset("r-clean", data_root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        open_dataset("v2", override=str(tmp_path / "nope"))


def test_vitbench_data_env(tmp_path, monkeypatch):
    class_folders(tmp_path / "imagenet-r", subset_synsets("r"), {subset_synsets("r")[3]: 1})
    monkeypatch.setenv("VITBENCH_DATA", str(tmp_path))
    assert open_dataset("r").targets == [3]


# ---------------------------------------------------------------- limit, transform, bad images

def test_limit_round_robins_over_classes_without_val_numbers(tmp_path):
    class_folders(tmp_path / "imagenet", SYN, {SYN[9]: 3, SYN[1]: 2})
    ds = open_dataset("imagenet", data_root=tmp_path, limit=3)
    assert ds.n_images == 3 and not ds.complete
    assert ds.targets == [1, 9, 1] and ds.files[2].endswith(f"{SYN[1]}/img_1.png")
    with pytest.raises(ValueError):
        open_dataset("imagenet", data_root=tmp_path, limit=0)


def test_limit_takes_the_same_val_images_in_every_layout(tmp_path):
    """ImageNet-val is ordered by validation file number in every layout, so `--limit N` is the
    first N official files (classes mixed), whether the images sit in wnid folders or flat."""
    labels = val_labels_of([7, 3, 12, 1, 9, 4])
    folders, flat_root = tmp_path / "folders" / "imagenet", tmp_path / "flat" / "imagenet"
    for n, c in labels.items():
        write_image(folders / SYN[c] / VAL.format(n))
        write_image(flat_root / VAL.format(n))
    for s in SYN:
        (folders / s).mkdir(parents=True, exist_ok=True)
    (flat_root / "labels.csv").write_text("".join(f"{VAL.format(n)},{SYN[c]}\n" for n, c in labels.items()))
    a = open_dataset("imagenet", data_root=tmp_path / "folders", limit=3)
    b = open_dataset("imagenet", data_root=tmp_path / "flat", limit=3)
    names = lambda ds: [f.rsplit("/", 1)[-1] for f in ds.files]   # noqa: E731
    assert names(a) == names(b) == [VAL.format(n) for n in (1, 3, 4)]
    assert a.targets == b.targets == [labels[n] for n in (1, 3, 4)]


def test_transform_is_applied(tmp_path):
    class_folders(tmp_path / "imagenet", SYN, {SYN[0]: 1})
    t = create_crop_transform(DataConfig((3, 16, 16), 0.875, "center", "bicubic", (0.5,) * 3, (0.5,) * 3))
    x, _, _ = open_dataset("imagenet", data_root=tmp_path, transform=t)[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8


def _with_corrupt(tmp_path):
    root = class_folders(tmp_path / "imagenet", SYN, {SYN[0]: 3})
    bad = root / SYN[0] / "img_1.png"
    bad.write_bytes(b"\x89PNG not really")
    (root / SYN[1] / "truncated.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 10)
    return str(bad)


def test_corrupt_image_raises_naming_the_file(tmp_path):
    bad = _with_corrupt(tmp_path)
    ds = open_dataset("imagenet", data_root=tmp_path)
    k = ds.files.index(bad)
    ds[ds.files.index(bad.replace("img_1", "img_0"))]
    with pytest.raises(BadImageError, match="img_1.png.*--skip-bad-images") as e:
        ds[k]
    assert e.value.file == bad


def test_corrupt_image_skipped_and_collated(tmp_path):
    bad = _with_corrupt(tmp_path)
    ds = open_dataset("imagenet", data_root=tmp_path, skip_bad_images=True)
    k = ds.files.index(bad)
    truncated = next(f for f in ds.files if f.endswith("truncated.JPEG"))
    assert isinstance(ds[k], BadImage) and ds[k].file == bad
    images, targets, indices, skipped = collate_eval([ds[i] for i in range(len(ds))])
    good = [i for i, f in enumerate(ds.files) if f not in (bad, truncated)]
    assert images.shape == (2, 3, 30, 40) and targets.tolist() == [0, 0] and indices.tolist() == good
    assert sorted(skipped) == sorted([bad, truncated])
    images, targets, indices, skipped = collate_eval([ds[k]])
    assert images.numel() == 0 and len(targets) == 0 and skipped == [bad]


def test_dataloader_with_workers(tmp_path):
    _with_corrupt(tmp_path)
    t = create_crop_transform(DataConfig((3, 16, 16), 0.9, "center", "bilinear", (0.5,) * 3, (0.5,) * 3))
    ds = open_dataset("imagenet", data_root=tmp_path, skip_bad_images=True, transform=t)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_eval)
    seen, skipped = [], []
    for images, _targets, indices, sk in loader:
        assert images.shape[1:] == (3, 16, 16) or images.numel() == 0
        seen += indices.tolist()
        skipped += sk
    good = [i for i, f in enumerate(ds.files) if "img_1" not in f and "truncated" not in f]
    assert sorted(seen) == good and len(skipped) == 2
