"""Finding the images of a dataset on disk or in a Hugging Face dataset, and their labels.

Every finder returns a `Listing`: one entry per image, sorted, each with its class as an index
into the 1000 ImageNet classes. Finders check the class set before any image is opened and raise
`DatasetLayoutError` saying what they found and what they expected.

Accepted layouts:
    wnid folders       ROOT/n01440764/*.JPEG ...                 (ImageNet-val, Sketch, R, A)
    numbered folders   ROOT/0 .. ROOT/999                        (ImageNetV2; folder number = class)
    flat + labels      ROOT/ILSVRC2012_val_00000001.JPEG ... with one of
                         LOC_val_solution.csv                    ImageId,PredictionString (wnid first)
                         ILSVRC2012_validation_ground_truth.txt  devkit ILSVRC2012_IDs (needs meta.mat
                                                                 or an ID->wnid mapping file)
                         labels.csv / val_labels.csv             filename,label (wnid or class index)
    Hugging Face       hf:ILSVRC/imagenet-1k, a parquet file/folder, or a save_to_disk folder
                       (columns image + label)
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from vitbench.catalog import imagenet_synsets

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")
WNID_RE = re.compile(r"n\d{8}")
VAL_NAME_RE = re.compile(r"ILSVRC2012_val_(\d{8})")
LABEL_CSV_NAMES = ("labels.csv", "val_labels.csv", "validation_labels.csv")
GT_TXT = "ILSVRC2012_validation_ground_truth.txt"
ID_MAP_NAMES = ("ILSVRC2012_mapping.txt", "map_clsloc.txt", "ilsvrc2012_id_to_wnid.txt")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not where we looked; the message says where and how to provide it."""


class DatasetLayoutError(ValueError):
    """The dataset is there but its layout or class set is not the expected one."""


@dataclass
class Listing:
    files: list[str]                     # absolute path, or "<source>#<row>" / the row's file name
    targets: list[int]                   # index into the 1000 ImageNet classes
    layout: str                          # how it was read, for records and messages
    load: Callable[[int], Image.Image] = field(repr=False, default=None)  # item -> PIL image


def wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_synsets())}


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def val_number(name: str) -> int | None:
    """1-based number of an ImageNet validation file name (ILSVRC2012_val_00000001 -> 1)."""
    m = VAL_NAME_RE.search(os.path.basename(name))
    return int(m.group(1)) if m else None


def _subdirs(root: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image(e.name))


def _examples(items: Sequence[str], n: int = 5) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


class FileLoader:
    """Picklable item -> PIL image for files on disk."""

    def __init__(self, files: list[str]):
        self.files = files

    def __call__(self, i: int) -> Image.Image:
        with Image.open(self.files[i]) as im:
            im.load()
            return im


# ---------------------------------------------------------------- class folders

def read_class_folders(root: Path, expected: Sequence[str], numbered: bool = False) -> Listing:
    """ROOT/<class>/<image>. `expected` are the folder names in order (wnids, or "0".."999" for
    numbered folders, where the folder's number is the class, not its position in string order)."""
    found = [d for d in _subdirs(root) if (d.isdigit() if numbered else WNID_RE.fullmatch(d))]
    other = [d for d in _subdirs(root) if d not in found]
    want = set(expected)
    unknown, missing = sorted(set(found) - want), sorted(want - set(found))
    if unknown or missing:
        kind = "numbered class folders 0..999" if numbered else f"{len(expected)} wnid class folders"
        msg = f"{root}: found {len(found)} class folders; expected the {kind}"
        if unknown:
            msg += f"; not expected: {_examples(unknown)}"
        if missing:
            msg += f"; missing: {_examples(missing)}"
        if other:
            msg += f"; other folders: {_examples(other)}"
        raise DatasetLayoutError(msg)
    if other:
        log.info("%s: ignoring non-class folders %s", root, _examples(other))
    to_class = {d: int(d) for d in found} if numbered else wnid_index()
    files, targets = [], []
    for d in sorted(found, key=to_class.get):
        for name in _images_in(root / d):
            files.append(str(root / d / name))
            targets.append(to_class[d])
    layout = "numbered-folders" if numbered else "wnid-folders"
    return Listing(files, targets, layout, FileLoader(files))


# ---------------------------------------------------------------- flat folder + labels file

