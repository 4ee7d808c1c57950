"""The training sampler: one fixed order per (seed, epoch), resumable at any batch, shardable for DDP.

Epoch ``e`` visits ``torch.randperm(n)`` drawn from a generator seeded ``seed * 1009 + e`` after one
int64 draw (what torch's shuffling DataLoader did before, so epoch 0 is unchanged) — the same order whether the
run was interrupted or not — so a resumed run continues at the next batch of the interrupted
epoch (``set_epoch(e, skip_batches=k)``). Under DDP rank ``r`` of ``w`` takes every ``w``-th index
of that order (padded by repetition, as ``DistributedSampler`` does, so every rank gets as many).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        self.skip_batches = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch`` (before skipping)."""
        gen = torch.Generator().manual_seed(self.seed * 1009 + epoch)
        torch.empty((), dtype=torch.int64).random_(generator=gen)  # the draw torch's DataLoader made first
        perm = torch.randperm(self.n, generator=gen).tolist()
        if self.world_size > 1:
            total = -(-self.n // self.world_size) * self.world_size
            perm = (perm * -(-total // max(1, self.n)))[:total][self.rank::self.world_size]
        return perm

    def _per_epoch(self) -> int:
        m = -(-self.n // self.world_size) if self.world_size > 1 else self.n
        return (m // self.batch_size) * self.batch_size if self.drop_last else m

    def __iter__(self) -> Iterator[int]:
        idx = self.order(self.epoch)[:self._per_epoch()]
        return iter(idx[self.skip_batches * self.batch_size:])

    def __len__(self) -> int:
        return max(0, self._per_epoch() - self.skip_batches * self.batch_size)
