"""The provenance every record carries: which code, environment and device made it, and when."""
from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from pathlib import Path

from vitbench.records.schema import Provenance


@functools.cache
def git_sha() -> str | None:
    """The commit of the vitbench checkout (None when it is not a git checkout); read once per process."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
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
    """The GPU's name for a CUDA device, else the CPU model."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_name()


def provenance(device: str = "cpu", world_size: int = 1) -> Provenance:
    """The provenance of a record made now on `device` by a group of `world_size` processes."""
    import torch

    from vitbench import __version__

    return Provenance(
        vitbench_version=__version__,
        git_sha=git_sha(),
        python_version=platform.python_version(),
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        device=str(device),
        device_name=device_name(device),
        hostname=platform.node(),
        created_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        world_size=world_size,
    )
