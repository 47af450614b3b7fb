"""Benchmark (not a test): images/s of decode + resize/crop from a webdataset shard, a zip and a parquet
file, against the same images as files in class folders, in one process.

    python scripts/benchmark_data.py                       # 1000 generated 500x375 JPEGs, 224 center crop
    python scripts/benchmark_data.py --images 4000 --repeats 5

Each format is opened by vitbench's own readers (`open_dataset("a", ...)`: ImageNet-A's 200 classes,
--images / 200 images each) and read item by item through `EvalDataset.__getitem__` with the eval
crop (bicubic resize to 248, center crop 224), as one DataLoader worker would. The files are read
once before timing (page cache warm), so the numbers compare the read paths, not the disk. The
best of --repeats passes is reported, and its ratio to the folder's.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_jpegs(n: int, seed: int = 0) -> list[bytes]:
    """n JPEGs of 500x375 (a typical ImageNet-val size) with smooth content and some noise, quality 90."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.integers(0, 256, (375 // 25, 500 // 25, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((500, 375), Image.BICUBIC)
        noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, (375, 500, 3)), 0, 255)
        b = io.BytesIO()
        Image.fromarray(noisy.astype(np.uint8)).save(b, "JPEG", quality=90)
        out.append(b.getvalue())
    return out


def write_formats(root: Path, images: list[bytes]) -> dict[str, Path]:
    """The same images as class folders, a webdataset shard, a zip and a parquet file."""
    import datasets

    from vitbench.catalog import subset_synsets

    datasets.disable_progress_bars()

    syn = subset_synsets("a")
    rows = [(k % 200, f"img_{k:06d}", data) for k, data in enumerate(images)]
    folder = root / "folder" / "imagenet-a"
    for w in syn:
        (folder / w).mkdir(parents=True)
    for c, name, data in rows:
        (folder / syn[c] / f"{name}.JPEG").write_bytes(data)
    shards = root / "wds"
    shards.mkdir()
    with tarfile.open(shards / "a-000.tar", "w") as tf:
        for c, name, data in rows:
            for ext, blob in (("jpg", data), ("cls", str(c).encode()), ("json", json.dumps({"label": c}).encode())):
                info = tarfile.TarInfo(f"{name}.{ext}")
                info.size = len(blob)
                tf.addfile(info, io.BytesIO(blob))
    zpath = root / "a.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as zf:
        for c, name, data in rows:
            zf.writestr(f"imagenet-a/{syn[c]}/{name}.JPEG", data)
    ppath = root / "parquet" / "test-00000-of-00001.parquet"
    ppath.parent.mkdir()
    features = datasets.Features({"image": datasets.Image(), "wnid": datasets.Value("string")})
    datasets.Dataset.from_dict(
        {"image": [{"bytes": data, "path": f"{name}.JPEG"} for _, name, data in rows],
         "wnid": [syn[c] for c, _, _ in rows]}, features=features).to_parquet(str(ppath))
    return {"folder": root / "folder", "webdataset": shards, "zip": zpath, "parquet": ppath}


def images_per_sec(datasets: dict, repeats: int) -> dict[str, float]:
    """Best images/s of each dataset over `repeats` passes, the formats taking turns within a repeat
    (a shared machine's load then weighs on all of them alike)."""
    best = {k: float("inf") for k in datasets}
    for _ in range(repeats):
        for kind, ds in datasets.items():
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            best[kind] = min(best[kind], time.perf_counter() - t0)
    return {k: len(datasets[k]) / t for k, t in best.items()}


class _Undecoded:
    """A dataset's items as the bytes its loader reads, undecoded: what the read path alone costs."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds._load.read(self.ds.rows[i])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000, help="images (a multiple of 200 keeps classes even)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)

    import logging

    import torch

    from vitbench.data.config import DataConfig
    from vitbench.data.datasets import open_dataset
    from vitbench.data.transforms import create_crop_transform

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)
    crop = create_crop_transform(DataConfig((3, args.size, args.size), 0.9, "center", "bicubic",
                                            (0.5,) * 3, (0.5,) * 3))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_formats(Path(tmp), make_jpegs(args.images))
        opened = {}
        for kind, path in paths.items():
            if kind == "folder":
                opened[kind] = open_dataset("a", data_root=path, transform=crop)
            else:
                opened[kind] = open_dataset("a", override=str(path), transform=crop)
            assert len(opened[kind]) == args.images, (kind, len(opened[kind]))
        for f in Path(tmp).rglob("*"):           # warm the page cache: compare read paths, not the disk
            if f.is_file():
                f.read_bytes()
        rates = images_per_sec(opened, args.repeats)
        reads = images_per_sec({k: _Undecoded(ds) for k, ds in opened.items()}, args.repeats)
        mb = sum(len(b) for b in make_jpegs(4)) / 4 / 1e3
        print(f"{args.images} JPEGs of 500x375 (~{mb:.0f} kB), decode + resize/crop to {args.size}, "
              f"1 thread, best of {args.repeats}:")
        for kind, rate in rates.items():
            print(f"  {kind:<11} {rate:8.1f} images/s   {rate / rates['folder']:.3f} x folder   "
                  f"(reading the bytes alone: {reads[kind]:9.0f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
