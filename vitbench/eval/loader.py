"""The eval loader: a deterministic DataLoader of uint8 crops, sharded across torchrun ranks."""
from __future__ import annotations

import torch


class ShardSampler(torch.utils.data.Sampler):
    """Items rank, rank + world, rank + 2*world, ... : one process's share of a data-parallel eval.

    Unlike DistributedSampler it never pads with repeated items, so per-rank torchmetrics states
    sum to exactly the dataset (shards differ in size by at most one; eval needs no lockstep)."""

    def __init__(self, n: int, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.n, self.rank, self.world_size = n, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def build_loader(dataset, batch_size: int, workers: int = 0, device: str = "cpu",
                 shard: tuple[int, int] | None = None) -> torch.utils.data.DataLoader:
    """A deterministic eval loader over `dataset` yielding `collate_eval` batches.

    shard: (rank, world_size) to read one process's share (ShardSampler); None reads everything.
    In a data-parallel run each rank evaluates its shard, the torchmetrics accumulators sync on
    compute(), and the per-sample predictions are gathered and sorted by index.
    """
    from vitbench.data.datasets import collate_eval

    sampler = ShardSampler(len(dataset), *shard) if shard is not None else None
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_eval,
        pin_memory=str(device).startswith("cuda"),
        persistent_workers=False,   # one pass per dataset; idle workers would hold RAM across jobs
        drop_last=False,
    )
