"""Records: one JSON file per finished job, the source of truth for every CSV, card and plot.

Layout under a results dir (DESIGN.md):

    records/<dataset>/<checkpoint>__<precision>.json      EvalRecord (+ .parquet predictions beside)
    records/stats/<checkpoint>.json                       StatsRecord
    records/bench/<checkpoint>__<precision>__<device>.json BenchRecord

Checkpoint names with a '/' (Hub ids) are stored with '--' in its place, as the HF cache does.
Every write is atomic (temp file + os.replace), so a killed run never leaves a half-written record.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def safe_name(checkpoint: str) -> str:
    return checkpoint.replace("/", "--")


def unsafe_name(stem: str) -> str:
    return stem.replace("--", "/")


@dataclass
class DataFingerprint:
    """The data an eval record was measured on (vitbench.data.datasets.data_fingerprint): a record
    stands for a job only when the job's data has the same fingerprint."""
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


@dataclass
class Provenance:
    vitbench_version: str
    git_sha: str | None            # of the vitbench checkout, None when not a git checkout
    python_version: str
    torch_version: str
    cuda_version: str | None       # torch.version.cuda, None on a CPU build
    device: str                    # 'cpu' | 'cuda' | 'cuda:1' ...
    device_name: str               # e.g. 'NVIDIA H100 80GB HBM3' or the CPU model
    hostname: str
    created_at: str                # UTC ISO-8601, when the record was written
    data_fingerprint: DataFingerprint | None = None   # eval records: the data measured on
    world_size: int = 1            # processes of the torchrun group that made it (1: a single process)


@dataclass
class WeightsInfo:
    source: str                    # 'file' | 'weights-dir' | 'hf-cache' | 'hf-hub' | 'random'
    path: str | None               # resolved file (or transformers folder)
    sha256: str | None             # of the weight file


@dataclass
class EvalRecord:
    checkpoint: str
    dataset: str                   # vitbench dataset name: imagenet, real, v2, sketch, r, a, r-clean, a-clean
    precision: str                 # fp32 | amp_bf16 | amp_fp16 | bf16
    status: str                    # 'ok' | 'not_run' (reason says why and how to fix) | 'failed'
    reason: str | None = None
    architecture: str | None = None
    img_size: int | None = None
    data_config: dict | None = None
    batch_size: int | None = None
    weights: WeightsInfo | None = None
    dataset_root: str | None = None
    n_images: int | None = None        # images evaluated
    n_expected: int | None = None      # images in the full set (50,000 for ImageNet-val)
    n_scored: int | None = None        # images that count (ReaL: those with a non-empty label set)
    complete: bool | None = None       # n_images == n_expected and nothing skipped
    limit: int | None = None           # --limit used, None for a full run
    skipped_files: list[str] = field(default_factory=list)
    top1: float | None = None          # percent, micro average
    top5: float | None = None
    top1_ci: tuple[float, float] | None = None   # 95% Wilson interval, percent
    top5_ci: tuple[float, float] | None = None
    predictions_file: str | None = None          # parquet beside the record (relative name)
    wall_time_s: float | None = None
    images_per_sec: float | None = None
    provenance: Provenance | None = None
    kind: str = "eval"
    schema_version: int = SCHEMA_VERSION

    # One rule for every report (CSV, cards, comparison, plots, HTML): only a record measured on the
    # whole dataset is compared with published numbers; any other is labelled as a subset.
    @property
    def comparable_to_published(self) -> bool:
        """True for an 'ok' record of the complete dataset: it may get a delta / CI check against a
        published full-set figure."""
        return self.status == "ok" and self.complete is True

    @property
    def subset_label(self) -> str | None:
        """'subset, 1,000 of 50,000' for an 'ok' record not of the whole dataset (a --limit run, a
        partial folder, skipped images); None for a complete one (and for records that are not ok)."""
        if self.status != "ok" or self.complete:
            return None
        if self.complete is None:
            return "subset? (completeness not recorded)"
        if self.n_images is not None and self.n_expected:
            return f"subset, {self.n_images:,} of {self.n_expected:,}"
        return "subset"


@dataclass
class StatsRecord:
    checkpoint: str
    architecture: str
    img_size: int
    param_count: int                 # parameters
    gmacs: float                     # linear/conv/attention-matmul MACs + norms, batch 1, 1e9
    gmacs_no_attn: float             # gmacs without the attention matmuls (older card convention)
    macts: float                     # output elements of those ops, 1e6
    macts_no_attn: float | None = None   # without the attention-matmul outputs (older card convention)
    count_rules: int | None = None   # stats.COUNT_RULES the numbers were counted with
    provenance: Provenance | None = None
    kind: str = "stats"
    schema_version: int = SCHEMA_VERSION


