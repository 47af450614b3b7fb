"""The record schema: one dataclass per kind of record (eval, stats, bench), each with its provenance.

Schema 2 (`SCHEMA_VERSION`): an eval record's `reasons` are a list of `Reason` (kind, message,
remedy) instead of one string joined with blank lines; `upgrade` turns a schema-1 record into a
schema-2 one on read, so old records stay readable. A job that could not run here (no weights, no
data) gets no record at all: that is a fact about one machine at one moment, not a measurement (the
run's summary says why; the reports say "not measured" and how to measure it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vitbench.data.fingerprint import DataFingerprint
from vitbench.weights import WeightsInfo

SCHEMA_VERSION = 2


def setting_name(precision: str, compile: bool = False, channels_last: bool = False) -> str:
    """'fp32', 'bf16', 'amp_bf16+compile', 'fp32+channels_last', 'amp_fp16+compile+channels_last'."""
    return precision + "+compile" * bool(compile) + "+channels_last" * bool(channels_last)


@dataclass(frozen=True)
class Reason:
    """Why a job did not give a number: what kind of cause, what happened, and how to fix it."""
    kind: str                      # 'weights' (none found) | 'data' (dataset not found) | 'error' (failed)
    message: str                   # what happened, naming the file, dataset or checkpoint
    remedy: str | None = None      # how to fix it (the flags or commands to use)

    @property
    def text(self) -> str:
        return self.message + (f"\n{self.remedy}" if self.remedy else "")

    @classmethod
    def from_error(cls, kind: str, text: str) -> "Reason":
        """A Reason from an error message whose remedy starts at a line 'Provide ...' (the not-found
        errors of vitbench.weights and vitbench.data write it so)."""
        text = text.strip()
        for mark in ("\nProvide ", ". Provide "):
            head, sep, tail = text.partition(mark)
            if sep:
                return cls(kind, head.strip() + ("." if mark.startswith(".") else ""), f"Provide {tail.strip()}")
        return cls(kind, text, None)


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
class EvalRecord:
    checkpoint: str
    dataset: str                   # vitbench dataset name: imagenet, real, v2, sketch, r, a, r-clean, a-clean
    precision: str                 # fp32 | amp_bf16 | amp_fp16 | bf16
    status: str                    # 'ok' | 'failed' ('not_run' only in records from before schema 2)
    reasons: list[Reason] = field(default_factory=list)   # why it failed (or, schema 1, was not run)
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
    top1_1000way: float | None = None  # A and R: argmax over all 1000 classes (their authors' protocol), percent
    ece: float | None = None           # expected calibration error of the top-1 confidence, 15 bins, L1 (fraction)
    compile: bool = False              # evaluated under torch.compile
    channels_last: bool = False        # evaluated with channels-last inputs and weights
    predictions_file: str | None = None          # parquet beside the record (relative name)
    wall_time_s: float | None = None
    images_per_sec: float | None = None
    provenance: Provenance | None = None
    kind: str = "eval"
    schema_version: int = SCHEMA_VERSION

    @property
    def setting(self) -> str:
        """The precision and backend the record was made at: 'fp32', 'amp_bf16+compile', ... (its file
        name and every report say it)."""
        return setting_name(self.precision, self.compile, self.channels_last)

    @property
    def reason(self) -> str | None:
        """The reasons as one text (each with its remedy), a blank line apart; None when there are none."""
        return "\n\n".join(r.text for r in self.reasons) or None

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


KINDS = {"eval": EvalRecord, "stats": StatsRecord, "bench": BenchRecord}
NESTED = {"provenance": Provenance, "weights": WeightsInfo, "data_fingerprint": DataFingerprint}
TUPLES = {"top1_ci", "top5_ci", "samples_per_sec_spread"}


def _reason_kind(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first.startswith("No weights found"):
        return "weights"
    return "data" if " not found" in first else "error"


def upgrade(data: dict) -> dict:
    """A record's JSON as schema `SCHEMA_VERSION` says it: schema 1's `reason` text (independent
    reasons a blank line apart) becomes `reasons`."""
    data = dict(data)
    if data.get("schema_version", 1) < 2:
        text = data.pop("reason", None)
        if "reasons" not in data:
            data["reasons"] = [{"kind": _reason_kind(part), "message": part.strip(), "remedy": None}
                               for part in (text or "").split("\n\n") if part.strip()]
        data["schema_version"] = 2
    return data


def from_dict(cls, data: dict):
    """A record dataclass from its JSON dict (nested dataclasses rebuilt, unknown fields ignored)."""
    names = {f for f in cls.__dataclass_fields__}
    kwargs = {}
    for k, v in data.items():
        if k not in names:
            continue   # fields from a newer schema are ignored, not fatal
        if k in NESTED and isinstance(v, dict):
            v = from_dict(NESTED[k], v)
        elif k in TUPLES and isinstance(v, list):
            v = tuple(v)
        elif k == "reasons":
            v = [Reason(**r) if isinstance(r, dict) else r for r in v or []]
        kwargs[k] = v
    return cls(**kwargs)