def read_flat(image_dir: Path, label_dirs: Sequence[Path], id_map: str | None = None) -> Listing:
    """A flat folder of validation images labelled by a file found in one of `label_dirs`."""
    names = _images_in(image_dir)
    labels, source = find_flat_labels(label_dirs, id_map)
    index = wnid_index()
    files, targets, unlabelled = [], [], []
    for name in names:
        key = Path(name).stem
        if key not in labels:
            unlabelled.append(name)
            continue
        files.append(str(image_dir / name))
        targets.append(labels[key] if isinstance(labels[key], int) else index[labels[key]])
    if unlabelled:
        raise DatasetLayoutError(
            f"{image_dir}: {len(unlabelled)} of {len(names)} images have no label in {source} "
            f"(e.g. {_examples(unlabelled, 3)})")
    return Listing(files, targets, f"flat+{Path(source).name}", FileLoader(files))


def find_flat_labels(dirs: Sequence[Path], id_map: str | None = None) -> tuple[dict, str]:
    """{file stem: wnid or class index} from the first labels file found in `dirs`."""
    for d in dirs:
        if (d / "LOC_val_solution.csv").is_file():
            return _read_loc_solution(d / "LOC_val_solution.csv"), str(d / "LOC_val_solution.csv")
        for name in LABEL_CSV_NAMES:
            if (d / name).is_file():
                return _read_label_csv(d / name), str(d / name)
        if (d / GT_TXT).is_file():
            return _read_ground_truth(d / GT_TXT, dirs, id_map), str(d / GT_TXT)
    raise DatasetLayoutError(
        f"{dirs[0]}: a flat folder of images but no labels file; expected one of LOC_val_solution.csv, "
        f"{', '.join(LABEL_CSV_NAMES)} (filename,label) or {GT_TXT} (with the devkit meta.mat) in "
        f"{', '.join(map(str, dirs))} — or the images in one folder per wnid")


def _check_wnids(labels: dict, path: Path) -> dict:
    index = wnid_index()
    bad = sorted({str(v) for v in labels.values()
                  if (isinstance(v, int) and not 0 <= v < 1000) or (isinstance(v, str) and v not in index)})
    if bad:
        raise DatasetLayoutError(f"{path}: labels outside the 1000 ImageNet classes: {_examples(bad)}")
    return labels


def _read_loc_solution(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:2]] != ["ImageId", "PredictionString"]:
        raise DatasetLayoutError(f"{path}: expected the header ImageId,PredictionString")
    return _check_wnids({r[0].strip(): r[1].split()[0] for r in rows[1:] if len(r) >= 2 and r[1].split()},
                        path)


