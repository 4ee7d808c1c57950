"""The trainer's hooks. Their order is written down once, in ``engine/train/trainer.py``.

Hooks that write (checkpoints, store rows) act on rank 0 only; events go out through
``TrainState.emit``, which drops them on other ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.events import EpochSummary, Notice, StepLosses
from engine.tasks.checkpoint import load_checkpoint, model_state, save_checkpoint
from engine.train import distributed
from engine.train.schedule import lr_at
from engine.train.trainer import Hook, TrainState


class LRHook(Hook):
    """Sets every parameter group's learning rate for the coming step (``engine.train.schedule``)."""

    def before_step(self, s: TrainState) -> None:
        time_frac = 0.0
        if s.cfg.max_minutes > 0:  # anneal within the time limit (minus the final evaluation)
            eval_s = s.last_eval["duration_s"] if s.last_eval else 0.0
            budget = max(1.0, s.cfg.max_minutes * 60 - eval_s)
            time_frac = (time.monotonic() - s.started_at) / budget
            if s.dist.enabled:  # one clock for every rank: rank 0's
                (time_frac,) = distributed.broadcast_values([time_frac])
        s.lr = lr_at(s.step, s.cfg, s.total_steps, s.steps_per_epoch, time_frac)
        for g in s.optimizer.param_groups:
            g["lr"] = s.lr


class StreamHook(Hook):
    """Emits StepLosses each step (images/s and ETA from an EMA of the step time) and buffers
    the step's losses and lr as metric rows ('train' split) for MetricsWriterHook."""

    def __init__(self, ema: float = 0.9) -> None:
        self.ema = ema
        self.step_time: float | None = None

    def after_step(self, s: TrainState) -> None:
        dt = max(s.step_time_s, 1e-6)
        self.step_time = dt if self.step_time is None else self.ema * self.step_time + (1 - self.ema) * dt
        ips = s.batch_images / self.step_time
        if s.cfg.max_minutes > 0:
            left_s = max(0.0, s.cfg.max_minutes * 60 - (time.monotonic() - s.started_at))
            eta = left_s if s.total_steps <= 0 else min(left_s, max(0, s.total_steps - s.step) * self.step_time)
        else:
            eta = max(0, s.total_steps - s.step) * self.step_time
        s.emit(StepLosses(s.run_id, s.step, s.epoch, dict(s.losses), s.lr, ips, eta))
        s.metric_rows.extend((s.step, s.epoch, "train", k, v) for k, v in s.losses.items())
        s.metric_rows.append((s.step, s.epoch, "train", "lr", s.lr))


class LimitsHook(Hook):
    """Sets ``stop_reason`` at ``max_steps`` or when ``max_minutes`` would pass before the next
    evaluation finishes, so the final weights are still evaluated and checkpointed inside the limit.

    The evaluation's duration is the last one's; before the first, it is estimated from the fastest
    step seen so far (the first steps pay for allocation and warm-up, and on a busy machine one slow
    step must not end a run at once): two forward passes per val image, each about a third of a
    train step per image. A run always trains at least ``MIN_STEPS`` steps."""

    MIN_STEPS = 5

    def __init__(self) -> None:
        self.fastest: float | None = None

    def after_step(self, s: TrainState) -> None:
        if s.cfg.max_steps > 0 and s.step >= s.cfg.max_steps:
            s.stop_reason = s.stop_reason or "max_steps"
        if s.cfg.max_minutes <= 0:
            return
        per_image = s.step_time_s / max(1, s.batch_images)
        self.fastest = per_image if self.fastest is None else min(self.fastest, per_image)
        if s.last_eval is not None:
            eval_s = s.last_eval["duration_s"]
        else:
            eval_s = len(s.val_set) * self.fastest * 2 / 3
        elapsed = time.monotonic() - s.started_at
        if elapsed >= s.cfg.max_minutes * 60 or (s.step - s.start_step >= self.MIN_STEPS and
                                                   elapsed + eval_s + s.step_time_s >= s.cfg.max_minutes * 60):
            s.stop_reason = s.stop_reason or "time_limit"


class SnapshotHook(Hook):
    """Every ``every`` steps calls ``on_step(state)`` (rank 0) — the job injects the X-ray capture.

    ``on_step`` must run under ``torch.no_grad``, emit its own events via ``state.emit`` and leave
    the model in train mode with its BatchNorm statistics untouched.
    """

    def __init__(self, every: int, on_step: Callable[[TrainState], None]) -> None:
        self.every = every
        self.on_step = on_step

    def after_step(self, s: TrainState) -> None:
        if s.dist.is_main and s.step % self.every == 0:
            self.on_step(s)


