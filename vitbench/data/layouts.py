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
    Hugging Face       hf:ILSVRC/imagenet-1k, a parquet file/folder (read in place), or a save_to_disk
                       folder (columns image + label); SOURCE@split picks a split, default validation
    archives           webdataset shards, tar/zip archives of class folders: vitbench.data.archives
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


@dataclass(frozen=True)
class DataSource:
    """Where a listing's images were read from, for records: a local folder or file, or files of a Hub
    dataset repo at one commit (read where they lie in the HF cache)."""
    kind: str                            # 'local' | 'hf-cache' | 'hf-hub' (fetched by this process)
    location: str                        # the folder/file, or the snapshot folder the repo's files lie in
    repo: str | None = None              # Hub dataset repo id
    revision: str | None = None          # the repo's commit sha
    files: tuple[str, ...] = ()          # the repo's files read, repo-relative, sorted

    @property
    def uri(self) -> str:
        """The data's identity, wherever it is cached: hf://datasets/REPO@REVISION, or the local path."""
        return f"hf://datasets/{self.repo}@{self.revision}" if self.repo else self.location

    def __str__(self) -> str:
        if not self.repo:
            return self.location
        return f"{self.repo}@{(self.revision or '?')[:7]} ({len(self.files)} file(s) in {self.location})"


@dataclass
class Listing:
    files: list[str]                     # absolute path, "<archive>/<member>", or "<source>#<row>" / the
                                         # row's file name
    targets: list[int]                   # index into the 1000 ImageNet classes
    layout: str                          # how it was read, for records and messages
    load: Callable[[int], Image.Image] = field(repr=False, default=None)  # item -> PIL image
    source: DataSource | None = None     # where it was read from (None: the local root it was given)


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
    """Image file names in `folder`, sorted. A broken symlink named like an image is kept (it is an
    image the dataset should have): reading it fails naming it, as for a corrupt image, and
    `warn_broken` names it before the run."""
    return sorted(e.name for e in os.scandir(folder)
                  if is_image(e.name) and (e.is_file() or (e.is_symlink() and not os.path.exists(e.path))))


def warn_broken(files: Sequence[str], where: Path) -> None:
    """Name the entries that cannot be read at all (broken symlinks) before any image is opened."""
    broken = [f for f in files if os.path.islink(f) and not os.path.exists(f)]
    if broken:
        log.warning("%s: %d broken symlink(s), which fail the job unless --skip-bad-images: %s", where,
                    len(broken), _examples([f"{f} -> {os.readlink(f)}" for f in broken], 3))


def _examples(items: Sequence[str], n: int = 5) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


class FileLoader:
    """Picklable item -> PIL image for files on disk."""

    def __init__(self, files: list[str]):
        self.files = files

    def read(self, i: int) -> bytes:
        """The image's encoded bytes (what decoding starts from)."""
        with open(self.files[i], "rb") as f:
            return f.read()

    def __call__(self, i: int) -> Image.Image:
        with Image.open(self.files[i]) as im:
            im.load()
            return im


# ---------------------------------------------------------------- class folders

def check_class_folders(where: str, subdirs: Sequence[str], expected: Sequence[str],
                        numbered: bool = False) -> list[str]:
    """The class folders among `subdirs` (folder names), which must be exactly `expected`; raises
    DatasetLayoutError saying what is missing and what is not expected."""
    found = [d for d in subdirs if (d.isdigit() if numbered else WNID_RE.fullmatch(d))]
    other = [d for d in subdirs if d not in found]
    want = set(expected)
    unknown, missing = sorted(set(found) - want), sorted(want - set(found))
    if unknown or missing:
        kind = "numbered class folders 0..999" if numbered else f"{len(expected)} wnid class folders"
        msg = f"{where}: found {len(found)} class folders; expected the {kind}"
        if unknown:
            msg += f"; not expected: {_examples(unknown)}"
        if missing:
            msg += f"; missing: {_examples(missing)}"
        if other:
            msg += f"; other folders: {_examples(other)}"
        raise DatasetLayoutError(msg)
    if other:
        log.info("%s: ignoring non-class folders %s", where, _examples(other))
    return found


