"""DistributedDataParallel plumbing for ``torchrun --nproc_per_node K -m engine.train ...``.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; ``init_from_env`` starts the process group
(NCCL when CUDA is used, gloo on CPU). Without those variables everything here is a no-op, so
the same trainer runs single-process. Only rank 0 writes to the store and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank information from torchrun's environment variables (single process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: str = "auto") -> DistInfo:
    """Start the process group if torchrun launched us; backend NCCL for CUDA, else gloo."""
    info = env_info()
    if info.enabled and not dist.is_initialized():
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return info


def current() -> DistInfo:
    """Rank information of the running process group (single process when none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def collective_device() -> torch.device:
    """The device collectives must use: the current CUDA device under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sync_flags(flags: list[float]) -> list[float]:
    """Element-wise max of ``flags`` over all ranks (identity single-process)."""
    if not current().enabled:
        return list(flags)
    t = torch.tensor(flags, dtype=torch.float32, device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.cpu().tolist()


def broadcast_values(values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank (the schedule clock and the stop decision come from rank 0)."""
    if not current().enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=collective_device())
    dist.broadcast(t, src=0)
    return t.cpu().tolist()


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (identity single-process)."""
    if not current().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_results(items: list) -> list:
    """Every rank's ``items`` concatenated (rank order) on every rank, through a short-lived gloo group
    when none is running (fold-parallel cross-validation trains without a process group)."""
    info = env_info()
    if not info.enabled:
        return list(items)
    own = not dist.is_initialized()
    if own:
        dist.init_process_group("gloo")
    try:
        boxes: list = [None] * info.world_size
        dist.all_gather_object(boxes, items)
    finally:
        if own:
            dist.destroy_process_group()
    return [x for box in boxes for x in box]


class SyncBatchNormError(RuntimeError):
    """``sync_bn`` was asked for where torch cannot synchronise BatchNorm."""


def sync_batchnorm(model: nn.Module, info: DistInfo, device: torch.device, wanted: bool) -> tuple[nn.Module, list[str]]:
    """``model`` with every BatchNorm layer a ``SyncBatchNorm`` (statistics over the whole global batch) when
    ``wanted`` and it can work: several processes on CUDA GPUs (torch's SyncBatchNorm runs on GPUs only).
    Parameters and buffers are the same tensors, so optimizers and state-dict keys are unchanged. One process:
    the model unchanged and a notice; several processes on CPUs: ``SyncBatchNormError`` saying why."""
    if not wanted:
        return model, []
    if not info.enabled:
        return model, ["sync_bn: a single process has nothing to synchronise (BatchNorm statistics are the batch's)"]
    if device.type != "cuda":
        raise SyncBatchNormError(f"sync_bn needs CUDA GPUs: torch's SyncBatchNorm does not run on {device.type} "
                                 "(train without --sync-bn, or with GroupNorm: --norm gn)")
    n = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return nn.SyncBatchNorm.convert_sync_batchnorm(model), [f"sync_bn: {n} BatchNorm layers synchronised "
                                                             f"across {info.world_size} processes"]
