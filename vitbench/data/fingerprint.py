"""What data a job scored, cheaply: the fingerprint an eval record carries, so that a record stands
for a job only when the job's data is the same (the resume rule of `vitbench.run.resume`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence


@dataclass
class DataFingerprint:
    """The data an eval record was measured on: a record stands for a job only when the job's data
    has the same fingerprint."""
    root: str                      # dataset folder, parquet file/folder or hf:ID (with any @split)
    n_images: int                  # images the dataset scores (class subset applied, before --limit)
    sha256: str                    # of the sorted (file relative to root, label) pairs; no image is read

    def mismatch(self, other: "DataFingerprint") -> str | None:
        """Why `other` is different data, in a few words; None when it is the same."""
        if self.root != other.root:
            return f"data root {self.root} -> {other.root}"
        if self.n_images != other.n_images:
            return f"{self.n_images:,} -> {other.n_images:,} images in {other.root}"
        if self.sha256 != other.sha256:
            return f"the file list or labels in {other.root} changed ({self.n_images:,} images)"
        return None


def data_fingerprint(root: str, files: Sequence[str], targets: Sequence[int]) -> DataFingerprint:
    """The data a job scores: its root, its image count and a sha256 of the sorted (file relative to
    root, label) pairs. No image is opened, so a 50,000-image set takes well under a second; a
    different folder, a different image count, a renamed file or a changed label all give a different
    fingerprint."""
    prefix = root.rstrip("/") + "/"
    pairs = sorted((f[len(prefix):] if f.startswith(prefix) else f, int(t))
                   for f, t in zip(files, targets, strict=True))
    h = hashlib.sha256()
    for f, t in pairs:
        h.update(f"{f}\t{t}\n".encode("utf-8", "surrogateescape"))
    return DataFingerprint(root=root, n_images=len(pairs), sha256=h.hexdigest())
