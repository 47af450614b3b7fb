"""Datasets found by name in the Hugging Face cache or fetched from the Hub, read where they lie
(vitbench.data.sources, archives, inventory). No network: each test builds an HF cache under tmp_path
(datasets--ORG--NAME/{blobs,refs/main,snapshots/<sha>}) in each default repo's real layout, from
small generated images whose colour encodes their class (`class_colour`); the Hub, where a test needs
one, is a fake that writes into that cache."""
from __future__ import annotations

import builtins
import functools
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from support import class_colour
from vitbench import hub
from vitbench.catalog import imagenet_lemmas, imagenet_synsets, real_labels, subset_indices, subset_synsets
from vitbench.data import sources
from vitbench.data.archives import EXTRACTED_MARKER
from vitbench.data.datasets import (
    DATASETS,
    DatasetLayoutError,
    DatasetNotFoundError,
    collate_eval,
    open_dataset,
)
from vitbench.data.inventory import describe_sources, fetch, fetch_plan
from vitbench.data.layouts import val_number
from vitbench.data.specs import hub_sources
from vitbench.records import eval_path, read_record

SYN = imagenet_synsets()
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
ILSVRC, WDS, V2, SKETCH, R, A = (
    "ILSVRC/imagenet-1k", "timm/imagenet-1k-wds", "vaishaal/ImageNetV2", "songweig/imagenet_sketch",
    "axiong/imagenet-r", "clip-benchmark/wds_imagenet-a")


def val_class(n: int) -> int:
    """ImageNet-val image n (1..1000 here) is of class (37 n) mod 1000: every class once, mixed."""
    return (n * 37) % 1000


# ---------------------------------------------------------------------------- building HF caches

@functools.lru_cache(maxsize=None)
def image_bytes(c: int, fmt: str = "JPEG") -> bytes:
    b = io.BytesIO()
    from PIL import Image
    Image.new("RGB", (8, 6), class_colour(c)).save(b, fmt, quality=95)
    return b.getvalue()


def put(cache: Path, repo: str, files: dict[str, bytes], commit: str = COMMIT, ref: bool = True) -> Path:
    """The HF cache layout: blobs/<sha256>, snapshots/<commit>/<path> -> ../blobs/<sha256>, refs/main."""
    folder = cache / sources.repo_folder(repo)
    snap = folder / "snapshots" / commit
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    if ref:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / "main").write_text(commit)
    for path, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snap


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return b.getvalue()


def parquet_bytes(columns: dict, features) -> bytes:
    import datasets
    b = io.BytesIO()
    datasets.Dataset.from_dict(columns, features=features).to_parquet(b)
    return b.getvalue()


def class_words() -> list[str]:
    """ImageNet's class words in class-index order, as a ClassLabel takes them: unique (the second
    'crane', the machine, renamed)."""
    words = list(imagenet_lemmas())
    assert words[134] == words[517] == "crane"
    words[517] = "crane (machine)"
    return words


