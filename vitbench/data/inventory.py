"""The backend of `vitbench data list` and `vitbench data fetch`: where each dataset is, and fetching
the missing ones from their default Hub repo.

    describe_sources(["v2", "a"])  -> [SourceInfo, ...]   where found (folder / HF cache / on the Hub,
                                                           N GB to download / missing), format, image
                                                           count vs expected, class-set check, repo, revision
    fetch_plan(["imagenet", "r"])  -> FetchPlan           what a fetch would download (the total first)
    fetch(plan or names)           -> [SourceInfo, ...]   download it; nothing for what is already there

Nothing here downloads except `fetch`; `describe_sources` asks the Hub only for file listings (once
per repo per process, not at all offline).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

from vitbench import hub
from vitbench.data import sources
from vitbench.data.datasets import find_listing
from vitbench.data.layouts import DatasetLayoutError, DatasetNotFoundError
from vitbench.data.specs import DATASETS, check_dataset, hub_sources, resolve_override

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceInfo:
    """One dataset's source, as `vitbench data list` shows it."""
    name: str                        # vitbench dataset name
    where: str                       # 'folder' (a local folder or file) | 'hf-cache' | 'datasets' (--data
                                     # hf:ID through the `datasets` library) | 'hub' (not here, can be
                                     # fetched) | 'missing' | 'broken' (found, not usable: see problem)
    location: str                    # the folder or file, the HF cache folder, or the repo's page
    format: str | None = None        # how it is read: wnid-folders, parquet:REPO, webdataset:REPO, ...
    repo: str | None = None          # Hub dataset repo (found in the HF cache, or to fetch)
    revision: str | None = None      # its commit sha
    n_images: int | None = None      # images found that the dataset scores (class subset applied)
    n_expected: int = 0              # in the full dataset
    classes_ok: bool | None = None   # the class set is the dataset's (None: nothing found to check)
    download_bytes: int | None = None  # what fetching it would download (where == 'hub')
    problem: str | None = None       # why it cannot be used as it is; how to provide it

    @property
    def complete(self) -> bool:
        return self.n_images == self.n_expected

    def line(self) -> str:
        """One line for a listing."""
        if self.where == "hub":
            return (f"{self.name}: on the Hub, {sources.gb(self.download_bytes or 0)} to download from "
                    f"{self.repo}@{(self.revision or '?')[:7]} (`vitbench data fetch {self.name}`)")
        if self.where in ("missing", "broken"):
            first = (self.problem or "").splitlines()[0] if self.problem else ""
            return f"{self.name}: {self.where}: {first}"
        count = f"{self.n_images:,} of {self.n_expected:,} images" if self.n_images is not None else ""
        src = f" {self.repo}@{(self.revision or '?')[:7]}" if self.repo else ""
        return f"{self.name}: {self.where}{src} {self.location} ({self.format}; {count}; classes ok)"


def _names(names: Sequence[str] | None) -> list[str]:
    return [check_dataset(n).name for n in names] if names else list(DATASETS)


def describe_sources(names: Sequence[str] | None = None, data_root: str | os.PathLike | None = None,
                     overrides: dict[str, str] | None = None) -> list[SourceInfo]:
    """Where each dataset (default: all) is found, checked as a run would check it, without
    downloading anything: a local folder, the HF cache, or the Hub (with the size to download)."""
    return [_describe(n, data_root, overrides or {}) for n in _names(names)]


def _describe(name: str, data_root, overrides: dict[str, str]) -> SourceInfo:
    spec = check_dataset(name)
    try:   # limit=1: a partial copy is listed with its count (a run without --limit refuses it)
        found = find_listing(name, data_root, resolve_override(name, overrides), limit=1, download=False)
    except DatasetNotFoundError as e:
        return _on_hub(name, str(e))
    except DatasetLayoutError as e:
        return SourceInfo(name, "broken", "", n_expected=spec.n_expected, classes_ok=False, problem=str(e))
    listing = found.listing
    keep = set(spec.class_subset) if spec.class_subset else None
    n = sum(1 for t in listing.targets if keep is None or t in keep)
    src = listing.source
    where = "hf-cache" if src is not None and src.repo else "datasets" if found.root.startswith("hf:") else "folder"
    problem = None if n == spec.n_expected else f"{n:,} of {spec.n_expected:,} images: runs are labelled subsets"
    return SourceInfo(name, where, found.root, listing.layout, src.repo if src else None,
                      src.revision if src else None, n, spec.n_expected, True, problem=problem)