@dataclass
class BenchRecord:
    checkpoint: str
    architecture: str
    device: str                      # 'cpu' | 'cuda'
    precision: str
    img_size: int
    batch_size: int                  # the one used (after any OOM decay)
    samples_per_sec: float           # median over repeats
    samples_per_sec_spread: tuple[float, float]   # (min, max) over repeats
    step_time_ms: float              # median step time at batch_size
    latency_ms_bs1: float | None     # median batch-1 step time
    peak_memory_mb: float | None     # CUDA peak allocated; None on CPU (not measured)
    compile: bool = False
    channels_last: bool = False
    warmup_steps: int = 0            # the steps actually run (a time budget may cut them)
    timed_steps: int = 0
    repeats: int = 0
    time_budget_s: float | None = None   # seconds of timing allowed per model (CPU default), None: fixed steps
    # the checkpoint whose timing these figures are, when another tag of the same architecture and
    # input size was timed on this machine (random weights: throughput is the architecture's); None:
    # timed as this checkpoint
    measured_as: str | None = None
    oom_batch_sizes: list[int] = field(default_factory=list)   # sizes tried that ran out of memory
    provenance: Provenance | None = None
    kind: str = "bench"
    schema_version: int = SCHEMA_VERSION


_KINDS = {"eval": EvalRecord, "stats": StatsRecord, "bench": BenchRecord}
_NESTED = {"provenance": Provenance, "weights": WeightsInfo, "data_fingerprint": DataFingerprint}
_TUPLES = {"top1_ci", "top5_ci", "samples_per_sec_spread"}


# ---------------------------------------------------------------------------- paths

def eval_path(results_dir: Path, dataset: str, checkpoint: str, precision: str) -> Path:
    return Path(results_dir) / "records" / dataset / f"{safe_name(checkpoint)}__{precision}.json"


def stats_path(results_dir: Path, checkpoint: str) -> Path:
    return Path(results_dir) / "records" / "stats" / f"{safe_name(checkpoint)}.json"


def bench_path(results_dir: Path, checkpoint: str, precision: str, device: str) -> Path:
    name = f"{safe_name(checkpoint)}__{precision}__{device}.json"
    return Path(results_dir) / "records" / "bench" / name


# ---------------------------------------------------------------------------- io

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


def same_but_when(a, b) -> bool:
    """Whether two records say the same thing, apart from when and at which commit they were written
    (provenance.created_at, provenance.git_sha): a rerun that finds nothing new must not rewrite the
    record. The commit is left out because committing a run's records moves it: otherwise every
    rerun after that commit would rewrite every not-run record of the run it just committed."""
    def strip(rec) -> dict:
        d = asdict(rec)
        if d.get("provenance"):
            d["provenance"].pop("created_at", None)
            d["provenance"].pop("git_sha", None)
        return d

    return type(a) is type(b) and strip(a) == strip(b)


def _from_dict(cls, data: dict):
    names = {f.name for f in fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in names:
            continue   # fields from a newer schema are ignored, not fatal
        if k in _NESTED and isinstance(v, dict):
            v = _from_dict(_NESTED[k], v)
        elif k in _TUPLES and isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def read_record(path: Path):
    """Read one record; a corrupt file raises ValueError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return _from_dict(_KINDS[data.get("kind", "eval")], data)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a valid vitbench record ({e}); delete it and rerun") from None


def iter_records(results_dir: Path, kind: str | None = None):
    """All records under `results_dir/records`, sorted by path (deterministic)."""
    root = Path(results_dir) / "records"
    if not root.is_dir():
        return
    for p in sorted(root.rglob("*.json")):
        rec = read_record(p)
        if kind is None or rec.kind == kind:
            yield rec


def load_records(results_dir: Path, kind: str | None = None) -> list[Any]:
    return list(iter_records(results_dir, kind))


# ---------------------------------------------------------------------------- provenance

def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_name()


def provenance(device: str = "cpu") -> Provenance:
    import torch

    from vitbench import __version__
    from vitbench.distributed import current_world_size

    return Provenance(
        vitbench_version=__version__,
        git_sha=_git_sha(),
        python_version=platform.python_version(),
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        device=str(device),
        device_name=device_name(device),
        hostname=platform.node(),
        created_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        world_size=current_world_size(),
    )
