"""Images inside archives, read where they lie.

    read_tar_shards([a.tar, b.tar], ...)  webdataset shards (key.jpg + key.cls / key.json), or tar
                                          archives of class folders: members indexed once (name,
                                          offset, size), image bytes read by offset as evaluated
    read_zip(x.zip, ...)                  a zip of class folders (sketch/<wnid>/*.JPEG): members read
                                          from the zip in place
    extract_once(x.tar.gz, dest)          a gzip stream cannot be read in place: extracted once, into
                                          a temporary folder renamed into place, a marker written last

Every reader returns a `Listing` (one entry per image, its ImageNet class, a picklable loader for
DataLoader workers) and checks what the archive holds before any image is decoded: a truncated
shard, a sample without an image or a label, and a class set that is not the dataset's are errors
naming the archive.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tarfile
import zipfile
from array import array
from pathlib import Path
from typing import Sequence

from PIL import Image

from vitbench.data.layouts import (
    WNID_RE,
    DatasetLayoutError,
    Listing,
    _examples,
    check_class_folders,
    check_class_set,
    is_image,
    labels_to_1k,
    open_image_bytes,
    wnid_index,
)

log = logging.getLogger(__name__)

EXTRACTED_MARKER = ".vitbench-extracted"        # written last into a finished extraction
_CLASS_MEMBER_RE = re.compile(r"(?:(?P<prefix>.*)/)?(?P<cls>n\d{8}|\d+)/(?P<file>[^/]+)")


class NotAnImageArchive(DatasetLayoutError):
    """An archive that holds neither webdataset samples nor class folders."""


def split_key(name: str) -> tuple[str, str]:
    """A webdataset member name as (sample key, field): the key is the path up to the first dot of
    the file name, the field what follows ('a/ILSVRC2012_val_00000001.jpg' -> ('a/ILSVRC2012_val_00000001', 'jpg'))."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower() if dot else ""


# ---------------------------------------------------------------- loaders (picklable, for DataLoader workers)

class TarMemberLoader:
    """Picklable item -> PIL image for members of tar files, read by (file, offset, size): one read
    per image, no tarfile parsing. Open files are per process (dropped when pickled)."""

    def __init__(self, archives: list[str], which: array, offsets: array, sizes: array):
        self.archives, self.which, self.offsets, self.sizes = archives, which, offsets, sizes
        self._open: dict[int, object] = {}

    def __getstate__(self):
        return {**self.__dict__, "_open": {}}

    def read(self, i: int) -> bytes:
        """The image's encoded bytes (what decoding starts from)."""
        k = self.which[i]
        if k not in self._open:
            self._open[k] = open(self.archives[k], "rb", buffering=0)
        f = self._open[k]
        if hasattr(os, "pread"):
            data = os.pread(f.fileno(), self.sizes[i], self.offsets[i])
        else:                                                      # Windows
            f.seek(self.offsets[i])
            data = f.read(self.sizes[i])
        if len(data) != self.sizes[i]:
            raise OSError(f"{self.archives[k]}: truncated ({len(data)} of {self.sizes[i]} bytes at offset "
                          f"{self.offsets[i]})")
        return data

    def __call__(self, i: int) -> Image.Image:
        return open_image_bytes(self.read(i))


class ZipMemberLoader:
    """Picklable item -> PIL image for members of one zip file, read from it in place. The open zip
    is per process (dropped when pickled)."""

    def __init__(self, archive: str, names: list[str]):
        self.archive, self.names = archive, names
        self._zip: zipfile.ZipFile | None = None

    def __getstate__(self):
        return {**self.__dict__, "_zip": None}

    def read(self, i: int) -> bytes:
        """The image's encoded bytes (what decoding starts from)."""
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.archive)
        return self._zip.read(self.names[i])

    def __call__(self, i: int) -> Image.Image:
        return open_image_bytes(self.read(i))


# ---------------------------------------------------------------- indexing

def index_tar(path: Path) -> list[tuple[str, int, int]]:
    """(member name, data offset, size) of every regular file in a tar, in archive order; only the
    headers are read. A file that ends inside a member, or without the end-of-archive block, is
    truncated: DatasetLayoutError naming it."""
    size = os.path.getsize(path)
    try:
        with tarfile.open(path, "r:") as tf:
            members = [(m.name, m.offset_data, m.size) for m in tf if m.isfile()]
            end = tf.offset
    except tarfile.ReadError as e:
        if "unexpected end of data" in str(e):       # tarfile's word for a file that ends inside a member
            raise DatasetLayoutError(f"{path}: truncated: it ends inside a member, at byte {size:,} (an "
                                     f"interrupted download or copy: fetch it again)") from None
        raise DatasetLayoutError(f"{path}: not a readable tar file (ReadError: {e})") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetLayoutError(f"{path}: not a readable tar file ({type(e).__name__}: {e})") from None
    short = next(((n, o + s) for n, o, s in members if o + s > size), None)
    if short:
        raise DatasetLayoutError(f"{path}: truncated: member {short[0]} needs {short[1]:,} bytes, the file "
                                 f"has {size:,} (an interrupted download or copy: fetch it again)")
    with open(path, "rb") as f:
        f.seek(end)
        tail = f.read(512)
    if len(tail) < 512 or tail.count(0) != 512:
        raise DatasetLayoutError(f"{path}: truncated after {len(members)} members: no end-of-archive "
                                 f"block at byte {end:,} of {size:,} (an interrupted download or copy: "
                                 f"fetch it again)")
    return members


