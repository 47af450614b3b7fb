"""Where a dataset's images are when no local folder holds them: the local Hugging Face cache, then the
Hub. Each dataset's Hub repos are rows of the spec table (`DatasetSpec.hub`, the default first);
only the files a dataset reads are looked for, fetched and read, where they lie in the HF cache.

    locate("v2")   -> (Located | None, looked)   found in the HF cache, or fetched from the Hub
    hub_files(src) -> HubFiles                  the repo's files of a source and their sizes (asked once)
    fetch_source(src, files)                    download what is missing, after a disk-space check

Order, for one dataset: every source's snapshot in the HF cache (HF_HUB_CACHE / HF_HOME; works with
HF_HUB_OFFLINE=1), then the Hub for the default source: its file listing (sizes, the revision),
free disk space checked against what is missing, a gated repo's access checked, then
`snapshot_download(repo_type="dataset", allow_patterns=<its files>)` (resumable, with a progress bar).
Under torchrun only local rank 0 of each node fetches (and extracts) while the others wait at the
barrier, then read the cache. Without network the Hub is asked once per process (vitbench.hub).
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Sequence

from vitbench import hub
from vitbench.data.archives import EXTRACTED_MARKER, extract_once
from vitbench.data.layouts import DataSource
from vitbench.data.specs import HubSource, hub_sources

log = logging.getLogger(__name__)


class HubUnavailable(Exception):
    """The Hub cannot give a source's files now; the message says why (offline, unreachable, gated,
    no such repo, not enough disk space) and, where there is one, the fix."""


def vitbench_cache_dir() -> Path:
    """Where vitbench keeps what it derives from downloads (a .tar.gz extracted once): $VITBENCH_CACHE,
    else $XDG_CACHE_HOME/vitbench (~/.cache/vitbench)."""
    if os.environ.get("VITBENCH_CACHE"):
        return Path(os.path.expanduser(os.environ["VITBENCH_CACHE"]))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "vitbench"


def repo_folder(repo: str) -> str:
    """The HF cache's folder name of a dataset repo (datasets--ORG--NAME)."""
    return "datasets--" + repo.replace("/", "--")


