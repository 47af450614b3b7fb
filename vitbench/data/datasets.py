"""Opening the eval datasets by name. What each dataset is (where it lives, how big it is, how it is
labelled, which classes it scores, its title, baseline and CSV name) is the table in
vitbench.data.specs, re-exported here.

    DATASETS["a"]            -> DatasetSpec (frozen)
    expand_datasets(["r"])   -> ["r-clean", "r"]          (baselines first)
    open_dataset("real", data_root=DIR) -> EvalDataset   (a torch Dataset)
    DataLoader(ds, collate_fn=collate_eval)               -> (images, targets, indices, skipped_files)

Targets are in the label space of the logits the evaluator scores: for a dataset with a class
`subset` (A, R and their clean baselines) the target is the *position* in `subset`, matching
`logits[:, subset]`; otherwise it is the ImageNet class index 0..999.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from vitbench.catalog import imagenet_synsets, real_labels, subset_indices
from vitbench.data.fingerprint import DataFingerprint, data_fingerprint  # noqa: F401
from vitbench.data.layouts import (
    WNID_RE,
    DatasetLayoutError,
    DatasetNotFoundError,
    Listing,
    is_image,
    load_hf,
    parse_source,
    read_class_folders,
    read_flat,
    read_hf,
    read_parquet,
    val_number,
)
from vitbench.data.specs import (
    DATASETS,
    DatasetSpec,
    check_dataset,
    expand_datasets,
    resolve_override,
    selectable_datasets,
    shift_datasets,
)
from vitbench.data.transforms import pil_to_uint8_tensor, to_rgb

log = logging.getLogger(__name__)

__all__ = [
    "DatasetSpec", "DATASETS", "selectable_datasets", "shift_datasets", "check_dataset", "expand_datasets",
    "open_dataset", "resolve_override", "EvalDataset",
    "collate_eval", "BadImage", "BadImageError", "DatasetNotFoundError", "DatasetLayoutError",
    "data_fingerprint", "ACCEPTED_FORMS",
]

ACCEPTED_FORMS = (
    "a folder of wnid class folders (n01440764/...), of numbered class folders 0..999 (ImageNetV2), or "
    "of ILSVRC2012_val_*.JPEG with a labels file (LOC_val_solution.csv, labels.csv); a .parquet file or "
    "a folder of them (PATH@split picks a split); a `datasets` save_to_disk folder; or hf:DATASET_ID[@split]")


# ---------------------------------------------------------------- bad images

class BadImageError(RuntimeError):
    """An image that cannot be read; names the file."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"cannot read image {file}: {reason} (pass --skip-bad-images to skip such images)")
        self.file, self.reason = file, reason


class BadImage(NamedTuple):
    """What EvalDataset returns for an unreadable image when skipping; collate_eval drops it."""
    file: str
    index: int
    reason: str


