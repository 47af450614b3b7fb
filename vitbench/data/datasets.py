"""Opening the eval datasets by name. What each dataset is (where it lives, how big it is, how it is
labelled, which classes it scores, its title, baseline and CSV name) is the table in
vitbench.data.specs, re-exported here.

    DATASETS["a"]            -> DatasetSpec (frozen)
    expand_datasets(["r"])   -> ["r-clean", "r"]          (baselines first)
    open_dataset("real", data_root=DIR) -> EvalDataset   (a torch Dataset)
    find_listing("real", data_root=DIR) -> Found         (the same search, no Dataset: `vitbench data list`)
    DataLoader(ds, collate_fn=collate_eval)               -> (images, targets, indices, skipped_files)

Where a dataset is looked for, in order: `override` (--data NAME=PATH or =hf:REPO), `data_root`
(--data-root) or $VITBENCH_DATA, the local Hugging Face cache, then the Hub (the dataset's default
repo, only its files; vitbench.data.sources). Nowhere: DatasetNotFoundError naming the three places.

Targets are in the label space of the logits the evaluator scores: for a dataset with a class
`subset` (A, R and their clean baselines) the target is the *position* in `subset`, matching
`logits[:, subset]`; otherwise it is the ImageNet class index 0..999.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch

from vitbench.catalog import imagenet_synsets, real_labels, subset_indices
from vitbench.data import sources
from vitbench.data.archives import NotAnImageArchive, extract_once, read_tar_shards, read_zip
from vitbench.data.fingerprint import DataFingerprint, data_fingerprint  # noqa: F401
from vitbench.data.layouts import (
    WNID_RE,
    DatasetLayoutError,
    DatasetNotFoundError,
    DataSource,
    Listing,
    check_class_set,
    is_image,
    load_hf,
    parse_source,
    read_class_folders,
    read_flat,
    read_hf,
    read_parquet,
    read_parquet_files,
    val_number,
)
from vitbench.data.specs import (
    DATASETS,
    DatasetSpec,
    check_dataset,
    expand_datasets,
    hub_sources,
    images_expected,
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
    "data_fingerprint", "ACCEPTED_FORMS", "find_listing", "Found",
]

ACCEPTED_FORMS = (
    "a folder of wnid class folders (n01440764/...), of numbered class folders 0..999 (ImageNetV2), or "
    "of ILSVRC2012_val_*.JPEG with a labels file (LOC_val_solution.csv, labels.csv); a .parquet file or "
    "a folder of them (PATH@split picks a split); webdataset .tar shards (a file or a folder of them); "
    "a .zip or .tar of class folders; a .tar.gz (extracted once); a `datasets` save_to_disk folder; "
    "or hf:DATASET_ID[@split]")
_ARCHIVE_KINDS = ("tar", "tars", "zip", "tar.gz")


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
        self.source = listing.source or DataSource("local", root)   # where the images were read from
        self.subset = spec.class_subset
        files, targets, order = listing.files, listing.targets, list(range(len(listing.files)))
        if self.subset is not None:            # keep the subset's classes, targets -> positions
            pos = {c: i for i, c in enumerate(self.subset)}
            order = [i for i in order if targets[i] in pos]
            targets = [pos.get(t, -1) for t in targets]
        order = canonical_order(order, files, targets, listing.layout)
        # what a record must have been measured on to stand for this job (before --limit)
        self.fingerprint = data_fingerprint(root, [files[i] for i in order], [targets[i] for i in order],
                                            listing.source)
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
    where = ""
    if listing.source is not None and listing.source.repo:
        bad = os.path.relpath(bad, listing.source.location) if bad.startswith(listing.source.location) else bad
        where = f" in {listing.source.repo}@{(listing.source.revision or '?')[:7]}"
    raise DatasetLayoutError(
        f"ReaL labels are keyed by validation file name (ILSVRC2012_val_00000001...), but {bad!r}{where} "
        f"is not one; ReaL needs a source with the validation file names (a Hugging Face dataset "
        f"without them must have exactly {len(labels):,} rows in validation order)")


# ---------------------------------------------------------------- opening by name

@dataclass
class Found:
    """A dataset's images found, listed and checked, before any is decoded."""
    root: str                      # the folder, file, hf:ID or the HF cache folder the images lie in
    listing: Listing


def open_dataset(name: str, data_root: str | os.PathLike | None = None, override: str | None = None,
                 limit: int | None = None, skip_bad_images: bool = False,
                 transform: Callable | None = None, *, download: bool = True, is_local_main: bool = True,
                 barrier: Callable[[], None] | None = None) -> EvalDataset:
    """The dataset `name` from `override` (a path, 'hf:ID' or 'hf:REPO' of one of its Hub sources),
    else `data_root`/<folder> or $VITBENCH_DATA/<folder>, else the HF cache, else the Hub (when
    `download`). Checks the layout and class set before reading any image. Under torchrun every
    process calls it with `is_local_main` (local rank 0) and a `barrier`: only local rank 0 fetches."""
    found = find_listing(name, data_root, override, limit, download=download, is_local_main=is_local_main,
                         barrier=barrier)
    return EvalDataset(check_dataset(name), found.root, found.listing, limit, skip_bad_images, transform)


