"""What the tests share: the paths of the fixtures, the colour dummy model, generated datasets, the
run helpers and the golden rule of ../shared/golden/README.md (deterministic weights and input)."""
from __future__ import annotations

import csv
import io
import json
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file

from vitbench import cli
from vitbench.catalog import imagenet_synsets, subset_indices, subset_synsets
from vitbench.data.config import DataConfig
from vitbench.records import eval_path, read_record
from vitbench.run import RunConfig

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
GOLDEN = FIXTURES / "golden"


# ---------------------------------------------------------------------------- the colour dummy model

DUMMY_CONFIG = DataConfig((3, 32, 32), 1.0, "center", "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


_LEVELS = tuple(15 + 25 * i for i in range(10))     # 10^3 = 1000 colours, 25 apart per channel


def class_colour(c: int) -> tuple[int, int, int]:
    """The RGB colour of class c's images, one per ImageNet class."""
    return (_LEVELS[c // 100], _LEVELS[(c // 10) % 10], _LEVELS[c % 10])


class ColourModel(nn.Module):
    """logits[c] = -100 * |mean colour - colour(c)|^2 for c in `classes`, -1e4 elsewhere;
    `boost` classes get +1e3 (a logit that must lose once restricted to a subset)."""

    def __init__(self, classes=range(1000), boost=(), num_classes: int = 1000):
        super().__init__()
        palette = torch.tensor([class_colour(c) for c in range(num_classes)], dtype=torch.float32) / 255
        self.palette = nn.Parameter(palette)                                       # (C, 3)
        bias = torch.full((num_classes,), -1e4)
        bias[list(classes)] = 0.0
        bias[list(boost)] = 1e3
        self.register_buffer("bias", bias)
        self.data_config = DUMMY_CONFIG
        self.num_classes = num_classes

    def forward(self, x):
        mean = torch.tensor(self.data_config.mean, device=x.device, dtype=x.dtype).view(1, 3)
        std = torch.tensor(self.data_config.std, device=x.device, dtype=x.dtype).view(1, 3)
        rgb = x.mean(dim=(2, 3)) * std + mean                                      # (B, 3) in [0, 1]
        d2 = ((rgb[:, None, :] - self.palette[None].to(x.dtype)) ** 2).sum(-1)     # (B, C)
        return -100.0 * d2 + self.bias.to(x.dtype)


def solid_batch(classes, size: int = 32) -> torch.Tensor:
    """uint8 [B, 3, size, size], image i filled with class_colour(classes[i])."""
    rgb = torch.tensor([class_colour(c) for c in classes], dtype=torch.uint8)     # (B, 3)
    return rgb[:, :, None, None].expand(-1, -1, size, size).contiguous()


class _Batches:
    """A stand-in loader: a list of collate_eval-style batches with a `dataset` of the right length."""

    def __init__(self, batches):
        self.batches = batches
        self.dataset = list(range(sum(len(b[1]) for b in batches)))

    def __iter__(self):
        return iter(self.batches)


def make_loader(image_classes, targets=None, batch: int = 4, skipped=()):
    targets = list(image_classes) if targets is None else list(targets)
    out = []
    for s in range(0, len(targets), batch):
        imgs = solid_batch(image_classes[s:s + batch])
        out.append((imgs, torch.tensor(targets[s:s + batch]), torch.arange(s, s + len(imgs)),
                    list(skipped) if s == 0 else []))
    return _Batches(out)



# ---------------------------------------------------------------------------- generated datasets

CKPT = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"

CKPT2 = "vit_small_patch16_224.augreg_in21k_ft_in1k"

def write_image(path: Path, cls: int, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), class_colour(cls)).save(path, quality=95)
    return path

def val_name(n: int) -> str:
    return f"ILSVRC2012_val_{n:08d}.JPEG"

def make_wnid_folders(root: Path, items, wnids=None) -> Path:
    """root/<wnid>/ for every expected wnid (the layout check wants them all); items: (number, class,
    colour class) -> root/<wnid of class>/ILSVRC2012_val_<number>.JPEG in the colour's colour."""
    wnids = wnids or imagenet_synsets()
    for w in wnids:
        (root / w).mkdir(parents=True, exist_ok=True)
    syn = imagenet_synsets()
    for n, cls, colour in items:
        write_image(root / syn[cls] / val_name(n), colour)
    return root

def make_flat(root: Path, items, labels_file: str = "labels.csv") -> Path:
    """root/ILSVRC2012_val_<n>.JPEG + a filename,label csv (label = class index)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [("filename", "label")]
    for n, cls, colour in items:
        write_image(root / val_name(n), colour)
        rows.append((val_name(n), str(cls)))
    with open(root / labels_file, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root

def make_numbered(root: Path, items) -> Path:
    for i in range(1000):
        (root / str(i)).mkdir(parents=True, exist_ok=True)
    for k, (cls, colour) in enumerate(items):
        write_image(root / str(cls) / f"img{k:03d}.jpeg", colour)
    return root

def base_cfg(tmp_path, **kw) -> RunConfig:
    values = dict(checkpoints=(CKPT,), datasets=("imagenet",), data_root=tmp_path / "data", data_overrides=(),
                  device="cpu", precision="fp32", batch_size=4, workers=0, limit=None,
                  weights_dir=tmp_path / "weights", results_dir=tmp_path / "results",
                  reports_dir=tmp_path / "reports", force=False, skip_bad_images=False, bench=None,
                  report=False)
    values.update(kw)
    return RunConfig(**values)



TEN = [(n, n - 1, n - 1 if n != 10 else 42) for n in range(1, 11)]


def subset_data(root: Path, n_val: int = 12, n_shift: int = 3, noise: bool = False) -> dict[str, list[str]]:
    """ImageNet-val (wnid folders, val-numbered: ReaL works) holding images of R-only, A-only, both
    and neither classes; imagenet-r and imagenet-a with a few images each. Returns the files."""
    r, a = set(subset_indices("r")), set(subset_indices("a"))
    pick = [sorted(r - a)[:3], sorted(a - r)[:3], sorted(r & a)[:3], sorted(set(range(1000)) - r - a)[:3]]
    classes = [c for k in range(3) for group in pick for c in group[k:k + 1]][:n_val]
    rng = np.random.default_rng(0)
    syn = imagenet_synsets()

    def img(path: Path, cls: int) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        if noise:
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path, quality=95)
        else:
            write_image(path, cls)
        return str(path)

    files = {"imagenet": [], "imagenet-r": [], "imagenet-a": []}
    make_wnid_folders(root / "imagenet", [])
    for n, c in enumerate(classes, start=1):
        files["imagenet"].append(img(root / "imagenet" / syn[c] / f"ILSVRC2012_val_{n:08d}.JPEG", c))
    for folder, sub in (("imagenet-r", "r"), ("imagenet-a", "a")):
        for w in subset_synsets(sub):
            (root / folder / w).mkdir(parents=True, exist_ok=True)
        for k, c in enumerate(subset_indices(sub)[:n_shift]):
            files[folder].append(img(root / folder / syn[c] / f"{folder}_{k}.jpg", c))
    return files



# ---------------------------------------------------------------------------- running

def cli_run(tmp_path, *extra, names=(CKPT,), data=True, weights=True) -> int:
    argv = ["run", *names, "--results-dir", str(tmp_path / "results"), "--reports-dir",
            str(tmp_path / "reports"), "--workers", "0", "--batch-size", "4", "--no-bench", "--no-report"]
    if data:
        argv += ["--data-root", str(tmp_path / "data")]
    if weights:
        argv += ["--weights-dir", str(tmp_path / "weights")]
    return cli.main(argv + list(extra))


def rec(tmp_path, dataset, ckpt=CKPT, precision="fp32"):
    return read_record(eval_path(tmp_path / "results", dataset, ckpt, precision))





def csv_rows(tmp_path, name="results-imagenet.csv"):
    return list(csv.DictReader(open(tmp_path / "results" / name, encoding="utf-8")))



# ---------------------------------------------------------------------------- Hugging Face dataset copies

def png_bytes(colour) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(b, "PNG")
    return b.getvalue()


def hf_table(numbers, labels, paths=True):
    """An HF-style image/label table: image n is coloured as its label's class."""
    import datasets

    return datasets.Dataset.from_dict(
        {"image": [{"bytes": png_bytes(class_colour(max(c, 0))), "path": val_name(n) if paths else None}
                   for n, c in zip(numbers, labels, strict=True)],
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
            hf_table(numbers[part], labels[part]).to_parquet(
                str(root / "data" / f"{split}-{k:05d}-of-00002.parquet"))
    return root



# ---------------------------------------------------------------------------- the golden rule


def golden_tensor(key: str, shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 4294967296 + zlib.crc32(key.encode()))
    t = torch.randn(tuple(shape), generator=g, dtype=torch.float32)
    last = key.rsplit(".", 1)[-1]
    if last == "weight" and len(shape) == 1:
        return 1.0 + 0.1 * t          # norm scales
    if last.startswith("gamma"):
        return 0.1 + 0.05 * t         # layer scale
    return 0.02 * t


def golden_state_dict(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Golden values for every floating tensor of `reference` (a state dict); integer buffers kept."""
    return {k: golden_tensor(k, v.shape) if v.is_floating_point() else v.clone()
            for k, v in reference.items()}


def golden_state_dict_from_manifest(entries) -> dict[str, torch.Tensor]:
    """Golden tensors for a manifest's `state_dict` (float keys only): a list of [key, shape, dtype]
    (the hybrid's manifest) or a dict {key: {"shape": ..., "dtype": ...}} (the other hf/ manifests)."""
    if isinstance(entries, dict):
        entries = [(k, e["shape"], e["dtype"]) for k, e in entries.items()]
    return {k: golden_tensor(k, shape) for k, shape, dtype in entries if "float" in dtype}


def hf_golden_folder(folder: Path, case: str) -> Path:
    """The golden transformers checkpoint `case` (golden/hf/<case>/) as the Hub holds it: its config
    files, and its golden weights under transformers' keys in model.safetensors."""
    import shutil

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(GOLDEN / "hf" / case / f, folder / f)
    entries = json.loads((GOLDEN / "hf" / case / "manifest.json").read_text())["state_dict"]
    save_file(golden_state_dict_from_manifest(entries), str(folder / "model.safetensors"))
    return folder


def golden_input(input_size) -> torch.Tensor:
    _, h, w = input_size
    return torch.randn((2, 3, h, w), generator=torch.Generator().manual_seed(1234), dtype=torch.float32)


def timm_manifest(arch: str) -> dict:
    return json.loads((GOLDEN / "timm" / f"{arch}.json").read_text())


def timm_outputs(arch: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "timm" / f"{arch}.safetensors"))