def collate_eval(batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """DataLoader collate_fn: (images [B, ...], targets [B], indices [B], skipped files).
    When every item of the batch was skipped, images is an empty tensor of shape (0,)."""
    good = [b for b in batch if not isinstance(b, BadImage)]
    skipped = [b.file for b in batch if isinstance(b, BadImage)]
    if not good:
        empty = torch.empty(0, dtype=torch.long)
        return torch.empty(0, dtype=torch.uint8), empty, empty.clone(), skipped
    images = torch.stack([b[0] for b in good])
    targets = torch.tensor([b[1] for b in good], dtype=torch.long)
    indices = torch.tensor([b[2] for b in good], dtype=torch.long)
    return images, targets, indices, skipped


# ---------------------------------------------------------------- the dataset

class EvalDataset(torch.utils.data.Dataset):
    """Items `(image, target, index)`: image is uint8 [3, H, W] (or `transform(PIL image)`), target
    as in the module docstring, index the item's position (into `files`, `label_sets`)."""

    def __init__(self, spec: DatasetSpec, root: str, listing: Listing, limit: int | None = None,
                 skip_bad_images: bool = False, transform: Callable | None = None):
        self.spec, self.root, self.layout = spec, root, listing.layout
        self.subset = spec.class_subset
        files, targets, order = listing.files, listing.targets, list(range(len(listing.files)))
        if self.subset is not None:            # keep the subset's classes, targets -> positions
            pos = {c: i for i, c in enumerate(self.subset)}
            order = [i for i in order if targets[i] in pos]
            targets = [pos.get(t, -1) for t in targets]
        order = canonical_order(order, files, targets, listing.layout)
        # what a record must have been measured on to stand for this job (before --limit)
        self.fingerprint = data_fingerprint(root, [files[i] for i in order], [targets[i] for i in order])
        if limit is not None:
            order = order[:limit]
        self._rows = order                       # item -> row of the listing
        self.rows = tuple(order)                 # the same, read-only: one image's identity in its source
        self._load = listing.load
        self.files = [files[i] for i in order]
        self.targets = [targets[i] for i in order]
        self.label_sets = _real_label_sets(self.files, order, listing) if spec.labels == "real" else None
        self.n_images, self.n_expected = len(self.files), spec.n_expected
        self.complete = self.n_images == self.n_expected
        self.skip_bad_images, self.transform = skip_bad_images, transform
        if not self.complete and limit is None:
            log.warning("%s at %s: %d images, expected %d; results will not be comparable to "
                        "published numbers", spec.name, root, self.n_images, self.n_expected)

    def __len__(self) -> int:
        return self.n_images

    def __getitem__(self, i: int):
        try:
            img = to_rgb(self._load(self._rows[i]))
        except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
            reason = f"{type(e).__name__}: {e}"
            if self.skip_bad_images:
                return BadImage(self.files[i], i, reason)
            raise BadImageError(self.files[i], reason) from e
        x = self.transform(img) if self.transform is not None else pil_to_uint8_tensor(img)
        return x, self.targets[i], i

    def __repr__(self) -> str:
        return (f"EvalDataset({self.spec.name!r}, root={self.root!r}, layout={self.layout!r}, "
                f"n_images={self.n_images}, n_expected={self.n_expected})")


def canonical_order(rows: list[int], files: list[str], targets: list[int], layout: str) -> list[int]:
    """The order items are evaluated in, and so what `--limit N` takes first, the same in every layout:
    ImageNet-val by validation file number (the official order, which mixes classes); a Hugging Face
    split in its own row order; otherwise round-robin over classes (each class's 1st image, then each
    class's 2nd, ...), so a limited smoke run still covers every class."""
    numbers = [val_number(files[r]) for r in rows]
    if rows and all(n is not None for n in numbers):
        return [r for _, r in sorted(zip(numbers, rows, strict=True))]
    if layout.startswith("hf:"):
        return list(rows)
    seen: dict[int, int] = {}
    keyed = []
    for r in rows:                                   # rows are sorted by class, then file name
        k = seen.get(targets[r], 0)
        seen[targets[r]] = k + 1
        keyed.append((k, targets[r], r))
    return [r for _, _, r in sorted(keyed)]


def _real_label_sets(files: list[str], rows: list[int], listing: Listing) -> list[tuple[int, ...]]:
    """ReaL label set of each item, by its validation file number (ILSVRC2012_val_00000001 -> 0).
    A Hugging Face split without file names is taken in row order, only if it has all 50,000 rows."""
    labels = real_labels()
    numbers = [val_number(f) for f in files]
    if all(n is not None for n in numbers):
        return [labels[n - 1] for n in numbers]
    if listing.layout.startswith("hf:") and len(listing.files) == len(labels):
        log.info("ReaL: no validation file names in %s; using row order (50,000 rows)", listing.layout)
        return [labels[r] for r in rows]
    bad = next(f for f, n in zip(files, numbers, strict=True) if n is None)
    raise DatasetLayoutError(
        f"ReaL labels are keyed by validation file name (ILSVRC2012_val_00000001...), but {bad!r} "
        f"is not one; a Hugging Face dataset without file names must have exactly "
        f"{len(labels):,} rows in validation order")


# ---------------------------------------------------------------- opening by name

def open_dataset(name: str, data_root: str | os.PathLike | None = None, override: str | None = None,
                 limit: int | None = None, skip_bad_images: bool = False,
                 transform: Callable | None = None) -> EvalDataset:
    """The dataset `name` from `override` (a path or 'hf:ID'), else `data_root`/<folder>, else
    $VITBENCH_DATA/<folder>. Checks the layout and class set before reading any image."""
    spec = check_dataset(name)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    source, split = parse_source(override) if override else (_locate(spec, data_root), None)
    if source.startswith("hf:"):
        root = source + (f"@{split}" if split else "")
        listing = _read_hf_source(spec, source, split)
    else:
        path = Path(source).expanduser()
        kind = _source_kind(path)
        root = os.path.abspath(_descend(spec, path) if kind == "folder" else path)
        if kind == "folder":
            listing = _read_folder(spec, Path(root))
        else:
            root += f"@{split}" if split else ""
            listing = _read_hf_source(spec, str(path), split, parquet=kind == "parquet")
    if not listing.files:
        raise DatasetLayoutError(f"{root}: no images found for {spec.title} ({name})")
    return EvalDataset(spec, root, listing, limit, skip_bad_images, transform)


def _locate(spec: DatasetSpec, data_root) -> str:
    env = os.environ.get("VITBENCH_DATA")
    roots = [Path(data_root)] if data_root else ([Path(env)] if env else [])
    tried = [r / spec.folder for r in roots]
    for p in tried:
        if p.is_dir():
            return str(p)
    where = ", ".join(map(str, tried)) if tried else "nowhere (no --data-root and VITBENCH_DATA is unset)"
    base = f" (it uses the {spec.based_on} images)" if spec.based_on else ""
    raise DatasetNotFoundError(
        f"{spec.title} ({spec.name}) not found{base}: looked in {where}. Provide it with "
        f"--data-root DIR (holding {spec.folder}/), --data {spec.based_on or spec.name}=PATH "
        f"(or =hf:DATASET_ID), or VITBENCH_DATA=DIR")


def _source_kind(p: Path) -> str:
    """'folder' (images), 'parquet' (a file or a folder of them) or 'saved' (save_to_disk)."""
    if not p.exists():
        raise DatasetNotFoundError(f"{p}: no such file or folder (given with --data)")
    if p.is_file():
        if p.suffix == ".parquet":
            return "parquet"
        what = "an archive: extract it first" if p.name.endswith((".tar", ".tar.gz", ".tgz", ".zip")) else \
            "an image, not a dataset" if is_image(p.name) else "not a dataset"
        raise DatasetLayoutError(f"{p} is a file ({what}); accepted: {ACCEPTED_FORMS}")
    names = set(os.listdir(p))
    if names & {"dataset_info.json", "dataset_dict.json", "state.json"}:
        return "saved"
    if not any(WNID_RE.fullmatch(n) or n.isdigit() or is_image(n) for n in names) and any(p.rglob("*.parquet")):
        return "parquet"
    return "folder"


def _descend(spec: DatasetSpec, root: Path) -> Path:
    """The folder that holds the images: `root`, or an accepted nested folder inside it."""
    for n in spec.nested:
        if (root / n).is_dir():
            return root / n
    return root


def _read_folder(spec: DatasetSpec, root: Path) -> Listing:
    if spec.layout == "numbered":
        return read_class_folders(root, spec.class_folders, numbered=True)
    if spec.layout == "wnid":
        return read_class_folders(root, spec.class_folders)
    has_classes = any(WNID_RE.fullmatch(e.name) for e in os.scandir(root) if e.is_dir())
    if has_classes:
        return read_class_folders(root, imagenet_synsets())
    if any(is_image(e.name) for e in os.scandir(root) if e.is_file()):
        label_dirs = list(dict.fromkeys([root, root.parent, root / "ILSVRC2012_devkit_t12" / "data",
                                         root.parent / "ILSVRC2012_devkit_t12" / "data"]))
        return read_flat(root, label_dirs)
    raise DatasetLayoutError(
        f"{root}: neither wnid class folders nor a flat folder of images; expected {spec.title} as "
        f"1000 wnid folders, or ILSVRC2012_val_*.JPEG with a labels file, or a Hugging Face dataset")


def _read_hf_source(spec: DatasetSpec, source: str, split: str | None, parquet: bool = False) -> Listing:
    sub = subset_indices(spec.subset) if spec.subset and spec.layout == "wnid" else None
    n_classes = 200 if sub else 1000
    if parquet:
        return read_parquet(Path(source), split, n_classes, sub)
    return read_hf(load_hf(source, split), source + (f"@{split}" if split else ""), n_classes, sub)