# ---------------------------------------------------------------- webdataset and class-folder tars

def read_tar_shards(shards: Sequence[Path], where: str, expected_folders: Sequence[str],
                    classes: Sequence[int], numbered: bool = False,
                    subset_to_1k: Sequence[int] | None = None) -> Listing:
    """Tar files read in place: webdataset shards when they hold `.cls`/`.json` label members, else
    archives of class folders (`<class>/<image>`, where <class> is a wnid or, `numbered`, a class
    index). `classes` are the ImageNet classes the dataset must show (every one, no other)."""
    indexed = [index_tar(Path(p)) for p in shards]
    names = [n for members in indexed for n, _, _ in members]
    if any(split_key(n)[1] in ("cls", "json") for n in names):
        listing = _webdataset(shards, indexed, where, len(classes), subset_to_1k)
        check_class_set(listing.targets, classes, where)
        return listing
    return _class_members(where, [(k, n, o, s) for k, members in enumerate(indexed) for n, o, s in members],
                          expected_folders, numbered, [str(p) for p in shards], "tar")


def _webdataset(shards: Sequence[Path], indexed: list, where: str, n_classes: int,
                subset_to_1k: Sequence[int] | None) -> Listing:
    """Samples grouped by key in each shard; the image is its jpg/jpeg/png/webp member, the label its
    `cls` member (a class index as text), else its `json` member's "label"."""
    files, raw, which, offsets, sizes = [], [], array("q"), array("q"), array("q")
    no_image, no_label = [], []
    for k, (shard, members) in enumerate(zip(shards, indexed, strict=True)):
        samples: dict[str, dict[str, tuple[int, int]]] = {}
        for name, off, size in members:
            key, ext = split_key(name)
            samples.setdefault(key, {})[ext] = (off, size)
        with open(shard, "rb") as f:                   # the labels: one small read per sample
            for key, fields in samples.items():
                image = next((e for e in fields if is_image(f"x.{e}")), None)
                if image is None:
                    no_image.append(f"{Path(shard).name}:{key}")
                    continue
                label = _sample_label(f, fields)
                if label is None:
                    no_label.append(f"{Path(shard).name}:{key}")
                    continue
                files.append(f"{shard}/{key}.{image}")
                raw.append(label)
                which.append(k)
                offsets.append(fields[image][0])
                sizes.append(fields[image][1])
    if no_image or no_label:
        what = "; ".join(x for x in (
            f"{len(no_image)} sample(s) without an image (jpg/jpeg/png/webp): {_examples(no_image, 3)}"
            if no_image else "",
            f"{len(no_label)} sample(s) without a label (cls, or json with a label): {_examples(no_label, 3)}"
            if no_label else "") if x)
        raise DatasetLayoutError(f"{where}: {what}")
    targets = labels_to_1k(raw, None, n_classes, subset_to_1k, where)
    log.info("%s: %d samples in %d webdataset shard(s), read in place", where, len(files), len(shards))
    return Listing(files, targets, "webdataset", TarMemberLoader([str(p) for p in shards], which, offsets, sizes))


def _sample_label(f, fields: dict[str, tuple[int, int]]):
    """A sample's class: its cls member (an integer), else its json member's "label" (an integer or a
    wnid); None when it has neither. `f` is the shard, open."""
    def read(offset: int, size: int) -> bytes:
        f.seek(offset)
        return f.read(size)

    if "cls" in fields:
        text = read(*fields["cls"]).decode("utf-8", "replace").strip()
        return int(text) if text.lstrip("-").isdigit() else text
    if "json" in fields:
        try:
            meta = json.loads(read(*fields["json"]))
        except ValueError:
            return None
        label = meta.get("label") if isinstance(meta, dict) else None
        return label if isinstance(label, (int, str)) else None
    return None


