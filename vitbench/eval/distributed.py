"""Data-parallel runs under torchrun, and runs that share one results folder.

    torchrun --nproc_per_node=N -m vitbench run ...            # N processes on one machine
    torchrun --nnodes=M --nproc_per_node=N --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT -m vitbench run ...

`init(device)` reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK) and joins the process
group (NCCL on CUDA, gloo on the CPU); without torchrun it is a no-op and every helper here acts as
the single process it is. Ranks split each pass's images (`eval.loader.ShardSampler`: no padding, each
image exactly once), torchmetrics syncs its states across ranks on `compute()`, the per-image
predictions are gathered to rank 0, and rank 0 alone writes records, CSVs and reports.

`results_lock(results_dir)` is a file lock (the `filelock` package) that every writer of records,
CSVs and reports holds, so independent runs sharing one results folder (`--shard i/n` on several
machines) never write the same file at once.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

# rank 0 alone counts stats and measures throughput before the evaluation starts; the other ranks
# wait for it at a barrier, which must not time out on a long --all run
_TIMEOUT = _dt.timedelta(hours=6)
LOCK_NAME = ".vitbench.lock"


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"          # this process's device (cuda:LOCAL_RANK under torchrun on CUDA)
    started: bool = False        # this process initialized the group (and tears it down)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, world_size) for `ShardSampler`, None in a single process."""
        return (self.rank, self.world_size) if self.distributed else None


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init(device: str) -> World:
    """Join torchrun's process group (when WORLD_SIZE > 1) and pick this rank's device."""
    world_size = env_world_size()
    if world_size <= 1:
        return World(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is not None:
            raise ValueError(f"--device {device}: under torchrun give --device cuda; each rank "
                             f"takes cuda:LOCAL_RANK")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    started = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
        started = True
    return World(rank=rank, world_size=dist.get_world_size(), local_rank=local_rank, device=device,
                 started=started)


def teardown(world: World) -> None:
    if world.started and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def broadcast(world: World, obj):
    """Rank 0's `obj` on every rank (picklable objects)."""
    if not world.distributed:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(world: World, obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out = [None] * world.world_size
    dist.all_gather_object(out, obj)
    return out


def all_max(world: World, values: list[int]) -> list[int]:
    """Element-wise maximum of an int list over ranks (flags agree: any rank's 1 is everyone's)."""
    if not world.distributed or not values:
        return list(values)
    return [max(col) for col in zip(*all_gather(world, list(values)), strict=True)]


def results_lock(results_dir: Path):
    """An inter-process lock on `results_dir` (created if missing), held while writing there."""
    from filelock import FileLock

    root = Path(results_dir)
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / LOCK_NAME))
