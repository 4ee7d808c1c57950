"""Validation losses, task-agnostic and deterministic.

Every task's model returns its loss dict in train mode (the torchvision convention), so the pass
runs the model in train mode with every BatchNorm layer held in eval (running statistics
untouched) under ``no_grad``, with the RNG forked and seeded: the samplers inside the model (RPN
and RoI sampling) draw the same examples every time, so two calls on the same weights agree and
the curve moves only when the weights do. The total ``loss`` sums the data terms, like training's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.device import to_device
from engine.jobs import CancelToken


@contextlib.contextmanager
def train_mode_norms_frozen(model: nn.Module) -> Iterator[None]:
    """Model in train mode, every BatchNorm layer in eval; restores every module's mode on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def validation_losses(model: nn.Module, loader: DataLoader, device: torch.device,
                      cancel: CancelToken | None = None, seed: int = 0) -> dict[str, float]:
    """Mean loss components over ``loader`` plus their sum ``loss``; {} for an empty loader."""
    sums: dict[str, float] = {}
    n = 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), train_mode_norms_frozen(model):
        torch.manual_seed(seed)
        for images, targets in loader:
            if cancel is not None:
                cancel.check()
            losses = model(to_device(images, device), to_device(targets, device))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(images)
            n += len(images)
    if n == 0:
        return {}
    out = {k: v / n for k, v in sums.items()}
    out["loss"] = sum(out.values())
    return out