def check_class_set(targets: Sequence[int], expected: Sequence[int], where: str) -> None:
    """Every class of `expected` (ImageNet indices) has images and no image is of another class: what
    a source without class folders (webdataset, parquet rows) must show instead."""
    syn = imagenet_synsets()
    found, want = set(targets), set(expected)
    unknown, missing = sorted(found - want), sorted(want - found)
    if unknown or missing:
        msg = (f"{where}: images of {len(found)} classes; expected the {len(want)} classes of the dataset "
               f"({'the ImageNet-1k classes' if len(want) == 1000 else 'its class subset'})")
        if unknown:
            msg += f"; not expected: {_examples([syn[c] for c in unknown])}"
        if missing:
            msg += f"; missing (no image): {_examples([syn[c] for c in missing])}"
        raise DatasetLayoutError(msg)


def read_class_folders(root: Path, expected: Sequence[str], numbered: bool = False) -> Listing:
    """ROOT/<class>/<image>. `expected` are the folder names in order (wnids, or "0".."999" for
    numbered folders, where the folder's number is the class, not its position in string order)."""
    found = check_class_folders(str(root), _subdirs(root), expected, numbered)
    to_class = {d: int(d) for d in found} if numbered else wnid_index()
    files, targets, empty = [], [], []
    for d in sorted(found, key=to_class.get):
        names = _images_in(root / d)
        if not names:
            empty.append(d)
        for name in names:
            files.append(str(root / d / name))
            targets.append(to_class[d])
    if empty and len(empty) < len(found):
        log.warning("%s: %d empty class folder(s) (no images): %s", root, len(empty), _examples(empty))
    warn_broken(files, root)
    layout = "numbered-folders" if numbered else "wnid-folders"
    return Listing(files, targets, layout, FileLoader(files))


# ---------------------------------------------------------------- flat folder + labels file

def read_flat(image_dir: Path, label_dirs: Sequence[Path], id_map: str | None = None) -> Listing:
    """A flat folder of validation images labelled by a file found in one of `label_dirs`."""
    names = _images_in(image_dir)
    warn_broken([str(image_dir / n) for n in names], image_dir)
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
    with open(path, newline="", encoding="utf-8-sig") as f:      # -sig: a UTF-8 BOM is not data
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:2]] != ["ImageId", "PredictionString"]:
        raise DatasetLayoutError(f"{path}: expected the header ImageId,PredictionString")
    return _check_wnids({r[0].strip(): r[1].split()[0] for r in rows[1:] if len(r) >= 2 and r[1].split()},
                        path)


