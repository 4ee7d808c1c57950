"""Normalisation statistics over training: a recorder the training job adds as one more trainer hook.

``BNStatsRecorder(every)`` has the seven methods of ``engine.train.trainer.Hook`` (duck-typed: this
layer may not import the trainer). Every ``every`` optimisation steps it records, for each normalisation
layer of ``state.model`` — BatchNorm (trainable or torchvision's FrozenBatchNorm2d) and GroupNorm, so a
run with BN frozen or replaced by GroupNorm can be compared with a BN run — the statistics of that
step's training forward:

- ``bn/<layer>/in_mean``, ``bn/<layer>/in_std``: mean and standard deviation of the layer's INPUT
  activations over every element (batch, channels, positions; all calls of the layer in the forward),
  read by forward pre-hooks that live only from ``before_step`` to ``after_forward`` (so validation,
  X-ray snapshots and other forwards are never counted);
- ``bn/<layer>/run_mean``, ``bn/<layer>/run_var``: the layer's running mean and running variance
  averaged over channels after that forward (layers with running statistics only: not GroupNorm).

Rows ``(step, epoch, "bn", name, value)`` go to the run's metrics in the store (``state.store``, rank 0
only; one transaction per recorded step), ``step`` being the 1-based step just taken. Nothing else is
emitted, and nothing the step computes changes: the hooks read detached inputs under ``no_grad``, draw
no random numbers and switch no train/eval flag, so the losses are bit-identical with and without it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

SPLIT = "bn"
NORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, FrozenBatchNorm2d, nn.GroupNorm)


class StoreLike(Protocol):
    def add_metrics(self, run_id: int, rows: list[tuple[int, int, str, str, float]]) -> None: ...


class TrainStateLike(Protocol):
    """The fields of ``engine.train.trainer.TrainState`` the recorder reads."""

    model: nn.Module
    step: int
    epoch: int
    run_id: int
    store: StoreLike | None


def norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every BatchNorm / FrozenBatchNorm2d / GroupNorm layer, in module order."""
    model = getattr(model, "module", model)
    return [(n, m) for n, m in model.named_modules() if n and isinstance(m, NORM_TYPES)]


class BNStatsRecorder:
    """The recorder of the module docstring; ``every`` >= 1 steps between records."""

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"bn_stats_every must be >= 1 (got {every})")
        self.every = int(every)
        self.layers: list[tuple[str, nn.Module]] = []
        self._handles: list[Any] = []
        self._acc: dict[str, list[torch.Tensor]] = {}

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if x is None or x.numel() == 0:
                return
            with torch.no_grad():
                x = x.detach().to(torch.float32)
                var, mean = torch.var_mean(x, unbiased=False)
                self._acc.setdefault(name, []).append(torch.stack([mean, var, x.new_tensor(float(x.numel()))]))

        return hook

    # -- the trainer's hook points (engine.train.trainer.Hook) ---------------------------------------------
    def before_train(self, state: TrainStateLike) -> None:
        self.layers = norm_layers(state.model)

    def before_epoch(self, state: TrainStateLike) -> None:
        pass

    def before_step(self, state: TrainStateLike) -> None:
        self._remove()
        self._acc.clear()
        if (state.step + 1) % self.every == 0:
            self._handles = [m.register_forward_pre_hook(self._pre_hook(n)) for n, m in self.layers]

    def after_forward(self, state: TrainStateLike, losses: dict[str, torch.Tensor]) -> None:
        self._remove()

    def after_step(self, state: TrainStateLike) -> None:
        self._remove()
        if state.step % self.every != 0 or not self._acc:
            return
        rows = self.rows(state.step, state.epoch)
        self._acc.clear()
        if state.store is not None and rows:
            state.store.add_metrics(state.run_id, rows)

    def after_epoch(self, state: TrainStateLike) -> None:
        pass

    def after_train(self, state: TrainStateLike) -> None:
        self._remove()
        self._acc.clear()

    # -- rows ---------------------------------------------------------------------------------------------
    def rows(self, step: int, epoch: int) -> list[tuple[int, int, str, str, float]]:
        """The metric rows of the statistics gathered in the last recorded forward (module docstring)."""
        rows: list[tuple[int, int, str, str, float]] = []
        for name, m in self.layers:
            parts = self._acc.get(name)
            if parts:
                stats = torch.stack(parts).double().cpu()  # (calls, 3): mean, var, count
                n = stats[:, 2].sum()
                mean = (stats[:, 0] * stats[:, 2]).sum() / n  # pooled over the calls
                var = ((stats[:, 1] + (stats[:, 0] - mean) ** 2) * stats[:, 2]).sum() / n
                rows += [(step, epoch, SPLIT, f"bn/{name}/in_mean", float(mean)),
                         (step, epoch, SPLIT, f"bn/{name}/in_std", float(var.clamp(min=0).sqrt()))]
            rm, rv = getattr(m, "running_mean", None), getattr(m, "running_var", None)
            if isinstance(rm, torch.Tensor) and isinstance(rv, torch.Tensor):
                rows += [(step, epoch, SPLIT, f"bn/{name}/run_mean", float(rm.detach().double().mean())),
                         (step, epoch, SPLIT, f"bn/{name}/run_var", float(rv.detach().double().mean()))]
        return rows
