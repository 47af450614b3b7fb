"""What a run is asked to do: `RunConfig`, built by the CLI (nothing below it sees argparse)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vitbench.bench import BenchOptions
from vitbench.data.specs import DATASETS, expand_datasets, selectable_datasets
from vitbench.eval.precision import check as check_precision
from vitbench.records.schema import setting_name

DEFAULT_BATCH = {"cuda": 256, "cpu": 32}
DEFAULT_RESULTS, DEFAULT_REPORTS = Path("results"), Path("reports")


class RunConfigError(ValueError):
    """A RunConfig that cannot run (bad device, unknown dataset, --data path that does not exist)."""


def default_reports_dir(results_dir: Path) -> Path:
    """reports/ for the default results/, else RESULTS_DIR/reports (one run's reports never overwrite
    another's)."""
    return DEFAULT_REPORTS if Path(results_dir) == DEFAULT_RESULTS else Path(results_dir) / "reports"


@dataclass(frozen=True)
class RunConfig:
    checkpoints: tuple[str, ...] = ()
    datasets: tuple[str, ...] = field(default_factory=selectable_datasets)   # r and a add their -clean sets
    data_root: Path | None = None              # one folder per dataset (README, Data), or None
    data_overrides: tuple[tuple[str, str], ...] = ()   # (dataset, PATH | hf:ID) pairs from --data
    device: str = "cpu"                        # cpu | cuda | cuda:N
    precision: str = "fp32"                    # fp32 | amp_bf16 | amp_fp16 | bf16
    compile: bool = False                      # evaluate each model torch.compile'd
    channels_last: bool = False                # evaluate with channels-last weights and inputs
    batch_size: int | None = None              # eval batch; None: 256 on cuda, 32 on cpu
    workers: int = 0                           # DataLoader worker processes
    limit: int | None = None                   # first N images per dataset (smoke run)
    weights_dir: Path | None = None
    results_dir: Path = DEFAULT_RESULTS
    reports_dir: Path | None = None            # None: default_reports_dir(results_dir)
    force: bool = False                        # rerun jobs that have a record
    skip_bad_images: bool = False
    stats: bool = True                         # count params/GMACs per checkpoint
    bench: BenchOptions | None = field(default_factory=BenchOptions)   # None: no throughput
    report: bool = True                        # render cards/tables/plots at the end
    shard: tuple[int, int] | None = None       # (i, n): run only checkpoints i, i+n, i+2n, ... (0-based)
    pass_memory_gb: float | None = None        # weights one decode pass may hold; None: half the device

    @property
    def device_type(self) -> str:
        return self.device.split(":", 1)[0]

    @property
    def setting(self) -> str:
        """The evaluation's precision and backend, as its records are named: 'fp32', 'amp_bf16+compile'."""
        return setting_name(self.precision, self.compile, self.channels_last)

    @property
    def eval_batch_size(self) -> int:
        return self.batch_size or DEFAULT_BATCH.get(self.device_type, 32)

    @property
    def reports(self) -> Path:
        return self.reports_dir if self.reports_dir is not None else default_reports_dir(self.results_dir)

    @property
    def own_checkpoints(self) -> tuple[str, ...]:
        """The checkpoints of this run's --shard i/n: every n-th from the i-th. A checkpoint's jobs stay
        together, so one forward still serves ImageNet-val and its derived sets."""
        if self.shard is None:
            return self.checkpoints
        i, n = self.shard
        return self.checkpoints[i::n]

    @property
    def all_datasets(self) -> list[str]:
        """The datasets to run, each baseline-only set (r-clean) before the set that needs it."""
        return list(dict.fromkeys(expand_datasets(list(self.datasets))))

    def validate(self) -> None:
        """Raise RunConfigError with a clear message for anything that would fail every job."""
        import torch

        from vitbench.data.layouts import parse_source

        try:
            check_precision(self.precision)
        except ValueError as e:
            raise RunConfigError(f"--{e}") from None
        try:
            dev = torch.device(self.device)
        except RuntimeError:
            raise RunConfigError(f"--device {self.device!r}: expected cpu, cuda or cuda:N") from None
        if dev.type not in ("cpu", "cuda"):
            raise RunConfigError(f"--device {self.device!r}: expected cpu, cuda or cuda:N")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RunConfigError(f"--device {self.device}: no CUDA device is available (torch "
                                 f"{torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu")
        for flag, value in (("--batch-size", self.batch_size), ("--limit", self.limit)):
            if value is not None and value < 1:
                raise RunConfigError(f"{flag} must be >= 1, got {value}")
        if self.workers < 0:
            raise RunConfigError(f"--workers must be >= 0, got {self.workers}")
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown:
            raise RunConfigError(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
        for name, target in self.data_overrides:
            if name not in DATASETS:
                raise RunConfigError(f"--data {name}={target}: unknown dataset {name!r}; "
                                     f"choose from {', '.join(DATASETS)}")
            path, _ = parse_source(target)
            if not path.startswith("hf:") and not Path(path).expanduser().exists():
                raise RunConfigError(f"--data {name}={target}: {path} does not exist (give an existing folder "
                                     f"or file, or hf:DATASET_ID; @split picks a split)")
        if self.data_root is not None and not Path(self.data_root).is_dir():
            raise RunConfigError(f"--data-root {self.data_root}: not a folder")
        if self.shard is not None and not (self.shard[1] >= 1 and 0 <= self.shard[0] < self.shard[1]):
            raise RunConfigError(f"--shard {self.shard[0]}/{self.shard[1]}: expected i/n with 0 <= i < n")
        if self.pass_memory_gb is not None and not self.pass_memory_gb > 0:
            raise RunConfigError(f"--pass-memory-gb must be > 0, got {self.pass_memory_gb}")
        if self.bench is not None:
            try:
                self.bench.settings(self.device)
            except ValueError as e:
                raise RunConfigError(f"--time-budget: {e}") from None
