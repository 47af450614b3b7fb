"""What data a job scored, cheaply: the fingerprint an eval record carries, so that a record stands
for a job only when the job's data is the same (the resume rule of `vitbench.run.resume`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence


@dataclass
class DataFingerprint:
    """The data an eval record was measured on (`data_fingerprint`): a record stands for a job only
    when the job's data has the same fingerprint."""
    root: str                      # dataset folder, parquet file/folder or hf:ID (with any @split);
                                   # for a Hub repo read in place, hf://datasets/REPO@REVISION
    n_images: int                  # images the dataset scores (class subset applied, before --limit)
    sha256: str                    # of the sorted (file relative to root, label) pairs; no image is read
    repo: str | None = None        # the Hub dataset repo the images were read from (None: local data)
    revision: str | None = None    # that repo's commit sha
    files: list[str] | None = None  # the repo's files read (repo-relative, sorted)

    def source(self) -> str:
        """Where the images came from, in a few words."""
        if self.repo:
            n = len(self.files or ())
            return f"{self.repo}@{(self.revision or '?')[:7]} ({n} file{'s' * (n != 1)})"
        return self.root

    def mismatch(self, other: "DataFingerprint") -> str | None:
        """Why `other` is different data, in a few words; None when it is the same."""
        if self.repo and self.repo == other.repo and self.revision != other.revision:
            return f"{self.repo} revision {(self.revision or '?')[:7]} -> {(other.revision or '?')[:7]}"
        if self.repo != other.repo:
            return f"data source {self.source()} -> {other.source()}"
        if self.root != other.root:
            return f"data root {self.root} -> {other.root}"
        if sorted(self.files or ()) != sorted(other.files or ()):
            gone = sorted(set(self.files or ()) - set(other.files or ()))
            new = sorted(set(other.files or ()) - set(self.files or ()))
            what = "; ".join(x for x in (f"no longer read: {', '.join(gone[:3])}" if gone else "",
                                         f"now read: {', '.join(new[:3])}" if new else "") if x)
            return f"the files read from {other.source()} changed ({what})"
        if self.n_images != other.n_images:
            return f"{self.n_images:,} -> {other.n_images:,} images in {other.root}"
        if self.sha256 != other.sha256:
            return f"the file list or labels in {other.root} changed ({self.n_images:,} images)"
        return None


def data_fingerprint(root: str, files: Sequence[str], targets: Sequence[int],
                     source=None) -> DataFingerprint:
    """The data a job scores, cheaply: its root, its image count and a sha256 of the sorted
    (file relative to root, label) pairs. No image is opened, so a 50,000-image set takes well under
    a second; a different folder, a different image count, a renamed file or a changed label all
    give a different fingerprint. Images read from a Hub repo are identified by the repo, its
    revision and the files read (`source`), wherever the HF cache lies: the same images from
    another source (a folder, another repo or revision) are other data, and the record says which."""
    hub_source = source is not None and source.repo is not None
    local = source.location if hub_source else root
    prefix = local.rstrip("/") + "/"
    pairs = sorted((f[len(prefix):] if f.startswith(prefix) else f, int(t)) for f, t in zip(files, targets, strict=True))
    h = hashlib.sha256()
    for f, t in pairs:
        h.update(f"{f}\t{t}\n".encode("utf-8", "surrogateescape"))
    if not hub_source:
        return DataFingerprint(root=root, n_images=len(pairs), sha256=h.hexdigest())
    return DataFingerprint(root=source.uri, n_images=len(pairs), sha256=h.hexdigest(), repo=source.repo,
                           revision=source.revision, files=sorted(source.files))