AUTO_EVAL_BUDGET_SHARE = 0.1  # eval_every 0 under a time budget: evaluate about every 10 % of the budget


def eval_due(s: TrainState) -> bool:
    """At the end of an epoch: every ``eval_every`` epochs; ``eval_every`` 0 (auto) = every epoch, or
    under a time budget when a tenth of the budget has passed since the last evaluation (an
    evaluation per short epoch ate a third of a 10-minute CPU run); always the last and a stop."""
    last_epoch = s.epoch >= s.epochs - 1
    if last_epoch or s.stop_reason is not None or (s.total_steps > 0 and s.step >= s.total_steps):
        return True
    if s.cfg.eval_every > 0:
        return (s.epoch + 1) % s.cfg.eval_every == 0
    if s.cfg.max_minutes <= 0:
        return True
    since = time.monotonic() - (s.last_eval["at"] if s.last_eval else s.started_at)
    return since >= AUTO_EVAL_BUDGET_SHARE * s.cfg.max_minutes * 60


class EvalHook(Hook):
    """After an epoch (every ``eval_every``, the last one, and when stopping early), rank 0 only:
    ``val_losses()`` (deterministic, BatchNorm held in eval) and ``evaluate()`` — the task's
    metrics. Both functions are handed in by the job (detectron2's ``EvalHook(eval_function)``)."""

    def __init__(self, evaluate: Callable[[], dict[str, float]], val_losses: Callable[[], dict[str, float]]
                 ) -> None:
        self.evaluate = evaluate
        self.val_losses = val_losses

    def after_epoch(self, s: TrainState) -> None:
        if not s.dist.is_main or len(s.val_set) == 0 or not eval_due(s):
            return
        t0 = time.monotonic()
        val_losses = self.val_losses()
        metrics = self.evaluate()
        s.last_eval = {"step": s.step, "epoch": s.epoch, "metrics": metrics, "val_losses": val_losses,
                       "duration_s": time.monotonic() - t0, "at": time.monotonic()}
        s.evaluated_this_epoch = True
        s.metric_rows.extend((s.step, s.epoch, "val", k, v) for k, v in val_losses.items())
        s.metric_rows.extend((s.step, s.epoch, "val", k, v) for k, v in metrics.items())


def selection_metric(s: TrainState) -> str:
    """The metric that picks best.pt and drives early stopping: the config's or the task's."""
    return s.cfg.early_stop_metric or s.task.selection_metric


def metric_value(s: TrainState, name: str) -> float | None:
    """``name`` from the last evaluation: one of the task's metrics or val_loss[_<component>]."""
    if s.last_eval is None:
        return None
    if name.startswith("val_"):
        key = "loss" if name == "val_loss" else name[len("val_"):]
        return s.last_eval["val_losses"].get(key)
    return s.last_eval["metrics"].get(name)


def better(s: TrainState, name: str, a: float, b: float, min_delta: float = 0.0) -> bool:
    """True when ``a`` improves on ``b`` by more than ``min_delta``: losses lower, the task's selection
    metric in its declared direction, other metrics higher."""
    lower = name.startswith("val_loss") or (name == s.task.selection_metric and not s.task.higher_is_better)
    return a < b - min_delta if lower else a > b + min_delta


class CheckpointHook(Hook):
    """``last.pt`` after every epoch and on Stop; ``best.pt`` when the selection metric (the config's
    early_stop_metric or the task's) improves — by more than ``early_stop_min_delta`` when early
    stopping is on, so the restored 'best' is the one early stopping measured against.
    Nothing is written after a failure."""

    def _payload(self, s: TrainState, kind: str, mid_epoch: bool = False) -> dict:
        return {"kind": kind, "task": s.task.name, "model": model_state(s.model),
                "optimizer": s.optimizer.state_dict(), "config": s.cfg.to_dict(), "spec": s.spec.to_dict(),
                "label_map": dict(s.label_map), "category_names": list(s.category_names), "run_id": s.run_id,
                "step": s.step, "epoch": s.epoch, "epoch_batches": s.epoch_batches if mid_epoch else 0,
                "metrics": dict(s.last_eval["metrics"]) if s.last_eval else {}, "best": dict(s.best)}

    def _save(self, s: TrainState, kind: str) -> None:
        path = save_checkpoint(s.run_dir / f"{kind}.pt", self._payload(s, kind))
        s.checkpoints[kind] = str(path)

    def after_epoch(self, s: TrainState) -> None:
        s.is_best = False
        if s.evaluated_this_epoch:
            name = selection_metric(s)
            value = metric_value(s, name)
            delta = s.cfg.early_stop_min_delta if s.cfg.early_stop else 0.0  # same rule as EarlyStopHook
            if value is not None and (not s.best or better(s, name, value, s.best["value"], delta)):
                s.best = {"metric": name, "value": float(value), "step": s.step, "epoch": s.epoch,
                          "metrics": dict(s.last_eval["metrics"]) if s.last_eval else {}}
                s.is_best = True
        if s.dist.is_main:
            if s.is_best:
                self._save(s, "best")
            self._save(s, "last")

    def after_train(self, s: TrainState) -> None:
        if s.dist.is_main and s.status == "stopped" and s.step > s.start_step:
            path = save_checkpoint(s.run_dir / "last.pt", self._payload(s, "last", mid_epoch=True))
            s.checkpoints["last"] = str(path)