def ilsvrc_files(names=None, split="validation", n_files=14, numbers=range(1, 1001)) -> dict[str, bytes]:
    """data/<split>-0000k-of-000NN.parquet: image {bytes, path ILSVRC2012_val_..._<wnid>.JPEG}, label a
    ClassLabel named by class words (imagenet_lemmas), as ILSVRC/imagenet-1k has them."""
    import datasets
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=list(names or class_words()))})
    numbers = list(numbers)
    out = {}
    for k in range(n_files):
        part = numbers[k * len(numbers) // n_files:(k + 1) * len(numbers) // n_files]
        rows = {"image": [{"bytes": image_bytes(val_class(n)),
                           "path": f"ILSVRC2012_val_{n:08d}_{SYN[val_class(n)]}.JPEG"} for n in part],
                "label": [val_class(n) % len(features["label"].names) for n in part]}
        out[f"data/{split}-{k:05d}-of-{n_files:05d}.parquet"] = parquet_bytes(rows, features)
    return out


def imagenet_wds_files(keys=None, n_shards: int = 4, seed: int = 0) -> dict[str, bytes]:
    """imagenet1k-validation-NN.tar: __key__ ILSVRC2012_val_XXXXXXXX with jpg, cls, json, samples
    shuffled across shards (timm/imagenet-1k-wds)."""
    samples = []
    for n in range(1, 1001):
        c = val_class(n)
        key = keys(n) if keys else f"ILSVRC2012_val_{n:08d}"
        meta = {"filename": f"{SYN[c]}/ILSVRC2012_val_{n:08d}.JPEG", "label": c}
        samples.append([(f"{key}.jpg", image_bytes(c)), (f"{key}.cls", str(c).encode()),
                        (f"{key}.json", json.dumps(meta).encode())])
    random.Random(seed).shuffle(samples)
    return {f"imagenet1k-validation-{k:02d}.tar": tar_bytes([m for s in samples[k::n_shards] for m in s])
            for k in range(n_shards)}


def v2_files() -> dict[str, bytes]:
    """imagenetv2-matched-frequency.tar.gz: imagenetv2-matched-frequency-format-val/<class index>/<hash>.jpeg."""
    top = "imagenetv2-matched-frequency-format-val"
    return {"imagenetv2-matched-frequency.tar.gz": tar_bytes(
        [(f"{top}/{c}/{hashlib.sha1(str(c).encode()).hexdigest()}.jpeg", image_bytes(c)) for c in range(1000)],
        mode="w:gz")}


def sketch_files() -> dict[str, bytes]:
    """data/ImageNet-Sketch.zip: sketch/<wnid>/<wnid>_<k>.JPEG (folder entries too)."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("sketch/", b"")
        for c, w in enumerate(SYN):
            zf.writestr(f"sketch/{w}/", b"")
            zf.writestr(f"sketch/{w}/{w}_1.JPEG", image_bytes(c))
    return {"data/ImageNet-Sketch.zip": b.getvalue()}


def r_files() -> dict[str, bytes]:
    """test/test-0000k-of-00005.parquet: columns image, wnid, class_name (axiong/imagenet-r)."""
    import datasets
    features = datasets.Features({"image": datasets.Image(), "wnid": datasets.Value("string"),
                                  "class_name": datasets.Value("string")})
    idx = subset_indices("r")
    out = {}
    for k in range(5):
        part = idx[k * 40:(k + 1) * 40]
        out[f"test/test-{k:05d}-of-00005.parquet"] = parquet_bytes(
            {"image": [{"bytes": image_bytes(c), "path": f"{SYN[c]}/art_0.jpg"} for c in part],
             "wnid": [SYN[c] for c in part], "class_name": [imagenet_lemmas()[c] for c in part]}, features)
    return out


def a_files(webp: bool = True) -> dict[str, bytes]:
    """test/{0..3}.tar: sNNNNNNN.jpg (some .webp) + sNNNNNNN.cls, cls = position in the sorted 200
    ImageNet-A wnids (clip-benchmark/wds_imagenet-a), and the repo's other files."""
    idx = subset_indices("a")
    samples = []
    for pos, c in enumerate(idx):
        ext, fmt = ("webp", "WEBP") if webp and pos % 7 == 0 else ("jpg", "JPEG")
        samples.append([(f"s{pos:07d}.{ext}", image_bytes(c, fmt)), (f"s{pos:07d}.cls", str(pos).encode())])
    random.Random(1).shuffle(samples)
    out = {f"test/{k}.tar": tar_bytes([m for s in samples[k::4] for m in s]) for k in range(4)}
    out["test/nshards.txt"] = b"4"
    out["classnames.txt"] = "\n".join(imagenet_lemmas()[c] for c in idx).encode()
    return out


REPO_FILES = {ILSVRC: ilsvrc_files, WDS: imagenet_wds_files, V2: v2_files, SKETCH: sketch_files, R: r_files,
              A: a_files}
N_IMAGES = {"imagenet": 1000, "real": 1000, "v2": 1000, "sketch": 1000, "r": 200, "a": 200,
            "r-clean": 1000, "a-clean": 1000}   # what each set's source holds here (limit: a declared subset)


@pytest.fixture(scope="module")
def default_cache(tmp_path_factory):
    """An HF cache with every dataset's default repo, and an ILSVRC train shard beside its validation
    shards (which must never be opened)."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    for repo in (ILSVRC, V2, SKETCH, R, A):
        files = REPO_FILES[repo]()
        if repo == ILSVRC:
            train = ilsvrc_files(split="train", n_files=1, numbers=range(1, 3))
            files["data/train-00000-of-00294.parquet"] = train["data/train-00000-of-00001.parquet"]
            files["classes.py"] = b"IMAGENET2012_CLASSES = {}\n"
        put(cache, repo, files)
    return cache


@pytest.fixture(scope="module")
def wds_cache(tmp_path_factory):
    """An HF cache holding only ImageNet-val's alternative source, timm's webdataset shards."""
    cache = tmp_path_factory.mktemp("hf-wds") / "hub"
    put(cache, WDS, imagenet_wds_files())
    return cache


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    """Offline, no data root, an empty HF cache and vitbench cache in tmp_path, a fresh Hub state."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.delenv("VITBENCH_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("VITBENCH_CACHE", str(tmp_path / "vitbench-cache"))
    monkeypatch.setattr(hub, "HUB", hub.HubAccess(probe=lambda: pytest.fail("the Hub was probed")))
    return tmp_path / "hf" / "hub"


def use_cache(monkeypatch, cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


PALETTE = torch.tensor([class_colour(c) for c in range(1000)], dtype=torch.float32)     # (1000, 3)


def class_of_image(x: torch.Tensor) -> int:
    """The class whose colour a decoded image has (uint8 [3, H, W])."""
    d = ((PALETTE - x.float().mean(dim=(1, 2))) ** 2).sum(dim=1)        # (1000,)
    assert float(d.min()) < 3 * 4 ** 2
    return int(d.argmin())


def assert_labels_right(ds) -> None:
    """Every image's colour is the class its target says (targets are positions in a class subset)."""
    for k in range(len(ds)):
        x, t, i = ds[k]
        want = ds.subset[t] if ds.subset is not None else t
        assert class_of_image(x) == want, (k, ds.files[k])


# ---------------------------------------------------------------------------- found by name

@pytest.mark.parametrize("name,repo,kind", [
    ("imagenet", ILSVRC, "parquet"), ("real", ILSVRC, "parquet"), ("v2", V2, "tar.gz"),
    ("sketch", SKETCH, "zip"), ("r", R, "parquet"), ("a", A, "webdataset"),
    ("r-clean", ILSVRC, "parquet"), ("a-clean", ILSVRC, "parquet")])
def test_each_set_is_found_by_name_in_the_hf_cache(name, repo, kind, default_cache, monkeypatch):
    use_cache(monkeypatch, default_cache)
    ds = open_dataset(name, limit=N_IMAGES[name])
    spec = DATASETS[name]
    assert ds.source.repo == repo and ds.source.revision == COMMIT and ds.source.kind == "hf-cache"
    assert ds.layout == f"{kind}:{repo}"
    expected_images = 200 if spec.subset else N_IMAGES[name]
    assert ds.n_images == expected_images and not ds.complete
    assert ds.fingerprint.repo == repo and ds.fingerprint.root == f"hf://datasets/{repo}@{COMMIT}"
    assert ds.fingerprint.files == sorted(ds.source.files)
    assert all(matches_any(f, hub_sources(name)[0].files) for f in ds.source.files)
    assert_labels_right(ds)
    if name == "real":                                   # ReaL keys on the file name inside image.path
        assert ds.label_sets == [real_labels()[val_number(f) - 1] for f in ds.files]
    if name == "v2":                                     # extracted once, beside a marker written last
        assert (Path(ds.root) / EXTRACTED_MARKER).is_file() or (Path(ds.root).parent / EXTRACTED_MARKER).is_file()


def matches_any(path: str, patterns) -> bool:
    return sources.matches(path, patterns)


def test_hf_home_locates_the_cache_too(default_cache, monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub").symlink_to(default_cache)
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(home))
    assert open_dataset("a", limit=200).source.repo == A


def test_ilsvrc_reads_only_validation_files(default_cache, monkeypatch):
    import pyarrow.parquet as pq

    use_cache(monkeypatch, default_cache)
    opened = []
    real_open, real_pf = builtins.open, pq.ParquetFile

    def spy_open(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    class SpyParquetFile(real_pf):
        def __init__(self, source, *a, **k):
            opened.append(str(source))
            super().__init__(source, *a, **k)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(pq, "ParquetFile", SpyParquetFile)
    ds = open_dataset("imagenet", limit=1000)
    ds[0], ds[999]
    assert len(ds.source.files) == 14 and all(f.startswith("data/validation-") for f in ds.source.files)
    assert [f for f in opened if "train-" in f or "classes.py" in f] == []
    assert any("validation-00013-of-00014" in f for f in opened)


def test_real_keys_by_name_in_shuffled_webdataset_shards(wds_cache, monkeypatch):
    use_cache(monkeypatch, wds_cache)
    ds = open_dataset("real", limit=1000)
    assert ds.source.repo == WDS and ds.layout == f"webdataset:{WDS}"
    numbers = [val_number(f) for f in ds.files]
    assert numbers == list(range(1, 1001))                       # evaluated in validation order
    rows = list(ds.rows)
    assert rows != sorted(rows)                                  # ... which is not the shards' order
    assert ds.label_sets == [real_labels()[n - 1] for n in numbers]
    assert ds.targets == [val_class(n) for n in numbers]
    assert_labels_right(ds)


def test_the_same_images_from_another_source_are_other_data(default_cache, wds_cache, monkeypatch, tmp_path):
    use_cache(monkeypatch, default_cache)
    parquet = open_dataset("imagenet", limit=1000)
    use_cache(monkeypatch, wds_cache)
    shards = open_dataset("imagenet", limit=1000)
    assert parquet.targets == shards.targets                      # the same images, labelled alike
    why = parquet.fingerprint.mismatch(shards.fingerprint)
    assert why == f"data source {ILSVRC}@0123456 (14 files) -> {WDS}@0123456 (4 files)"
    # the same repo and revision in another HF cache (another machine) is the same data
    moved = tmp_path / "moved" / "hub"
    shutil.copytree(default_cache, moved, symlinks=True)
    use_cache(monkeypatch, moved)
    again = open_dataset("imagenet", limit=1000)
    assert again.root != parquet.root and parquet.fingerprint.mismatch(again.fingerprint) is None
    assert parquet.fingerprint == again.fingerprint


def test_archive_loaders_work_in_dataloader_workers(default_cache, monkeypatch):
    use_cache(monkeypatch, default_cache)
    for name in ("a", "sketch"):
        ds = open_dataset(name, limit=40)
        loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_eval)
        seen = []
        for images, targets, indices, skipped in loader:
            assert not skipped
            for x, t in zip(images, targets, strict=True):
                assert class_of_image(x) == (ds.subset[t] if ds.subset else t)
            seen += indices.tolist()
        assert sorted(seen) == list(range(40))


def test_local_archives_are_read_in_place(tmp_path):
    """--data NAME=PATH: a folder of shards, a zip, a .tar.gz (extracted once into VITBENCH_CACHE)."""
    def write(folder: Path, files: dict[str, bytes]) -> Path:
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        return folder

    a = write(tmp_path / "a", a_files(webp=False))
    ds = open_dataset("a", override=str(a / "test"))
    assert ds.layout == "webdataset" and ds.n_images == 200 and ds.source.repo is None
    assert ds.files[0].startswith(str(a / "test") + "/")
    sketch = write(tmp_path / "s", sketch_files()) / "data" / "ImageNet-Sketch.zip"
    ds = open_dataset("sketch", override=str(sketch), limit=5)
    assert ds.layout == "wnid-folders in zip" and ds.files[0].startswith(f"{sketch}/sketch/")
    v2 = write(tmp_path / "v", v2_files()) / "imagenetv2-matched-frequency.tar.gz"
    ds = open_dataset("v2", override=str(v2), limit=3)
    assert ds.root.startswith(str(tmp_path / "vitbench-cache")) and ds.layout == "numbered-folders"
    assert_labels_right(ds)


# ---------------------------------------------------------------------------- .tar.gz: extracted once

def test_an_interrupted_extraction_is_redone(monkeypatch, env):
    put(env, V2, v2_files())
    calls = []
    real_extract = tarfile.TarFile.extract

    def dies_midway(self, member, path="", *a, **k):
        calls.append(member.name)
        if len(calls) == 300:
            raise KeyboardInterrupt("killed midway")
        return real_extract(self, member, path, *a, **k)

    monkeypatch.setattr(tarfile.TarFile, "extract", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        open_dataset("v2", limit=1000)
    dest = (sources.vitbench_cache_dir() / "extracted" / sources.repo_folder(V2) / COMMIT
            / "imagenetv2-matched-frequency")
    assert not dest.exists() and list(dest.parent.iterdir()) == []    # no half-extracted folder is left
    monkeypatch.setattr(tarfile.TarFile, "extract", real_extract)
    # a folder from an extraction that never finished (no marker) is not used: it is done again
    (dest / "imagenetv2-matched-frequency-format-val" / "0").mkdir(parents=True)
    (dest / "junk.txt").write_text("half")
    # and a killed extraction's leftover (its process is gone) is removed
    stale = dest.parent / f".{dest.name}.partial-{__import__('socket').gethostname()}-999999999"
    stale.mkdir()
    ds = open_dataset("v2", limit=1000)
    assert (dest / EXTRACTED_MARKER).is_file() and not (dest / "junk.txt").exists() and not stale.exists()
    assert ds.n_images == 1000
    assert_labels_right(ds)
    marker = (dest / EXTRACTED_MARKER).stat().st_mtime_ns
    open_dataset("v2", limit=1000)                                     # once: not extracted again
    assert (dest / EXTRACTED_MARKER).stat().st_mtime_ns == marker


# ---------------------------------------------------------------------------- sources that lack what a set needs

def test_real_from_a_source_without_file_names(monkeypatch, env):
    put(env, WDS, imagenet_wds_files(keys=lambda n: f"s{n:07d}"))
    assert open_dataset("imagenet", limit=1000).n_images == 1000      # fine for plain ImageNet-val
    with pytest.raises(DatasetLayoutError, match=r"ReaL labels are keyed by validation file name.*but "
                                                 r"'imagenet1k-validation-\d\d.tar/s\d{7}\.jpg' in "
                                                 r"timm/imagenet-1k-wds@0123456 is not one"):
        open_dataset("real", limit=1000)


def test_a_ten_class_dataset_given_as_imagenet(monkeypatch, env):
    words = ["tench", "English springer", "cassette player", "chain saw", "church", "French horn",
             "garbage truck", "gas pump", "golf ball", "parachute"]
    put(env, ILSVRC, ilsvrc_files(names=words))
    with pytest.raises(DatasetLayoutError, match=r"ImageNet-1k val: ILSVRC/imagenet-1k@0123456 \(14 files: "
                                                 r"validation-00000-of-00014.parquet, ...\)"
                                                 r".*label has 10 classes, expected 1000"):
        open_dataset("imagenet", limit=1000)


def test_a_ten_class_webdataset_given_as_imagenet(monkeypatch, env):
    ten = [(f"k{n:04d}", n % 10) for n in range(50)]
    put(env, WDS, {"imagenet1k-validation-00.tar": tar_bytes(
        [m for k, c in ten for m in ((f"{k}.jpg", image_bytes(c)), (f"{k}.cls", str(c).encode()))])})
    with pytest.raises(DatasetLayoutError, match=r"timm/imagenet-1k-wds@0123456.*images of 10 classes; expected "
                                                 r"the 1000 classes.*missing \(no image\): n01530575"):
        open_dataset("imagenet", limit=50)


def test_class_words_out_of_order_are_refused(monkeypatch, env):
    words = class_words()
    words[3], words[4] = words[4], words[3]
    put(env, ILSVRC, ilsvrc_files(names=words))
    with pytest.raises(DatasetLayoutError, match=r"not the 1000 classes in class-index \(sorted wnid\) order: "
                                                 r"position 3 is 'hammerhead"):
        open_dataset("imagenet", limit=1000)


def test_a_truncated_shard(monkeypatch, env):
    files = a_files()
    files["test/2.tar"] = files["test/2.tar"][:len(files["test/2.tar"]) // 2]
    put(env, A, files)
    with pytest.raises(DatasetLayoutError, match=r"ImageNet-A from clip-benchmark/wds_imagenet-a@0123456.*"
                                                 r"test/2.tar: truncated"):
        open_dataset("a", limit=200)


def test_a_count_that_is_neither_the_full_set_nor_a_declared_subset(default_cache, monkeypatch):
    use_cache(monkeypatch, default_cache)
    with pytest.raises(DatasetLayoutError, match=r"ImageNet-A from clip-benchmark/wds_imagenet-a@0123456: 200 "
                                                 r"images, expected 7,500: neither the full set nor a declared subset"):
        open_dataset("a")
    assert open_dataset("a", limit=10).n_images == 10               # --limit declares the subset


def test_a_partial_cache_is_used_only_for_a_declared_subset(monkeypatch, env):
    files = a_files()
    del files["test/3.tar"]
    put(env, A, files)
    with pytest.raises(DatasetNotFoundError, match=r"has 3 of the 4 files test/\*.tar"):
        open_dataset("a")
    with pytest.raises(DatasetLayoutError, match=r"missing \(no image\)"):
        open_dataset("a", limit=10)                   # ... and even then, every class must be there


# ---------------------------------------------------------------------------- not found

def test_not_found_offline_names_the_three_places(env, tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        open_dataset("real", data_root=tmp_path / "data")
    msg = str(e.value)
    for part in (f"data folders: {tmp_path / 'data' / 'imagenet'}", f"HF cache {env}: no {ILSVRC}",
                 f"HF cache {env}: no {WDS}", f"HF hub {ILSVRC}: not asked: offline (HF_HUB_OFFLINE=1)",
                 "--data-root DIR (holding imagenet/)", "--data imagenet=PATH", "vitbench data fetch imagenet",
                 "accept its terms at https://huggingface.co/datasets/ILSVRC/imagenet-1k", "hf auth login",
                 "HF_TOKEN", "HF_HOME"):
        assert part in msg, part
    assert msg.splitlines()[0].startswith("ImageNet-ReaL (real) not found (it uses the imagenet images)")


def test_without_network_the_hub_is_asked_once(monkeypatch, env):
    import huggingface_hub

    probes = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "HUB", hub.HubAccess(probe=lambda: probes.append(1) or "cannot connect to hf.co:443"))
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", lambda *a, **k: pytest.fail("asked"))
    for name in ("imagenet", "real", "v2", "a"):
        with pytest.raises(DatasetNotFoundError, match=r"unreachable \(cannot connect to hf.co:443\)"):
            open_dataset(name)
    assert probes == [1]


def test_a_hub_that_does_not_answer_is_asked_once_per_process(monkeypatch, env):
    import huggingface_hub

    asked = []

    def no_answer(self, repo_id, **kw):
        asked.append(repo_id)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "HUB", hub.HubAccess(probe=lambda: ""))
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", no_answer)
    for name in ("imagenet", "real", "r-clean", "v2"):
        with pytest.raises(DatasetNotFoundError, match="unreachable .*name resolution"):
            open_dataset(name)
    assert asked == [ILSVRC]


# ---------------------------------------------------------------------------- the Hub (a fake one)

def gated_error():
    from huggingface_hub.utils import GatedRepoError
    try:
        return GatedRepoError("403 Client Error: access to this gated repo is restricted", response=None)
    except (TypeError, AttributeError):          # newer clients require a response object
        e = GatedRepoError.__new__(GatedRepoError)
        Exception.__init__(e, "403 Client Error: access to this gated repo is restricted")
        return e


class FakeHub:
    """HfApi.dataset_info, get_hf_file_metadata and snapshot_download over `repos` {repo: {path: bytes}},
    writing into the HF cache they are given, as the real ones do."""

    def __init__(self, monkeypatch, repos: dict[str, dict[str, bytes]], gated=()):
        import huggingface_hub

        self.repos, self.gated, self.downloads, self.events = repos, set(gated), [], []
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(hub, "HUB", hub.HubAccess(probe=lambda: ""))
        monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info",
                            lambda api, repo_id, **kw: self.dataset_info(repo_id))
        monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", self.file_metadata)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)

    def dataset_info(self, repo_id):
        siblings = [SimpleNamespace(rfilename=p, size=len(b)) for p, b in self.repos[repo_id].items()]
        return SimpleNamespace(sha=HUB_COMMIT, siblings=siblings, gated="manual" if repo_id in self.gated else False)

    def file_metadata(self, url, **kw):
        if any(r in url for r in self.gated):
            raise gated_error()
        return SimpleNamespace()

    def snapshot_download(self, repo_id, repo_type=None, revision=None, allow_patterns=None, cache_dir=None, **kw):
        assert repo_type == "dataset" and revision == HUB_COMMIT
        self.downloads.append((repo_id, sorted(allow_patterns)))
        self.events.append("download")
        files = {p: b for p, b in self.repos[repo_id].items() if p in allow_patterns}
        return str(put(Path(cache_dir), repo_id, files, commit=HUB_COMMIT, ref=False))


def test_fetch_downloads_only_the_dataset_files_total_first(monkeypatch, env):
    repo = a_files()
    repo["README.md"] = b"# ImageNet-A"
    fake = FakeHub(monkeypatch, {A: repo})
    info, = describe_sources(["a"])
    shards = sorted(p for p in repo if p.endswith(".tar"))
    assert info.where == "hub" and info.repo == A and info.download_bytes == sum(len(repo[p]) for p in shards)
    plan = fetch_plan(["a"])
    assert [i.source.repo for i in plan.items] == [A] and plan.total_bytes == info.download_bytes
    assert plan.text().startswith("to download: ")
    after, = fetch(plan)
    assert fake.downloads == [(A, shards)]                          # only its files, not README/classnames
    assert (after.where, after.repo, after.revision, after.n_images) == ("hf-cache", A, HUB_COMMIT, 200)
    assert after.classes_ok and after.problem == "200 of 7,500 images: runs are labelled subsets"
    assert fetch_plan(["a"]).items == () and fetch(["a"])[0].where == "hf-cache"
    assert len(fake.downloads) == 1                                 # nothing when already there


def test_open_fetches_from_the_hub_when_nowhere_else(monkeypatch, env):
    fake = FakeHub(monkeypatch, {V2: v2_files()})
    ds = open_dataset("v2", limit=1000)
    assert ds.source.kind == "hf-hub" and ds.source.revision == HUB_COMMIT and fake.downloads == [
        (V2, ["imagenetv2-matched-frequency.tar.gz"])]
    assert_labels_right(ds)
    assert open_dataset("v2", limit=1000).source.kind == "hf-cache" and len(fake.downloads) == 1


def test_a_gated_repo_says_what_to_do(monkeypatch, env):
    fake = FakeHub(monkeypatch, {ILSVRC: ilsvrc_files()}, gated={ILSVRC})
    with pytest.raises(DatasetNotFoundError) as e:
        open_dataset("imagenet")
    msg = str(e.value)
    assert (f"HF hub {ILSVRC}: {ILSVRC} is gated: accept its terms at https://huggingface.co/datasets/{ILSVRC}"
            in msg and "hf auth login" in msg and "HF_TOKEN" in msg)
    assert fake.downloads == []


def test_no_download_without_the_disk_space(monkeypatch, env):
    fake = FakeHub(monkeypatch, {A: a_files()})
    monkeypatch.setattr(sources.shutil, "disk_usage", lambda p: SimpleNamespace(free=1000, total=1, used=0))
    with pytest.raises(DatasetNotFoundError, match=r"not enough disk space to fetch clip-benchmark/wds_imagenet-a: "
                                                   r"[\d.]+ MB needed in .*, 0.0 MB free"):
        open_dataset("a", limit=200)
    with pytest.raises(sources.HubUnavailable, match="not enough disk space"):
        fetch(["a"])
    assert fake.downloads == []


def test_under_torchrun_only_local_rank_0_downloads(monkeypatch, env):
    fake = FakeHub(monkeypatch, {A: a_files()})
    ds = open_dataset("a", limit=200, is_local_main=True, barrier=lambda: fake.events.append("barrier"))
    assert fake.events == ["download", "barrier"] and ds.n_images == 200
    # another rank on a fresh node: waits for its local rank 0 (here: the barrier puts the files in place)
    monkeypatch.setenv("HF_HUB_CACHE", str(env.parent / "node2"))
    fake.events.clear()

    def rank0_fetches():
        fake.events.append("barrier")
        put(env.parent / "node2", A, a_files(), commit=HUB_COMMIT)

    monkeypatch.setattr(fake, "snapshot_download", lambda *a, **k: pytest.fail("not local rank 0"))
    ds = open_dataset("a", limit=200, is_local_main=False, barrier=rank0_fetches)
    assert fake.events == ["barrier"] and ds.source.revision == HUB_COMMIT


# ---------------------------------------------------------------------------- vitbench data list

def test_describe_sources(default_cache, monkeypatch, tmp_path):
    use_cache(monkeypatch, default_cache)
    infos = {i.name: i for i in describe_sources()}
    assert list(infos) == list(DATASETS)
    for name, repo in (("imagenet", ILSVRC), ("v2", V2), ("sketch", SKETCH), ("r", R), ("a", A)):
        i = infos[name]
        assert (i.where, i.repo, i.revision, i.classes_ok) == ("hf-cache", repo, COMMIT, True), name
        assert i.n_images == (200 if DATASETS[name].subset else 1000) and i.n_expected == DATASETS[name].n_expected
        assert i.format.endswith(repo) and name in i.line()
    assert infos["a-clean"].n_images == 200 and infos["real"].repo == ILSVRC
    # a local folder comes first; an empty HF cache and no network: missing, saying where it looked
    (tmp_path / "data" / "imagenet-a").mkdir(parents=True)
    for w in subset_synsets("a"):
        (tmp_path / "data" / "imagenet-a" / w).mkdir()
    (tmp_path / "data" / "imagenet-a" / w / "x.jpg").write_bytes(image_bytes(subset_indices("a")[-1]))
    use_cache(monkeypatch, tmp_path / "empty")
    a, v2 = describe_sources(["a", "v2"], data_root=tmp_path / "data")
    assert (a.where, a.format, a.n_images) == ("folder", "wnid-folders", 1)
    assert a.location == str(tmp_path / "data" / "imagenet-a")
    assert v2.where == "missing" and "HF hub vaishaal/ImageNetV2: not asked: offline" in v2.problem


def test_describe_names_a_broken_source(monkeypatch, env):
    files = a_files()
    files["test/0.tar"] = files["test/0.tar"][:1000]
    put(env, A, files)
    info, = describe_sources(["a"])
    assert info.where == "broken" and "test/0.tar: truncated" in info.problem and info.classes_ok is False


# ---------------------------------------------------------------------------- scored by name, from the CLI

@pytest.mark.parametrize("name", ["imagenet", "real", "v2", "sketch", "r", "a"])
def test_each_set_is_scored_from_the_hf_cache_with_no_data_root(name, default_cache, monkeypatch, tmp_path,
                                                                 dummy, capsys):
    """`vitbench run` with no --data-root: the set comes from its default repo in the HF cache and is
    scored (solid-colour images: the colour dummy gets every one right)."""
    from support import CKPT, cli_run

    use_cache(monkeypatch, default_cache)
    assert cli_run(tmp_path, "--datasets", name, "--limit", str(N_IMAGES[name]), data=False) == 0
    rec = read_record(eval_path(tmp_path / "results", name, CKPT, "fp32"))
    expected = 100.0
    if name == "real":      # the dummy predicts the image's ImageNet label; ReaL's sets are the real ones
        sets = [real_labels()[n - 1] for n in range(1, N_IMAGES[name] + 1)]
        hits = [val_class(n) in s for n, s in zip(range(1, N_IMAGES[name] + 1), sets, strict=True) if s]
        expected = round(100.0 * sum(hits) / len(hits), 4)
        assert rec.n_scored == len(hits)
    assert rec.status == "ok" and rec.top1 == expected and rec.n_images > 0
    assert rec.provenance.data_fingerprint.repo == hub_sources(name)[0].repo
    assert rec.provenance.data_fingerprint.revision == COMMIT


def test_vitbench_data_list_and_fetch_from_the_cli(default_cache, monkeypatch, capsys):
    from vitbench import cli

    use_cache(monkeypatch, default_cache)
    assert cli.main(["data", "list", "v2", "a"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"v2: hf-cache {V2}@{COMMIT[:7]}") and "classes ok" in out[0]
    assert out[1].startswith(f"a: hf-cache {A}@{COMMIT[:7]}")
    # the cache holds 1,000 of V2's 10,000 images: fetch would complete it, but offline it cannot
    assert cli.main(["data", "fetch", "v2"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("to download: 0.0 MB in 0 file(s)") and "v2: cannot be fetched" in out and "offline" in out
    assert cli.main(["data", "fetch"]) == 2                              # names or --all
    assert "name the datasets to fetch, or pass --all" in capsys.readouterr().err