def _on_hub(name: str, not_found: str) -> SourceInfo:
    """Not on this machine: on the Hub (and how much to download), or missing and why."""
    spec = check_dataset(name)
    src = next(iter(hub_sources(name)), None)
    if src is None:
        return SourceInfo(name, "missing", "", n_expected=spec.n_expected, problem=not_found)
    try:
        files = sources.hub_files(src)
    except sources.HubUnavailable:
        return SourceInfo(name, "missing", src.url, repo=src.repo, n_expected=spec.n_expected, problem=not_found)
    missing, _ = sources.missing_bytes(src, files, hub.hf_cache_dir())
    return SourceInfo(name, "hub", src.url, src.kind, src.repo, files.revision, None, spec.n_expected,
                      download_bytes=sum(missing.values()))


# ---------------------------------------------------------------- fetching

@dataclass(frozen=True)
class FetchItem:
    names: tuple[str, ...]           # the datasets this source serves (imagenet, real, r-clean, a-clean)
    source: "sources.HubSource"
    files: "sources.HubFiles"
    missing: tuple[tuple[str, int], ...]   # (file, bytes) not yet in the HF cache
    need_bytes: int                  # disk space needed: the missing files, and room to extract

    @property
    def download_bytes(self) -> int:
        return sum(n for _, n in self.missing)


@dataclass(frozen=True)
class FetchPlan:
    items: tuple[FetchItem, ...]                 # what will be downloaded
    present: tuple[SourceInfo, ...]              # already on this machine: nothing to do
    unavailable: tuple[tuple[str, str], ...]     # (dataset, why it cannot be fetched)

    @property
    def total_bytes(self) -> int:
        return sum(i.download_bytes for i in self.items)

    def text(self) -> str:
        """What the fetch will do, the total first."""
        lines = [f"to download: {sources.gb(self.total_bytes)} in {sum(len(i.missing) for i in self.items)} "
                 f"file(s) from {len(self.items)} repo(s)"]
        lines += [f"  {i.source.repo}@{i.files.revision[:7]}: {sources.gb(i.download_bytes)} "
                  f"({', '.join(i.names)})" for i in self.items]
        lines += [f"  {p.name}: already here ({p.where} {p.location})" for p in self.present]
        lines += [f"  {n}: cannot be fetched: {why}" for n, why in self.unavailable]
        return "\n".join(lines)


def fetch_plan(names: Sequence[str] | None = None, data_root: str | os.PathLike | None = None,
               overrides: dict[str, str] | None = None) -> FetchPlan:
    """What fetching `names` (default: all) would download: for each dataset not already on this
    machine, its default Hub source's missing files (a source shared by several datasets once)."""
    items: dict[str, FetchItem] = {}
    present, unavailable = [], []
    for info in describe_sources(names, data_root, overrides):
        if info.where in ("folder", "hf-cache", "datasets") and info.problem is None:
            present.append(info)
            continue
        src = next(iter(hub_sources(info.name)), None)
        if src is None:
            unavailable.append((info.name, "no Hub source"))
            continue
        if src.repo in items:
            old = items[src.repo]
            items[src.repo] = FetchItem(old.names + (info.name,), old.source, old.files, old.missing, old.need_bytes)
            continue
        try:
            files = sources.hub_files(src)
        except sources.HubUnavailable as e:
            unavailable.append((info.name, f"{src.repo}: {e}"))
            continue
        missing, need = sources.missing_bytes(src, files, hub.hf_cache_dir())
        if not need:                       # every file is there (a partial set the Hub has no more of)
            present.append(info)
            continue
        items[src.repo] = FetchItem((info.name,), src, files, tuple(sorted(missing.items())), need)
    return FetchPlan(tuple(items.values()), tuple(present), tuple(unavailable))


def fetch(plan: FetchPlan | Sequence[str] | None = None, data_root: str | os.PathLike | None = None,
          overrides: dict[str, str] | None = None) -> list[SourceInfo]:
    """Download what `plan` (or fetch_plan(names)) lists, after checking the disk has room for all of
    it; extract what must be. Returns describe_sources of the datasets afterwards. Raises
    sources.HubUnavailable when a source cannot be fetched (gated, no network, no room)."""
    if not isinstance(plan, FetchPlan):
        plan = fetch_plan(plan, data_root, overrides)
    log.info("%s", plan.text())
    need = sum(i.need_bytes for i in plan.items)
    cache_dir = hub.hf_cache_dir()
    free = sources.free_bytes(cache_dir)
    if need > free:
        raise sources.HubUnavailable(
            f"not enough disk space: {sources.gb(need)} needed in {cache_dir}, {sources.gb(free)} free; "
            f"free some space, or point HF_HOME (HF_HUB_CACHE) at a larger disk")
    for item in plan.items:
        loc = sources.fetch_source(item.source, item.files, cache_dir)
        sources.prepare(loc)
    names = [n for i in plan.items for n in i.names] + [p.name for p in plan.present] + \
        [n for n, _ in plan.unavailable]
    return describe_sources(names, data_root, overrides)


__all__ = ["SourceInfo", "describe_sources", "FetchItem", "FetchPlan", "fetch_plan", "fetch"]