def _read_label_csv(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8-sig") as f:      # -sig: a UTF-8 BOM is not data
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
    ids = [int(x) for x in path.read_text(encoding="utf-8-sig").split()]
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
    for line in path.read_text(encoding="utf-8-sig").splitlines():
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
    return {int(i): str(w) for i, w in zip(syn["ILSVRC2012_ID"], syn["WNID"], strict=True) if 1 <= int(i) <= 1000}


# ---------------------------------------------------------------- Hugging Face datasets

IMAGE_COLUMNS = ("image", "img", "jpg", "jpeg", "png", "webp")
LABEL_COLUMNS = ("label", "labels", "cls", "wnid")
DEFAULT_SPLIT = "validation"
_SPLIT_RE = re.compile(r"[A-Za-z0-9_.\-]+")


def parse_source(text: str) -> tuple[str, str | None]:
    """'PATH@split' or 'hf:ID@split' -> (PATH or hf:ID, split); no '@split' -> (text, None)."""
    if not text.startswith("hf:") and Path(text).expanduser().exists():
        return text, None                     # a path that itself holds an '@'
    head, sep, tail = text.rpartition("@")
    if sep and head and _SPLIT_RE.fullmatch(tail):
        return head, tail
    return text, None


def _quiet_datasets():
    """`datasets`, with its own progress bars off (vitbench draws one per job)."""
    try:
        import datasets
    except ImportError:
        raise DatasetNotFoundError("reading Hugging Face datasets needs `pip install datasets`") from None
    datasets.disable_progress_bars()
    return datasets


class HFLoader:
    """Picklable item -> PIL image for rows of a Hugging Face dataset (image column undecoded)."""

    def __init__(self, ds, rows: list[int], column: str):
        self.ds, self.rows, self.column = ds, rows, column

    def __call__(self, i: int) -> Image.Image:
        return _open_cell(self.ds[self.rows[i]][self.column])


def open_image_bytes(data: bytes) -> Image.Image:
    """A fully read PIL image from encoded bytes."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im


def _open_cell(cell) -> Image.Image:
    if isinstance(cell, Image.Image):
        return cell
    if isinstance(cell, (bytes, bytearray)):
        src = io.BytesIO(cell)
    else:
        src = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]
    with Image.open(src) as im:
        im.load()
        return im


def load_hf(source: str, split: str | None = None):
    """A `datasets.Dataset` from 'hf:ID' (the hub or its local cache, under HF_DATASETS_CACHE) or a
    save_to_disk folder (memory-mapped in place). `split` defaults to validation."""
    datasets = _quiet_datasets()
    split = split or DEFAULT_SPLIT
    if source.startswith("hf:"):
        log.info("%s: split %r via `datasets` (downloads and conversions go to HF_DATASETS_CACHE=%s)",
                 source, split, datasets.config.HF_DATASETS_CACHE)
        try:
            return datasets.load_dataset(source[3:], split=split)
        except Exception as e:  # hub/cache errors come in many types: the data is not here
            raise DatasetNotFoundError(
                f"{source}@{split}: could not load it with `datasets` ({type(e).__name__}: {e})") from None
    try:
        ds = datasets.load_from_disk(source)
    except Exception as e:  # noqa: BLE001 - the folder is there but unreadable: a layout error
        raise DatasetLayoutError(f"{source}: a save_to_disk folder that `datasets` cannot read "
                                 f"({type(e).__name__}: {e})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DatasetLayoutError(f"{source}: no {split!r} split (has {', '.join(sorted(ds))}); "
                                     f"choose one with {source}@SPLIT")
        ds = ds[split]
    return ds


def _find_columns(names: Sequence[str], source: str) -> tuple[str, str]:
    img = next((c for c in IMAGE_COLUMNS if c in names), None)
    lab = next((c for c in LABEL_COLUMNS if c in names), None)
    if img is None or lab is None:
        raise DatasetLayoutError(
            f"{source}: found columns {list(names)}; expected an image column named one of "
            f"{', '.join(IMAGE_COLUMNS)} and a label column named one of {', '.join(LABEL_COLUMNS)}")
    return img, lab


def read_hf(ds, source: str, n_classes: int, subset_to_1k: Sequence[int] | None = None) -> Listing:
    """Rows of `ds` with columns image + label (see `labels_to_1k` for the label forms)."""
    import datasets
    import pyarrow.compute as pc

    img_col, lab_col = _find_columns(ds.column_names, source)
    ds = ds.cast_column(img_col, datasets.Image(decode=False))
    targets = labels_to_1k(list(ds[lab_col]), ds.features[lab_col], n_classes, subset_to_1k, source)
    # file names only, from arrow (the image bytes are not read)
    paths = pc.struct_field(ds.with_format("arrow")[img_col], "path").to_pylist()
    rows = list(range(len(ds)))
    files = [p if p else f"{source}#{r}" for r, p in zip(rows, paths, strict=True)]
    return Listing(files, targets, f"hf:{source}", HFLoader(ds, rows, img_col))


def labels_to_1k(raw: list, feature, n_classes: int, subset_to_1k, source: str) -> list[int]:
    """Labels as ImageNet class indices. Accepted forms: integer class indices (0..999, or 0..199 into
    the sorted 200-class subset of a 200-class set), a ClassLabel whose names are wnids, a ClassLabel
    named by ImageNet's class words in class-index order (ILSVRC/imagenet-1k: "tench, Tinca tinca",
    ...; checked name by name), or wnid strings (n01440764)."""
    index = wnid_index()
    names = getattr(feature, "names", None)        # a datasets.ClassLabel's; None for plain values
    if names and all(n in index for n in names):
        to_1k = {i: index[n] for i, n in enumerate(names)}
    elif names and _class_word_order(names, subset_to_1k, source) is not None:
        to_1k = dict(enumerate(_class_word_order(names, subset_to_1k, source)))
    elif any(isinstance(x, str) for x in raw):
        to_1k = {w: i for w, i in index.items()}
    elif subset_to_1k is not None:
        to_1k = {i: c for i, c in enumerate(subset_to_1k)}
    else:
        if names and len(names) != n_classes:
            raise DatasetLayoutError(f"{source}: label has {len(names)} classes, expected {n_classes}")
        to_1k = {i: i for i in range(1000)}
    bad = sorted({x for x in raw if x not in to_1k}, key=str)
    if bad:
        hint = " (-1 marks an unlabelled row: is this a test split?)" if -1 in bad else ""
        raise DatasetLayoutError(
            f"{source}: labels {_examples([str(b) for b in bad])} are not ImageNet classes{hint}; accepted "
            f"labels are class indices 0..{n_classes - 1}, a ClassLabel whose names are wnids, or wnid "
            f"strings such as n01440764")
    return [to_1k[x] for x in raw]


def _synonyms(name: str) -> set[str]:
    """A class name's comma-separated synonyms, case and spacing normalized."""
    return {" ".join(w.replace("_", " ").split()).casefold() for w in str(name).split(",")} - {""}


