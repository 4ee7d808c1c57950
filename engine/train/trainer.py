"""The training loop: a minimal loop plus hooks. THE place where the hook order is written down.

Everything model-specific comes from the task (``state.task``): the model's forward returns its
loss dict in train mode, whatever the family. Order of calls (hooks run in list order at each
point; ``engine.train.hooks.default_hooks`` builds the list LR -> Stream -> Limits -> Snapshot ->
Eval -> Checkpoint -> EarlyStop -> Summary -> MetricsWriter, then any extra hooks of the job):

    before_train(state)                         every hook
    for epoch in start_epoch .. planned epochs - 1 (unbounded under a time budget):
        before_epoch(state)                     every hook
        for batch in loader (a resumed epoch starts at the next batch of the same order):
            cancel check                        pause waits here; Stop raises Cancelled
            before_step(state)                  LR: set this step's learning rate
            forward -> losses (+ loss_l1)
            after_forward(state, losses)        may inspect or change the loss dict (fault injection
                                                in tests lives here, never in the loop)
            non-finite check                    NonFiniteLoss names step and components
            cancel check                        a Stop that came during the forward skips the update
            backward, optimiser step, state.step += 1, state.epoch_batches += 1
            task.step_stats(model), if the task has it -> state.losses["stat_<name>"] (never in 'loss')
            after_step(state)                   Stream: StepLosses event and metric rows;
                                                Limits: max_steps / max_minutes set stop_reason;
                                                Snapshot: X-ray capture every N steps
            stop? (rank 0 decides, broadcast)   leave the epoch early
        after_epoch(state)                      Eval: val losses + the task's metrics (rank 0, when due);
                                                Checkpoint: last.pt always, best.pt if improved;
                                                EarlyStop: patience bookkeeping, may set stop_reason;
                                                Summary: EpochSummary event; MetricsWriter: flush rows
        stop? -> break
    after_train(state)                          every hook, ALWAYS — also after Stop (status
                                                'stopped': Checkpoint writes last.pt with the position
                                                in the epoch) and after a failure (status 'failed':
                                                nothing overwritten); EarlyStop restores best

A loop left early by max_steps / max_minutes still runs ``after_epoch`` for the partial epoch, so
its weights are evaluated and checkpointed. The total ``loss`` is the sum of the data terms (the
same components as the validation total); regularisation (``loss_l1``) is reported separately
and added only to what is optimised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from engine.config import TrainConfig
from engine.device import to_device
from engine.events import Event
from engine.jobs import Cancelled, CancelToken, Sink
from engine.losses.regularization import l1_penalty
from engine.project.store import Store
from engine.tasks.base import LabelSpace, Spec, Task
from engine.train.distributed import DistInfo, broadcast_values, sync_flags


class TrainingError(RuntimeError):
    """The run cannot go on; ``str(e)`` is one line for the user."""


class NonFiniteLoss(TrainingError):
    """A loss became NaN or infinite; the message names the step and every component."""


@dataclass
class TrainState:
    """Everything hooks may read or change. ``model`` is the bare model, ``net`` what the
    forward pass goes through (a DistributedDataParallel wrapper or the model itself)."""

    cfg: TrainConfig
    task: Task
    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    spec: Spec
    labels: LabelSpace
    train_set: Dataset
    val_set: Dataset
    run_id: int
    run_dir: Path
    sink: Sink
    cancel: CancelToken
    store: Store | None  # None on ranks other than 0
    dist: DistInfo
    steps_per_epoch: int
    total_steps: int  # planned optimisation steps (epochs * steps_per_epoch, capped by max_steps; 0 = by time)
    epochs: int = 1  # planned epochs (a large number under a pure time budget)
    step: int = 0  # optimisation steps done (continues across resume)
    epoch: int = 0  # current epoch, 0-based
    epoch_batches: int = 0  # batches of the current epoch done (a resumed epoch starts here)
    start_step: int = 0
    start_epoch: int = 0
    lr: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)  # last step's, incl. 'loss'
    batch_images: int = 0
    step_time_s: float = 0.0  # wall time of the last step, data loading included
    last_step_end: float = 0.0  # perf_counter at the end of the last step (0 = start of an epoch)
    started_at: float = field(default_factory=time.monotonic)
    last_eval: dict | None = None  # {"step", "epoch", "metrics", "val_losses", "duration_s"}
    evaluated_this_epoch: bool = False
    is_best: bool = False
    best: dict = field(default_factory=dict)  # {"metric", "value", "step", "epoch", "metrics"}
    stop_reason: str | None = None  # max_steps | time_limit | early_stop | peer
    status: str = "running"  # running | finished | stopped | failed | early_stopped
    message: str = ""
    error: TrainingError | None = None  # why the run failed (status 'failed')
    checkpoints: dict[str, str] = field(default_factory=dict)  # kind -> path
    metric_rows: list[tuple[int, int, str, str, float]] = field(default_factory=list)

    @property
    def label_map(self) -> dict[int, int]:
        return self.labels.label_map

    @property
    def category_names(self) -> list[str]:
        return list(self.labels.names)

    def emit(self, event: Event) -> None:
        if self.dist.is_main:
            self.sink(event)


class Hook:
    """Base hook: override any of the points below (see the module docstring for their order)."""

    def before_train(self, state: TrainState) -> None:
        pass

    def before_epoch(self, state: TrainState) -> None:
        pass

    def before_step(self, state: TrainState) -> None:
        pass

    def after_forward(self, state: TrainState, losses: dict[str, torch.Tensor]) -> None:
        pass

    def after_step(self, state: TrainState) -> None:
        pass

    def after_epoch(self, state: TrainState) -> None:
        pass

    def after_train(self, state: TrainState) -> None:
        pass


def _oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


class Trainer:
    """Runs ``state`` through ``loader`` with ``hooks``; returns the final state."""

    def __init__(self, state: TrainState, loader: Iterable, hooks: list[Hook]) -> None:
        self.state = state
        self.loader = loader
        self.hooks = hooks

    def _call(self, point: str, *args: object) -> None:
        for h in self.hooks:
            getattr(h, point)(self.state, *args)

    def run(self) -> TrainState:
        s = self.state
        try:
            self._call("before_train")
            for epoch in range(s.start_epoch, s.epochs):
                s.epoch = epoch
                s.evaluated_this_epoch = False
                s.last_step_end = 0.0
                if epoch != s.start_epoch:
                    s.epoch_batches = 0
                sampler = getattr(self.loader, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch, skip_batches=s.epoch_batches)
                self._call("before_epoch")
                for images, targets in self.loader:
                    self._step(images, targets)
                    if self._stop_requested():
                        break
                self._call("after_epoch")
                if self._stop_requested():
                    break
                s.epoch_batches = 0
            s.status = "early_stopped" if s.stop_reason == "early_stop" else "finished"
        except Cancelled:
            s.status, s.message = "stopped", f"stopped by the user at step {s.step}"
        except TrainingError as e:
            s.status, s.message, s.error = "failed", str(e), e
        except Exception as e:  # recorded as a failed run; the original stays attached as __cause__
            s.status = "failed"
            if _oom(e):
                size = getattr(s.spec, "min_size", None) or getattr(s.spec, "input_size", "?")
                s.message = (f"out of memory at step {s.step + 1} on {s.device}: use a smaller batch size "
                             f"(now {s.cfg.batch_size}) or smaller images (input size {size})")
            else:
                s.message = f"training failed at step {s.step + 1}: {type(e).__name__}: {e}"
            s.error = TrainingError(s.message)
            s.error.__cause__ = e
        finally:
            self._call("after_train")
        return s

    def _stop_requested(self) -> bool:
        s = self.state
        if not s.dist.enabled:
            return s.stop_reason is not None
        # rank 0's decision for the limits (one clock); a Stop or a failure on any rank stops all
        (limit,) = broadcast_values([float(s.stop_reason is not None)])
        cancelled, stop = sync_flags([float(s.cancel.cancelled), float(s.stop_reason is not None and
                                                                        s.stop_reason != "time_limit")])
        if cancelled:
            raise Cancelled()
        stop = bool(stop or limit)
        if stop and s.stop_reason is None:
            s.stop_reason = "peer"
        elif not stop:
            s.stop_reason = None  # a rank whose own clock ran out waits for rank 0's
        return stop

    def _step(self, images: list[torch.Tensor], targets: list[dict]) -> None:
        s = self.state
        t_wait = time.perf_counter()
        if s.dist.enabled:
            s.cancel.wait_if_paused()  # a stop is agreed on by all ranks in _stop_requested
        else:
            s.cancel.check()
        now = time.perf_counter()
        t0 = (s.last_step_end + (now - t_wait)) if s.last_step_end else now  # pauses do not count
        self._call("before_step")
        ims, ts = to_device(images, s.device), to_device(targets, s.device)
        loss_dict = dict(s.net(ims, ts))
        if s.cfg.l1 > 0:
            loss_dict["loss_l1"] = l1_penalty(s.model, s.cfg.l1)
        self._call("after_forward", loss_dict)
        total = sum(loss_dict.values())
        values = {k: float(v.detach()) for k, v in loss_dict.items()}
        bad = not all(math.isfinite(v) for v in values.values())
        if sync_flags([float(bad)])[0]:
            parts = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            where = "" if bad else " (on another rank)"
            raise NonFiniteLoss(f"non-finite loss at step {s.step + 1}{where}: {parts}")
        if not s.dist.enabled and s.cancel.cancelled:  # Stop during the forward: skip the backward
            raise Cancelled()
        s.optimizer.zero_grad(set_to_none=True)
        total.backward()
        s.optimizer.step()
        s.step += 1
        s.epoch_batches += 1
        values["loss"] = float(sum(v for k, v in values.items() if k != "loss_l1"))
        step_stats = getattr(s.task, "step_stats", None)  # optional: numbers shown next to the losses
        if step_stats is not None:
            values.update({f"stat_{k}": float(v) for k, v in step_stats(s.model).items()})
        s.losses = values
        s.batch_images = len(ims) * s.dist.world_size
        s.last_step_end = time.perf_counter()
        s.step_time_s = s.last_step_end - t0
        self._call("after_step")
