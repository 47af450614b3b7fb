"""Where records live under a results folder, and how they are written and read.

    records/<dataset>/<checkpoint>__<precision>.json        EvalRecord (+ .parquet predictions beside)
    records/stats/<checkpoint>.json                         StatsRecord
    records/bench/<checkpoint>__<precision>__<device>.json  BenchRecord

Checkpoint names with a '/' (Hub ids) are stored with '--' in its place, as the HF cache does. Every
write is atomic (temp file + os.replace), so a killed run never leaves a half-written file, and a write
of the bytes already on disk leaves the file untouched (a rerun changes no mtime).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from vitbench.catalog.registry import safe_name
from vitbench.records.schema import KINDS, from_dict, upgrade

RECORDS = "records"


def eval_path(results_dir: Path, dataset: str, checkpoint: str, setting: str) -> Path:
    """Where the record of a job goes; `setting` is the precision, with any +compile / +channels_last
    (`schema.setting_name`), so the records of one checkpoint at several settings live side by side."""
    return Path(results_dir) / RECORDS / dataset / f"{safe_name(checkpoint)}__{setting}.json"


def stats_path(results_dir: Path, checkpoint: str) -> Path:
    return Path(results_dir) / RECORDS / "stats" / f"{safe_name(checkpoint)}.json"


def bench_path(results_dir: Path, checkpoint: str, precision: str, device: str) -> Path:
    return Path(results_dir) / RECORDS / "bench" / f"{safe_name(checkpoint)}__{precision}__{device}.json"


def _read_umask() -> int:
    mask = os.umask(0)          # reading the umask means setting it: put it back at once (at import)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part. A file
    that already holds exactly `data` is left untouched (a rerun changes no mtime, rewrites nothing)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)        # mkstemp's 0600 -> what open() would have given
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_record(path: Path, record) -> Path:
    atomic_write_text(path, json.dumps(asdict(record), indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_record(path: Path):
    """Read one record (an older schema is upgraded); a corrupt file raises ValueError naming it."""
    path = Path(path)
    try:
        data = upgrade(json.loads(path.read_text()))
        return from_dict(KINDS[data.get("kind", "eval")], data)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a valid vitbench record ({e}); delete it and rerun") from None


def same_but_when(a, b) -> bool:
    """Whether two records say the same thing, apart from when and at which commit they were written
    (provenance.created_at, provenance.git_sha): a rerun that finds nothing new must not rewrite it."""
    def strip(rec) -> dict:
        d = asdict(rec)
        if d.get("provenance"):
            d["provenance"].pop("created_at", None)
            d["provenance"].pop("git_sha", None)
        return d

    return type(a) is type(b) and strip(a) == strip(b)