_MAX_RENAMED = 10      # class-word names allowed to differ from imagenet_lemmas() (renamed duplicates: 'crane')


def _class_word_order(names: Sequence[str], subset_to_1k, source: str) -> list[int] | None:
    """The ImageNet class of each ClassLabel position when the names are ImageNet's class words
    (imagenet_lemmas(), which follow imagenet_synsets()) in class-index order, for all 1000 classes
    or a set's 200; None when they are not class words at all. Each name must share a synonym with its
    position's class (a few renamed ones, such as the second 'crane' made unique, are let through);
    a name of another class there means another order, which is refused: names are never matched
    to classes by themselves ('crane' stands for two classes)."""
    from vitbench.catalog import imagenet_lemmas

    lemmas = [_synonyms(x) for x in imagenet_lemmas()]
    classes = list(subset_to_1k) if subset_to_1k is not None and len(names) == len(subset_to_1k) \
        else list(range(len(lemmas)))
    if len(names) != len(classes):
        return None
    syns = [_synonyms(n) for n in names]
    off = [k for k, c in enumerate(classes) if not syns[k] & lemmas[c]]
    if len(off) > len(classes) // 2:
        return None                                  # not class words: another kind of names
    moved = [k for k in off if any(syns[k] & lemmas[c] for c in classes)]
    if moved or len(off) > _MAX_RENAMED:
        k = (moved or off)[0]
        raise DatasetLayoutError(
            f"{source}: the label ClassLabel's names are ImageNet class words but not the {len(classes)} "
            f"classes in class-index (sorted wnid) order: position {k} is {names[k]!r}, expected "
            f"{imagenet_lemmas()[classes[k]]!r}; labels cannot be mapped safely")
    if off:
        log.info("%s: %d ClassLabel name(s) differ from ImageNet's class words, taken in position order: %s",
                 source, len(off), _examples([f"{k}: {names[k]!r}" for k in off], 3))
    return classes


# ---------------------------------------------------------------- local parquet, read in place

class ParquetLoader:
    """Picklable item -> PIL image for rows of local parquet files, read where they are (no copy
    into a cache). Rows are found by row group; the last row group read is kept, so a batch of
    neighbouring rows reads each row group once."""

    def __init__(self, files: list[str], column: str, groups: list[tuple[int, int, int]]):
        self.files, self.column = files, column
        self.groups = groups                      # (first global row, file index, row group), by row
        self.starts = [g[0] for g in groups]
        self._open: dict = {}
        self._cached: tuple | None = None         # ((file, group), image column of that group)

    def __getstate__(self):
        return {**self.__dict__, "_open": {}, "_cached": None}

    def cell(self, row: int):
        """The row's image cell as stored ({bytes, path}, or bytes)."""
        import bisect

        import pyarrow.parquet as pq

        k = bisect.bisect_right(self.starts, row) - 1
        first, f, g = self.groups[k]
        if self._cached is None or self._cached[0] != (f, g):
            if f not in self._open:
                self._open[f] = pq.ParquetFile(self.files[f], memory_map=True)
            col = self._open[f].read_row_group(g, columns=[self.column]).column(0).combine_chunks()
            self._cached = ((f, g), col)
        return self._cached[1][row - first].as_py()

    def read(self, row: int) -> bytes:
        """The image's encoded bytes (what decoding starts from)."""
        cell = self.cell(row)
        return cell if isinstance(cell, (bytes, bytearray)) else cell["bytes"]

    def __call__(self, row: int) -> Image.Image:
        return _open_cell(self.cell(row))