def find_listing(name: str, data_root: str | os.PathLike | None = None, override: str | None = None,
                 limit: int | None = None, *, download: bool = True, is_local_main: bool = True,
                 barrier: Callable[[], None] | None = None) -> Found:
    """Where `name`'s images are and what they are (see open_dataset), without making a Dataset."""
    spec = check_dataset(name)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if override:
        source, split = parse_source(override)
        known = sources.known_source(name, source[3:]) if source.startswith("hf:") else None
        if known is not None and split in (None, "validation", "test"):
            found = _from_hub(spec, (known,), limit, download, is_local_main, barrier, local=[
                f"--data {spec.based_on or name}={override}: read in place from the HF cache or the Hub"])
        elif source.startswith("hf:") and (snap := sources.split_snapshot(source[3:], split or "validation")):
            found = _from_path(spec, snap, split or "validation")     # only that split's parquet, in place
        elif source.startswith("hf:"):
            found = Found(source + (f"@{split}" if split else ""), _read_hf_source(spec, source, split))
        else:
            found = _from_path(spec, Path(source).expanduser(), split)
    else:
        folder, local = _locate(spec, data_root)
        found = (_from_path(spec, folder, None) if folder is not None else
                 _from_hub(spec, None, limit, download, is_local_main, barrier, local=local))
    if not found.listing.files:
        raise DatasetLayoutError(f"{found.root}: no images found for {spec.title} ({name})")
    return found


def _from_path(spec: DatasetSpec, path: Path, split: str | None) -> Found:
    kind = _source_kind(path)
    root = os.path.abspath(_descend(spec, path) if kind == "folder" else path)
    if kind == "folder":
        return Found(root, _read_folder(spec, Path(root)))
    if kind in _ARCHIVE_KINDS:
        return _read_archive(spec, Path(root), kind)
    root += f"@{split}" if split else ""
    return Found(root, _read_hf_source(spec, str(path), split, parquet=kind == "parquet"))


def _from_hub(spec: DatasetSpec, candidates, limit, download, is_local_main, barrier, local: list[str]) -> Found:
    search = sources.locate(spec.name, candidates, limit=limit, download=download,
                            is_local_main=is_local_main, barrier=barrier)
    if search.found is None:
        raise DatasetNotFoundError(_not_found_message(spec, local, search.looked))
    loc = search.found
    return Found(str(loc.root), _read_located(spec, loc, limit))


def _locate(spec: DatasetSpec, data_root) -> tuple[Path | None, list[str]]:
    """The dataset's folder under `data_root` (or $VITBENCH_DATA), or None and where it looked."""
    env = os.environ.get("VITBENCH_DATA")
    roots = [Path(data_root)] if data_root else ([Path(env)] if env else [])
    tried = [r / spec.folder for r in roots]
    for p in tried:
        if p.is_dir():
            return p, []
    where = ", ".join(map(str, tried)) if tried else "nowhere (no --data-root and VITBENCH_DATA is unset)"
    return None, [f"data folders: {where}"]


def _not_found_message(spec: DatasetSpec, local: list[str], looked: list[str]) -> str:
    """Not found: the three places looked (data folders, the HF cache, the Hub) and the fixes."""
    base = f" (it uses the {spec.based_on} images)" if spec.based_on else ""
    data_name = spec.based_on or spec.name
    default = next(iter(hub_sources(spec.name)), None)
    places = "\n".join(f"  - {line}" for line in local + looked)
    fixes = [f"--data-root DIR (holding {spec.folder}/), or VITBENCH_DATA=DIR",
             f"--data {data_name}=PATH (or =hf:DATASET_ID)"]
    if default is not None:
        fixes.append(f"`vitbench data fetch {data_name}` on a machine with network (fetches {default.repo}, "
                     f"about {default.size_gb:g} GB, into the HF cache; copy HF_HOME over to use it offline)"
                     + (f"; the repo is gated: accept its terms at {default.url} and log in "
                        f"(`hf auth login` or HF_TOKEN)" if default.gated else ""))
        fixes.append("HF_HOME=DIR (or HF_HUB_CACHE=DIR/hub) pointing at a Hugging Face cache that holds it")
    short = "; ".join(line.split(":", 1)[0] for line in local + looked)
    return (f"{spec.title} ({spec.name}) not found{base} ({short}). Looked in:\n{places}\n"
            f"Provide it with one of:\n" + "\n".join(f"  - {f}" for f in fixes))