def _read_label_csv(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    out = {}
    for n, r in enumerate(rows):
        if len(r) < 2:
            raise DatasetLayoutError(f"{path}:{n + 1}: expected filename,label")
        name, label = r[0].strip(), r[1].strip()
        if label.isdigit():
            out[Path(name).stem] = int(label)
        elif WNID_RE.fullmatch(label):
            out[Path(name).stem] = label
        elif n > 0:                                   # anything but a header row
            raise DatasetLayoutError(f"{path}:{n + 1}: label {label!r} is neither a wnid nor a class index")
    return _check_wnids(out, path)


def _read_ground_truth(path: Path, dirs: Sequence[Path], id_map: str | None) -> dict:
    """The devkit txt holds ILSVRC2012_IDs, which are *not* class indices: the devkit meta.mat
    (or a mapping file `wnid ID` per line) says which wnid each ID is."""
    mapping = load_id_map(dirs, id_map)
    ids = [int(x) for x in path.read_text().split()]
    bad = sorted({i for i in ids if i not in mapping})
    if bad:
        raise DatasetLayoutError(f"{path}: ILSVRC2012_IDs without a wnid in the mapping: {bad[:5]}")
    return {f"ILSVRC2012_val_{n + 1:08d}": mapping[i] for n, i in enumerate(ids)}


def load_id_map(dirs: Sequence[Path], explicit: str | None = None) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid from `explicit`, or meta.mat / a mapping file in `dirs`."""
    candidates = [Path(explicit)] if explicit else [d / n for d in dirs for n in ("meta.mat",) + ID_MAP_NAMES]
    for p in candidates:
        if p.is_file():
            mapping = _read_meta_mat(p) if p.suffix == ".mat" else _read_id_map_txt(p)
            if sorted(mapping) != list(range(1, 1001)) or set(mapping.values()) != set(imagenet_synsets()):
                raise DatasetLayoutError(f"{p}: not a mapping of the 1000 ILSVRC2012_IDs to the 1000 wnids")
            return mapping
    raise DatasetLayoutError(
        f"found {GT_TXT}, but its ILSVRC2012_IDs are not class indices and no ID->wnid mapping is "
        f"shipped with vitbench; put the devkit's meta.mat (needs scipy) or a mapping file "
        f"({' / '.join(ID_MAP_NAMES)}: 'wnid ID' per line) beside it, or use LOC_val_solution.csv, "
        f"a filename,label csv, or wnid folders. Looked in: {', '.join(map(str, dirs))}")


def _read_id_map_txt(path: Path) -> dict[int, str]:
    out = {}
    for line in path.read_text().splitlines():
        toks = line.replace(",", " ").split()
        wnid = next((t for t in toks if WNID_RE.fullmatch(t)), None)
        num = next((t for t in toks if t.isdigit()), None)
        if wnid and num:
            out[int(num)] = wnid
    return out


def _read_meta_mat(path: Path) -> dict[int, str]:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DatasetLayoutError(f"{path}: reading the devkit meta.mat needs scipy (pip install scipy)") from None
    syn = loadmat(str(path), squeeze_me=True)["synsets"]
    return {int(i): str(w) for i, w in zip(syn["ILSVRC2012_ID"], syn["WNID"]) if 1 <= int(i) <= 1000}


# ---------------------------------------------------------------- Hugging Face datasets

class HFLoader:
    """Picklable item -> PIL image for rows of a Hugging Face dataset (image column undecoded)."""

    def __init__(self, ds, rows: list[int], column: str):
        self.ds, self.rows, self.column = ds, rows, column

    def __call__(self, i: int) -> Image.Image:
        cell = self.ds[self.rows[i]][self.column]
        if isinstance(cell, Image.Image):
            return cell
        src = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]
        with Image.open(src) as im:
            im.load()
            return im


def load_hf(source: str, split: str = "validation"):
    """A `datasets.Dataset` from 'hf:ID', a parquet file/folder, or a save_to_disk folder."""
    try:
        import datasets
    except ImportError:
        raise DatasetNotFoundError(f"{source}: reading Hugging Face datasets needs `pip install datasets`") from None
    try:
        if source.startswith("hf:"):
            ds = datasets.load_dataset(source[3:], split=split)
        else:
            p = Path(source)
            if p.is_dir() and any((p / n).is_file() for n in ("dataset_info.json", "dataset_dict.json", "state.json")):
                ds = datasets.load_from_disk(str(p))
            else:
                files = [str(p)] if p.is_file() else sorted(str(f) for f in p.rglob("*.parquet"))
                if not files:
                    raise DatasetLayoutError(f"{p}: no parquet files and not a save_to_disk folder")
                ds = datasets.load_dataset("parquet", data_files=files, split="train")
    except DatasetLayoutError:
        raise
    except Exception as e:  # hub/cache errors come in many types
        raise DatasetNotFoundError(f"{source}: could not load it with `datasets` ({type(e).__name__}: {e})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DatasetLayoutError(f"{source}: no {split!r} split (has {sorted(ds)})")
        ds = ds[split]
    return ds


def read_hf(ds, source: str, n_classes: int, subset_to_1k: Sequence[int] | None = None) -> Listing:
    """Rows of `ds` with columns image + label. Integer labels index the 1000 classes (or, for a
    200-class dataset, the sorted 200-class subset); ClassLabel names may also be wnids."""
    import datasets
    import pyarrow.compute as pc

    cols = ds.column_names
    img_col = next((c for c in ("image", "img", "jpg") if c in cols), None)
    lab_col = next((c for c in ("label", "labels", "cls") if c in cols), None)
    if img_col is None or lab_col is None:
        raise DatasetLayoutError(f"{source}: expected columns image and label, found {cols}")
    ds = ds.cast_column(img_col, datasets.Image(decode=False))
    to_1k = _hf_label_map(ds.features[lab_col], n_classes, subset_to_1k, source)
    raw = list(ds[lab_col])
    bad = sorted({x for x in raw if x not in to_1k}, key=str)
    if bad:
        raise DatasetLayoutError(f"{source}: labels outside the {n_classes} expected classes: {bad[:5]}")
    # file names only, from arrow (the image bytes are not read)
    paths = pc.struct_field(ds.with_format("arrow")[img_col], "path").to_pylist()
    rows = list(range(len(ds)))
    files = [p if p else f"{source}#{r}" for r, p in zip(rows, paths)]
    return Listing(files, [to_1k[x] for x in raw], f"hf:{source}", HFLoader(ds, rows, img_col))


def _hf_label_map(feature, n_classes: int, subset_to_1k, source: str) -> dict:
    import datasets

    names = getattr(feature, "names", None) if isinstance(feature, datasets.ClassLabel) else None
    index = wnid_index()
    if names and all(n in index for n in names):
        return {i: index[n] for i, n in enumerate(names)}
    if subset_to_1k is not None:
        return {i: c for i, c in enumerate(subset_to_1k)}
    if names and len(names) != n_classes:
        raise DatasetLayoutError(f"{source}: label has {len(names)} classes, expected {n_classes}")
    return {i: i for i in range(1000)}