def parquet_files(source: Path, split: str | None) -> tuple[list[Path], str | None]:
    """The parquet files of one split: a file as given, or a folder's files of `split` (default:
    validation) by Hugging Face's split naming (data/validation-00000-of-00014.parquet, ...)."""
    if source.is_file():
        return [source], split
    _quiet_datasets()
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        patterns = get_data_patterns(str(source))
        by_split = {str(k): sorted(Path(f) for f in v if str(f).endswith(".parquet"))
                    for k, v in DataFilesDict.from_patterns(patterns, base_path=str(source)).items()}
    except Exception:  # noqa: BLE001 - no recognisable split names: every parquet file is one split
        by_split = {}
    by_split = {k: v for k, v in by_split.items() if v}
    if not by_split:
        files = sorted(source.rglob("*.parquet"))
        if not files:
            raise DatasetLayoutError(f"{source}: no parquet files and not a save_to_disk folder")
        return files, None
    if split is None:
        if len(by_split) == 1:
            return next(iter(by_split.values())), None
        if DEFAULT_SPLIT not in by_split:
            raise DatasetLayoutError(
                f"{source}: parquet files of the splits {', '.join(sorted(by_split))} and no "
                f"{DEFAULT_SPLIT!r} split; choose one with {source}@SPLIT")
        split = DEFAULT_SPLIT
    if split not in by_split:
        raise DatasetLayoutError(f"{source}: no {split!r} split among its parquet files (has "
                                 f"{', '.join(sorted(by_split))}); choose one with {source}@SPLIT")
    return by_split[split], split


def read_parquet(source: Path, split: str | None, n_classes: int,
                 subset_to_1k: Sequence[int] | None = None) -> Listing:
    """Local parquet (a file, or a folder of Hugging Face split shards), read in place: only the label
    and image-path columns are read here, the image bytes by row group as they are evaluated."""
    files, split = parquet_files(source, split)
    where = f"{source}@{split}" if split else str(source)
    return read_parquet_files(files, where, n_classes, subset_to_1k)


def read_parquet_files(files: Sequence[Path], where: str, n_classes: int,
                       subset_to_1k: Sequence[int] | None = None) -> Listing:
    """These parquet files (one split, one schema), read in place: only these files are opened, and
    of them only the label and image-path columns here."""
    import pyarrow.parquet as pq

    datasets = _quiet_datasets()
    first_schema, groups, raw, paths = None, [], [], []
    for k, path in enumerate(files):
        try:
            pf = pq.ParquetFile(str(path), memory_map=True)
            schema = pf.schema_arrow
        except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
            raise DatasetLayoutError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None
        if first_schema is None:
            first_schema = schema
            img_col, lab_col = _find_columns(schema.names, str(path))
            feature = datasets.Features.from_arrow_schema(schema).get(lab_col)
        elif not schema.equals(first_schema, check_metadata=False):
            raise DatasetLayoutError(
                f"{path}: its columns differ from {files[0]}'s ({_schema_text(schema)} vs "
                f"{_schema_text(first_schema)}); a split's parquet files must share one schema")
        n0 = len(raw)
        try:
            table = pf.read(columns=[lab_col] + ([f"{img_col}.path"] if _has_path(schema, img_col) else []))
        except Exception as e:  # noqa: BLE001 - a truncated or corrupt file
            raise DatasetLayoutError(f"{path}: cannot read its columns ({type(e).__name__}: {e})") from None
        raw += table.column(lab_col).to_pylist()
        file_paths = (table.column(img_col).combine_chunks().field("path").to_pylist()
                      if img_col in table.column_names else [None] * table.num_rows)
        paths += [p or f"{path}#{r}" for r, p in enumerate(file_paths)]
        row = n0
        for g in range(pf.metadata.num_row_groups):
            groups.append((row, k, g))
            row += pf.metadata.row_group(g).num_rows
    named = where if len(files) == 1 else f"{where} ({len(files)} files: {Path(files[0]).name}, ...)"
    targets = labels_to_1k(raw, feature, n_classes, subset_to_1k, named)
    log.info("%s: %d rows in %d parquet file(s), read in place", where, len(raw), len(files))
    return Listing(paths, targets, f"hf:{where}", ParquetLoader([str(f) for f in files], img_col, groups))


def _has_path(schema, column: str) -> bool:
    import pyarrow as pa

    t = schema.field(column).type
    return pa.types.is_struct(t) and t.get_field_index("path") >= 0


def _schema_text(schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)