def gb(n: int | float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def matches(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(path, p) for p in patterns)


def gated_message(src: HubSource) -> str:
    return (f"{src.repo} is gated: accept its terms at {src.url} (logged in to the Hub), then log in "
            f"here with `hf auth login` (older clients: `huggingface-cli login`) or set HF_TOKEN")


# ---------------------------------------------------------------- what was found

@dataclass(frozen=True)
class Located:
    """A source's files in a snapshot of the HF cache."""
    source: HubSource
    revision: str                  # the snapshot's commit sha
    snapshot: Path                 # snapshots/<revision> in the HF cache
    files: tuple[str, ...]         # repo-relative paths of the files read, sorted
    how: str                       # 'hf-cache' (found there) | 'hf-hub' (fetched by this process)
    complete: bool = True          # all the source's files (else only used for a declared subset)
    root: Path | None = None       # where the images lie: the snapshot, or a .tar.gz's extraction

    @property
    def paths(self) -> list[Path]:
        return [self.snapshot / f for f in self.files]

    @property
    def where(self) -> str:
        return f"{self.source.repo}@{self.revision[:7]}"

    def data_source(self) -> DataSource:
        return DataSource(self.how, str(self.root or self.snapshot), self.source.repo, self.revision, self.files)

    def __str__(self) -> str:
        return f"{self.where} ({len(self.files)} file(s) in {self.snapshot})"


@dataclass(frozen=True)
class HubFiles:
    """A source's files on the Hub, at the revision `main` pointed to when asked."""
    repo: str
    revision: str
    sizes: tuple[tuple[str, int], ...]       # (repo-relative path, bytes), sorted
    gated: bool = False

    @property
    def total(self) -> int:
        return sum(n for _, n in self.sizes)


# ---------------------------------------------------------------- the HF cache

def _snapshots(repo_dir: Path) -> list[Path]:
    """The repo's snapshots, the one refs/main names first, then the newest."""
    snaps = repo_dir / "snapshots"
    if not snaps.is_dir():
        return []
    found = sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    ref = repo_dir / "refs" / "main"
    main = ref.read_text().strip() if ref.is_file() else None
    return sorted(found, key=lambda p: p.name != main)


def _matching(snapshot: Path, patterns: Sequence[str]) -> list[str]:
    """The snapshot's files matching `patterns` whose blob is there (a dangling link is not a file)."""
    out = []
    for folder, _, names in os.walk(snapshot):
        rel = os.path.relpath(folder, snapshot).replace(os.sep, "/")
        for n in names:
            path = n if rel == "." else f"{rel}/{n}"
            if matches(path, patterns) and os.path.exists(os.path.join(folder, n)):
                out.append(path)
    return sorted(out)


def find_in_cache(src: HubSource, cache_dir: Path) -> tuple[Located | None, str]:
    """The source's files in the HF cache: (all of them, '') or (the most there are, with
    complete=False, and what is missing) or (None, why not)."""
    repo_dir = cache_dir / repo_folder(src.repo)
    best: Located | None = None
    for snap in _snapshots(repo_dir):
        files = _matching(snap, src.files)
        if files and (src.n_files is None or len(files) >= src.n_files):
            return Located(src, snap.name, snap, tuple(files), "hf-cache"), ""
        if files and (best is None or len(files) > len(best.files)):
            best = Located(src, snap.name, snap, tuple(files), "hf-cache", complete=False)
    patterns = " ".join(src.files)
    if best is not None:
        return best, (f"HF cache {cache_dir}: {best.where} has {len(best.files)} of the {src.n_files} files "
                      f"{patterns} (an interrupted download?)")
    if not repo_dir.is_dir():
        return None, f"HF cache {cache_dir}: no {src.repo}"
    return None, f"HF cache {cache_dir}: {src.repo} has no {patterns}"


def extraction_dir(loc: Located) -> Path:
    """Where a .tar.gz source's archive is extracted (once): under vitbench's cache, by repo and revision."""
    name = Path(loc.files[0]).name
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else Path(name).stem
    return vitbench_cache_dir() / "extracted" / repo_folder(loc.source.repo) / loc.revision / stem


def _ready(loc: Located, prepare: bool) -> Located:
    """`loc` with `root` set: the snapshot, or for a .tar.gz its extraction (done now when `prepare`;
    otherwise, on the ranks that wait, it must have been finished by local rank 0)."""
    if loc.source.kind != "tar.gz":
        return replace(loc, root=loc.snapshot)
    dest = extraction_dir(loc)
    if prepare:
        extract_once(loc.paths[0], dest)
    elif not (dest / EXTRACTED_MARKER).is_file():
        raise HubUnavailable(f"{loc.where}: {loc.files[0]} is not extracted into {dest} (local rank 0 "
                             f"extracts it; did it fail?)")
    return replace(loc, root=dest)


def prepare(loc: Located) -> Located:
    """`loc` ready to read: a .tar.gz extracted (once)."""
    return _ready(loc, prepare=True)


# ---------------------------------------------------------------- the Hub

def hub_files(src: HubSource) -> HubFiles:
    """The source's files on the Hub and their sizes; asked once per repo per process (an error too),
    and not at all when offline or when the Hub was found unreachable."""
    return hub.HUB.ask(("dataset-files", src.repo, src.files), lambda: _list_hub_files(src))


def _list_hub_files(src: HubSource) -> HubFiles:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if hub.hub_offline():
        raise HubUnavailable("not asked: offline (HF_HUB_OFFLINE=1)")
    unreachable = hub.HUB.unreachable()
    if unreachable:
        raise HubUnavailable(f"unreachable ({unreachable})")
    try:
        info = HfApi().dataset_info(src.repo, files_metadata=True)
    except GatedRepoError:
        raise HubUnavailable(gated_message(src)) from None
    except RepositoryNotFoundError:
        raise HubUnavailable(f"no dataset repo {src.repo} on the Hub (or it is private: "
                             f"`hf auth login`)") from None
    except Exception as e:  # noqa: BLE001 - network down, DNS, timeouts: a line, not a traceback
        reason = _short(e)
        if not (isinstance(e, HfHubHTTPError) and getattr(e, "response", None) is not None):
            hub.HUB.mark_unreachable(reason)           # no answer at all: skip the Hub from now on
        raise HubUnavailable(f"unreachable ({reason})") from None
    sizes = sorted((s.rfilename, int(s.size or 0)) for s in (info.siblings or ()) if matches(s.rfilename, src.files))
    if not sizes:
        raise HubUnavailable(f"{src.repo}@{info.sha[:7]} has no file matching {' '.join(src.files)}")
    if src.n_files is not None and len(sizes) != src.n_files:
        log.warning("%s@%s: %d files match %s, expected %d", src.repo, info.sha[:7], len(sizes),
                    " ".join(src.files), src.n_files)
    return HubFiles(src.repo, info.sha, tuple(sizes), bool(getattr(info, "gated", False)))


def _short(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def free_bytes(path: Path) -> int:
    """Free disk space where `path` is (or would be created)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def missing_bytes(src: HubSource, files: HubFiles, cache_dir: Path) -> tuple[dict[str, int], int]:
    """The files not yet in the cache at `files.revision` with their sizes, and the disk space a fetch
    needs: their bytes, plus room to extract a .tar.gz."""
    snap = cache_dir / repo_folder(src.repo) / "snapshots" / files.revision
    missing = {f: n for f, n in files.sizes if not (snap / f).exists()}
    need = sum(missing.values())
    if src.kind == "tar.gz":
        loc = Located(src, files.revision, snap, tuple(f for f, _ in files.sizes), "hf-hub")
        if not (extraction_dir(loc) / EXTRACTED_MARKER).is_file():
            need += files.total                       # the extracted images, about the archive's size
    return missing, need


def fetch_source(src: HubSource, files: HubFiles, cache_dir: Path | None = None) -> Located:
    """Download the source's files missing from the HF cache (nothing when all are there): free disk
    space is checked first, and a gated repo's access; the download resumes an interrupted one."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import GatedRepoError

    cache_dir = cache_dir or hub.hf_cache_dir()
    missing, need = missing_bytes(src, files, cache_dir)
    if missing:
        free = free_bytes(cache_dir)
        if need > free:
            raise HubUnavailable(
                f"not enough disk space to fetch {src.repo}: {gb(need)} needed in {cache_dir} "
                f"({len(missing)} file(s)), {gb(free)} free; free some space, or point HF_HOME "
                f"(HF_HUB_CACHE) at a larger disk")
        if files.gated or src.gated:
            _check_access(src, files, next(iter(missing)))
        log.info("%s@%s: downloading %d file(s), %s, into %s", src.repo, files.revision[:7], len(missing),
                    gb(sum(missing.values())), cache_dir)
        try:
            snapshot_download(src.repo, repo_type="dataset", revision=files.revision,
                              allow_patterns=sorted(missing), cache_dir=str(cache_dir))
        except GatedRepoError:
            raise HubUnavailable(gated_message(src)) from None
        except Exception as e:  # noqa: BLE001 - what is already downloaded is kept; a rerun resumes
            raise HubUnavailable(f"downloading {src.repo} failed ({_short(e)}); run it again to resume") from None
    snap = cache_dir / repo_folder(src.repo) / "snapshots" / files.revision
    short = [f for f, n in files.sizes if not (snap / f).is_file() or (snap / f).stat().st_size != n]
    if short:
        raise HubUnavailable(f"{src.repo}@{files.revision[:7]}: after the download {', '.join(short[:3])} "
                             f"is missing or of another size than the Hub says; run it again")
    return Located(src, files.revision, snap, tuple(f for f, _ in files.sizes), "hf-hub" if missing else "hf-cache")


def _check_access(src: HubSource, files: HubFiles, one: str) -> None:
    """A gated repo: ask for one file's metadata before a long download, to say at once if the terms
    are not accepted or no token is given."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import GatedRepoError

    try:
        get_hf_file_metadata(hf_hub_url(src.repo, one, repo_type="dataset", revision=files.revision))
    except GatedRepoError:
        raise HubUnavailable(gated_message(src)) from None


# ---------------------------------------------------------------- locating one dataset

@dataclass
class Search:
    """What locating a dataset found: the source, or each place looked (one line each)."""
    found: Located | None = None
    looked: list[str] = field(default_factory=list)


def locate(name: str, sources: Sequence[HubSource] | None = None, *, limit: int | None = None,
           download: bool = True, is_local_main: bool = True,
           barrier: Callable[[], None] | None = None) -> Search:
    """`name`'s images in the HF cache, else fetched from the Hub (`download`), as a Search. Under
    torchrun pass `is_local_main` (local rank 0) and `barrier` (every process must call this; it waits
    at the barrier once): local rank 0 fetches and extracts, the others then read the cache.
    A cache holding only part of a source is used only with `limit` (a declared subset)."""
    sources = tuple(sources or hub_sources(name))
    if not sources:
        return Search(looked=[f"HF cache / hub: {name} has no Hub source"])
    if barrier is not None and not is_local_main:
        barrier()                                     # local rank 0 finds or fetches it first
        return _search(sources, limit, fetch=False, prepare=False, ask=False)
    try:
        return _search(sources, limit, fetch=download, prepare=True, ask=True)
    finally:
        if barrier is not None:
            barrier()


def _search(sources: Sequence[HubSource], limit: int | None, fetch: bool, prepare: bool, ask: bool) -> Search:
    """The cache, then the Hub: fetched (`fetch`), or only asked what there is (`ask`), or neither
    (a rank that is not local rank 0)."""
    cache_dir = hub.hf_cache_dir()
    search, partial = Search(), None
    for src in sources:
        loc, why = find_in_cache(src, cache_dir)
        if loc is not None and loc.complete:
            return _finish(search, loc, prepare)
        search.looked.append(why)
        partial = partial or loc
    src = partial.source if partial is not None else sources[0]
    try:
        if fetch:
            return _finish(search, fetch_source(src, hub_files(src), cache_dir), prepare)
        if ask:
            files = hub_files(src)
            search.looked.append(f"HF hub {src.repo}: {gb(files.total)} in {len(files.sizes)} file(s) at "
                                 f"{files.revision[:7]}, not fetched (no download asked for)")
        else:
            search.looked.append(f"HF hub {src.repo}: fetched by local rank 0 only")
    except HubUnavailable as e:
        search.looked.append(f"HF hub {src.repo}: {e}")
    if partial is not None and limit is not None:
        log.warning("%s: using the %d file(s) in the HF cache of the %s, for --limit %d (a subset)",
                    partial.where, len(partial.files), src.n_files, limit)
        return _finish(search, partial, prepare)
    return search


def _finish(search: Search, loc: Located, prepare: bool) -> Search:
    try:
        search.found = _ready(loc, prepare)
    except HubUnavailable as e:
        search.looked.append(str(e))
    return search


def split_snapshot(repo: str, split: str) -> Path | None:
    """A local copy of any Hub dataset repo given as `hf:REPO` holding parquet files of `split`: the
    snapshot in the HF cache, else (online) only that split's parquet files fetched into it. None when
    the repo has no parquet files of the split (its `datasets` loader is used then)."""
    from vitbench import hub

    patterns = [f"{split}-*.parquet", f"*/{split}-*.parquet", f"{split}/*.parquet", f"*/{split}/*.parquet",
                f"*/{split}/**/*.parquet"]
    cache_dir = hub.hf_cache_dir()
    for snap in _snapshots(cache_dir / repo_folder(repo)):
        if _matching(snap, patterns):
            return snap
    if hub.hub_offline() or hub.HUB.unreachable():
        return None
    from huggingface_hub import snapshot_download

    try:
        snap = Path(snapshot_download(repo, repo_type="dataset", allow_patterns=patterns + ["*.md", "*.json"],
                                      cache_dir=str(cache_dir)))
    except Exception as e:  # noqa: BLE001 - gated, missing, no network: the `datasets` path says why
        log.debug("%s: no parquet files of %s fetched (%s)", repo, split, _short(e))
        return None
    return snap if _matching(snap, patterns) else None


def known_source(name: str, repo: str) -> HubSource | None:
    """The source of `name` in repo `repo` (hf:REPO given with --data), None for another repo."""
    return next((s for s in hub_sources(name) if s.repo == repo), None)


__all__ = ["HubUnavailable", "Located", "HubFiles", "Search", "locate", "find_in_cache", "hub_files",
           "fetch_source", "missing_bytes", "prepare", "free_bytes", "known_source", "split_snapshot", "vitbench_cache_dir",
           "extraction_dir", "repo_folder", "gated_message", "gb"]