def _class_members(where: str, members: list[tuple[int, str, int, int]], expected: Sequence[str],
                   numbered: bool, archives: list[str], kind: str, folders: Sequence[str] = ()) -> Listing:
    """Members `<...>/<class>/<image>` of archives as a listing; the class folders found (with
    `folders`, the archive's own folder entries, which may be empty) must be exactly `expected`."""
    picked, subdirs = [], set(folders)
    for k, name, off, size in members:
        m = _CLASS_MEMBER_RE.fullmatch(name)
        if m and is_image(m["file"]):
            picked.append((m["cls"], name, k, off, size))
            subdirs.add(m["cls"])
        elif "/" in name:
            subdirs.add(name.rsplit("/", 2)[-2])
    if not any(d.isdigit() if numbered else WNID_RE.fullmatch(d) for d in subdirs):
        images = sum(1 for _, name, _, _ in members if is_image(name))
        raise NotAnImageArchive(
            f"{where}: a {kind} archive holding neither webdataset samples (key.jpg with key.cls or "
            f"key.json) nor class folders (<{'class index' if numbered else 'wnid'}>/<image>), but "
            f"{images} image(s) {'and other files ' if images < len(members) else ''}outside any class "
            f"folder (an archive of ImageNet-val as distributed: extract it beside a labels file)")
    found = check_class_folders(where, sorted(subdirs), expected, numbered)
    to_class = {d: int(d) for d in found} if numbered else wnid_index()
    picked = sorted((to_class[c], name, k, off, size) for c, name, k, off, size in picked if c in to_class)
    if not picked:
        raise DatasetLayoutError(f"{where}: no images in its class folders")
    files = [f"{archives[k]}/{name}" for _, name, k, _, _ in picked]
    targets = [t for t, *_ in picked]
    layout = f"{'numbered' if numbered else 'wnid'}-folders in {kind}"
    log.info("%s: %d images in %s class folders, read in place", where, len(files), kind)
    if kind == "zip":
        return Listing(files, targets, layout, ZipMemberLoader(archives[0], [name for _, name, *_ in picked]))
    return Listing(files, targets, layout, TarMemberLoader(
        archives, array("q", [k for *_, k, _, _ in picked]), array("q", [o for *_, o, _ in picked]),
        array("q", [s for *_, s in picked])))


# ---------------------------------------------------------------- zip

def read_zip(path: Path, where: str, expected_folders: Sequence[str], numbered: bool = False) -> Listing:
    """A zip of class folders (sketch/n01440764/n01440764_1.JPEG, ...), read in place: the central
    directory is read here, each image from the zip as it is evaluated."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DatasetLayoutError(f"{path}: not a readable zip file ({type(e).__name__}: {e}); a truncated "
                                 f"download? fetch it again") from None
    size = os.path.getsize(path)
    short = next((i.filename for i in infos if i.header_offset + i.compress_size > size), None)
    if short:
        raise DatasetLayoutError(f"{path}: truncated: member {short} lies beyond the end of the file")
    dirs = [i.filename.rstrip("/").rsplit("/", 1)[-1] for i in infos if i.is_dir()]
    members = [(0, i.filename, 0, 0) for i in infos if not i.is_dir()]
    return _class_members(where, members, expected_folders, numbered, [str(path)], "zip",
                          folders=[d for d in dirs if d.isdigit() or WNID_RE.fullmatch(d)])


# ---------------------------------------------------------------- .tar.gz: extracted once

def extract_once(archive: Path, dest: Path) -> Path:
    """`archive` (a .tar.gz) extracted into `dest`, once: a finished extraction holds the marker file,
    which is written last, into a temporary folder that is then renamed to `dest`; so a `dest` is
    either complete or absent. A `dest` without the marker (not made by a finished extraction) and
    the leftovers of an interrupted one are removed, and the extraction done again."""
    if (dest / EXTRACTED_MARKER).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        log.warning("%s: an unfinished extraction (no %s): removed, extracting again", dest, EXTRACTED_MARKER)
        shutil.rmtree(dest)
    _remove_stale_partials(dest)
    need, free = os.path.getsize(archive), shutil.disk_usage(dest.parent).free
    if need > free:
        raise DatasetLayoutError(f"{archive}: extracting it needs about {need / 1e9:.1f} GB in {dest.parent}, "
                                 f"which has {free / 1e9:.1f} GB free")
    tmp = dest.parent / f".{dest.name}.partial-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("extracting %s into %s (once)", archive, dest)
    try:
        n = _extract_all(archive, tmp)
        (tmp / EXTRACTED_MARKER).write_text(json.dumps(
            {"archive": str(archive), "bytes": need, "members": n}) + "\n")     # last: the extraction is whole
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / EXTRACTED_MARKER).is_file():     # not another process's finished extraction
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _extract_all(archive: Path, into: Path) -> int:
    """Extract every member, refusing paths that leave `into`; the number of members."""
    into.mkdir(parents=True)
    n = 0
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                _check_member(member, archive)
                if hasattr(tarfile, "data_filter"):
                    tf.extract(member, into, filter="data")
                else:                                               # Python < 3.10.12 / 3.11.4
                    tf.extract(member, into)
                n += 1
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetLayoutError(f"{archive}: cannot be extracted ({type(e).__name__}: {e}); a truncated "
                                 f"download? fetch it again") from None
    return n


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    if name.startswith("/") or ".." in Path(name).parts or member.issym() or member.islnk() or member.isdev():
        raise DatasetLayoutError(f"{archive}: member {name!r} is a link, a device or leaves the archive's "
                                 f"folder; refused")


def _remove_stale_partials(dest: Path) -> None:
    """Leftovers of extractions into `dest` interrupted on this host (their process is gone)."""
    host = socket.gethostname()
    for p in dest.parent.glob(f".{dest.name}.partial-{host}-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False                     # our own leftover from an earlier, failed attempt
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


__all__ = ["NotAnImageArchive", "read_tar_shards", "read_zip", "extract_once", "index_tar", "split_key",
           "TarMemberLoader", "ZipMemberLoader", "EXTRACTED_MARKER"]