def _read_located(spec: DatasetSpec, loc: "sources.Located", limit: int | None) -> Listing:
    """A Hub source's files (in the HF cache) as a listing, checked: the dataset's class set, labels
    that agree with the file names, and an image count that is the full set or a declared subset."""
    sub = subset_indices(spec.subset) if spec.subset and spec.layout == "wnid" else None
    classes = list(sub) if sub else list(range(1000))
    numbered = spec.layout == "numbered"
    kind = loc.source.kind
    try:
        if kind == "parquet":
            listing = read_parquet_files(loc.paths, loc.where, len(classes), sub)
            check_class_set(listing.targets, classes, loc.where)
        elif kind == "webdataset":
            listing = read_tar_shards(loc.paths, loc.where, spec.class_folders, classes, numbered, sub)
        elif kind == "zip":
            listing = read_zip(loc.paths[0], loc.where, spec.class_folders, numbered)
        elif kind == "tar.gz":
            listing = _read_folder(spec, _descend(spec, loc.root))
        else:
            raise DatasetLayoutError(f"unknown kind of Hub source {kind!r}")
        check_names_agree(listing.files, listing.targets, loc.where)
    except DatasetLayoutError as e:
        said = str(e)
        where = spec.title if said.startswith(loc.where) else f"{spec.title} from {loc.where}"
        raise DatasetLayoutError(f"{where}: {said} (files in {loc.snapshot})") from None
    n, full = len(listing.files), images_expected(spec.name)
    if n > full or (n != full and limit is None):
        raise DatasetLayoutError(
            f"{spec.title} from {loc.where}: {n:,} images, expected {full:,}: neither the full set nor a declared "
            f"subset (a copy that lacks files, or another dataset?); --limit N evaluates part of a set")
    listing.layout = f"{kind}:{loc.source.repo}"
    listing.source = loc.data_source()
    return listing


def check_names_agree(files: Sequence[str], targets: Sequence[int], where: str) -> None:
    """Labels agree with the wnid a file name carries (ILSVRC2012_val_00000001_n01751748.JPEG): what
    shows a label order other than class-index order."""
    syn = imagenet_synsets()
    bad = []
    for f, t in zip(files, targets, strict=True):
        m = _NAME_WNID_RE.search(os.path.basename(f))
        if m and m.group(1) != syn[t]:
            bad.append(f"{os.path.basename(f)} labelled {syn[t]}")
    if bad:
        raise DatasetLayoutError(f"{where}: {len(bad)} image(s) whose label is not the wnid in their file "
                                 f"name (e.g. {', '.join(bad[:3])}): labels not in class-index order?")


_NAME_WNID_RE = re.compile(r"_(n\d{8})\.[A-Za-z]+$")


def _read_archive(spec: DatasetSpec, path: Path, kind: str) -> Found:
    """A local archive (--data PATH): tar shards and zips read in place, a .tar.gz extracted once."""
    try:
        return _read_archive_as(spec, path, kind)
    except NotAnImageArchive as e:
        what = "folder of tar files" if kind == "tars" else "file"
        raise DatasetLayoutError(f"{path} is a {what} that is not a dataset ({e}); accepted: "
                                 f"{ACCEPTED_FORMS}") from None


def _read_archive_as(spec: DatasetSpec, path: Path, kind: str) -> Found:
    sub = subset_indices(spec.subset) if spec.subset and spec.layout == "wnid" else None
    classes = list(sub) if sub else list(range(1000))
    numbered = spec.layout == "numbered"
    if kind == "tar.gz":
        st = path.stat()
        key = hashlib.sha256(f"{path}\t{st.st_size}\t{st.st_mtime_ns}".encode()).hexdigest()[:16]
        name = path.name.rsplit(".tar", 1)[0] if ".tar" in path.name else path.stem
        dest = extract_once(path, sources.vitbench_cache_dir() / "extracted" / "local" / key / name)
        found = _descend(spec, dest)
        return Found(str(found), _read_folder(spec, found))
    if kind == "zip":
        return Found(str(path), read_zip(path, str(path), spec.class_folders, numbered))
    shards = sorted(path.rglob("*.tar")) if kind == "tars" else [path]
    return Found(str(path), read_tar_shards(shards, str(path), spec.class_folders, classes, numbered, sub))


def _source_kind(p: Path) -> str:
    """'folder' (images), 'parquet' (a file or a folder of them), 'saved' (save_to_disk), or an
    archive: 'tar' / 'zip' / 'tar.gz' (a file), 'tars' (a folder of webdataset shards)."""
    if not p.exists():
        raise DatasetNotFoundError(f"{p}: no such file or folder (given with --data)")
    if p.is_file():
        name = p.name.lower()
        if p.suffix == ".parquet":
            return "parquet"
        for kind, ends in (("tar.gz", (".tar.gz", ".tgz")), ("tar", (".tar",)), ("zip", (".zip",))):
            if name.endswith(ends):
                return kind
        what = "an image, not a dataset" if is_image(p.name) else "not a dataset"
        raise DatasetLayoutError(f"{p} is a file ({what}); accepted: {ACCEPTED_FORMS}")
    names = set(os.listdir(p))
    if names & {"dataset_info.json", "dataset_dict.json", "state.json"}:
        return "saved"
    if not any(WNID_RE.fullmatch(n) or n.isdigit() or is_image(n) for n in names):
        if any(p.rglob("*.parquet")):
            return "parquet"
        if any(n.endswith(".tar") for n in names) or any(p.glob("*/*.tar")):
            return "tars"
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