class EarlyStopHook(Hook):
    """Stops when the selection metric has not improved by ``early_stop_min_delta`` for
    ``early_stop_patience`` evaluations; after training, loads the best checkpoint's weights."""

    def __init__(self) -> None:
        self.best: float | None = None
        self.wait = 0

    def after_epoch(self, s: TrainState) -> None:
        if not s.cfg.early_stop or not s.evaluated_this_epoch:
            return
        name = selection_metric(s)
        value = metric_value(s, name)
        if value is None:
            return
        if self.best is None or better(s, name, value, self.best, s.cfg.early_stop_min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= s.cfg.early_stop_patience:
                s.stop_reason = "early_stop"

    def after_train(self, s: TrainState) -> None:
        if s.status != "early_stopped" or "best" not in s.checkpoints:
            return
        s.model.load_state_dict(load_checkpoint(s.checkpoints["best"])["model"])
        s.emit(Notice(f"early stopping after epoch {s.epoch + 1}: {selection_metric(s)} did not improve for "
                      f"{s.cfg.early_stop_patience} evaluations; restored the best checkpoint (epoch "
                      f"{s.best['epoch'] + 1}, {s.best['metric']}={s.best['value']:.4f})"))


class SummaryHook(Hook):
    """Emits one EpochSummary per epoch (empty val_losses/metrics when it was not evaluated)."""

    def after_epoch(self, s: TrainState) -> None:
        ev = s.last_eval if s.evaluated_this_epoch and s.last_eval else {"val_losses": {}, "metrics": {}}
        s.emit(EpochSummary(s.run_id, s.step, s.epoch, dict(ev["val_losses"]), dict(ev["metrics"]),
                            s.is_best, early_stop=s.stop_reason == "early_stop"))


class MetricsWriterHook(Hook):
    """Writes buffered metric rows to the store every ``every`` steps, per epoch and at the end
    (one transaction each, never per step); per epoch also the run's checkpoint and summary."""

    def __init__(self, every: int = 50) -> None:
        self.every = every

    def _flush(self, s: TrainState) -> None:
        if s.store is not None and s.metric_rows:
            s.store.add_metrics(s.run_id, s.metric_rows)
        s.metric_rows.clear()

    def after_step(self, s: TrainState) -> None:
        if s.step % self.every == 0:
            self._flush(s)

    def after_epoch(self, s: TrainState) -> None:
        self._flush(s)
        if s.store is not None:
            ckpt = s.checkpoints.get("best") or s.checkpoints.get("last")
            s.store.update_run(s.run_id, checkpoint=ckpt, summary=run_summary(s))

    def after_train(self, s: TrainState) -> None:
        self._flush(s)


def run_summary(s: TrainState) -> dict:
    """Plain-dict summary of a run for the store and the job result."""
    return {"status": s.status, "step": s.step, "epoch": s.epoch, "stop_reason": s.stop_reason,
            "metrics": dict(s.best.get("metrics") or (s.last_eval or {}).get("metrics", {})),
            "last_metrics": dict((s.last_eval or {}).get("metrics", {})),
            "best": {k: v for k, v in s.best.items() if k != "metrics"},
            "checkpoints": dict(s.checkpoints), "message": s.message}


def default_hooks(s: TrainState, evaluate: Callable[[], dict[str, float]],
                  val_losses: Callable[[], dict[str, float]],
                  snapshot: Callable[[TrainState], None] | None = None) -> list[Hook]:
    """The standard hook list, in the order documented in ``engine/train/trainer.py``."""
    hooks: list[Hook] = [LRHook(), StreamHook(), LimitsHook()]
    if snapshot is not None and s.cfg.xray_every > 0 and s.cfg.xray_image > 0:
        hooks.append(SnapshotHook(s.cfg.xray_every, snapshot))
    hooks += [EvalHook(evaluate, val_losses), CheckpointHook(), EarlyStopHook(), SummaryHook(),
              MetricsWriterHook(int(s.cfg.extra.get("metrics_every", 50)))]
    return hooks
