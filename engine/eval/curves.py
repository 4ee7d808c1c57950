"""Overfitting diagnosis of one run: train and val curves per epoch, the generalisation gap, where
early stopping triggered and where the best checkpoint is.

Input: the run's metric rows ``(step, epoch, split, name, value)`` (``Store.metrics(run_id)``;
split ``train`` holds ``loss``, ``loss_*`` and ``lr`` per optimisation step, split ``val`` holds
``loss``, ``loss_*`` and the task's metrics per evaluated epoch) and its summary (``Store.run``:
``stop_reason``, ``epoch``, ``best = {metric, value, step, epoch}``). Epochs are 0-based.

- Train curves are the **mean over the epoch's steps** (computed while the weights change and with
  augmentation; the usual approximation), val curves the value recorded at the epoch's evaluation.
- ``gap = val_loss - train_loss`` per epoch: rising while the train loss falls is overfitting.
- ``early_stop_epoch``: the epoch whose evaluation triggered early stopping (summary ``epoch`` when
  ``stop_reason == "early_stop"``), else None. ``best_epoch``/``best_step``: where ``best.pt`` was
  saved (the selection metric's best evaluation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from engine.eval.export import json_safe
from engine.project.store import Store

Row = tuple[int, int, str, str, float]


@dataclass(frozen=True)
class RunCurves:
    """Per-epoch curves of one run; every array is (E,) float64 aligned with ``epochs`` (E,) int64,
    NaN where the epoch has no value (e.g. an epoch that was not evaluated)."""

    run_id: int
    epochs: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    gap: np.ndarray
    train: dict[str, np.ndarray] = field(default_factory=dict)  # loss, loss_*, lr: epoch means
    val: dict[str, np.ndarray] = field(default_factory=dict)  # loss, loss_*, metrics
    stop_reason: str | None = None
    early_stop_epoch: int | None = None
    best_metric: str | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None

    @property
    def val_metrics(self) -> dict[str, np.ndarray]:
        """The val curves that are not losses (the task's metrics)."""
        return {k: v for k, v in self.val.items() if not k.startswith("loss")}

    def max_gap_epoch(self) -> int | None:
        """The epoch with the largest generalisation gap (None when no epoch has both losses)."""
        if not np.isfinite(self.gap).any():
            return None
        return int(self.epochs[int(np.nanargmax(self.gap))])

    def to_json(self) -> dict:
        return json_safe({"run_id": self.run_id, "epochs": self.epochs, "train_loss": self.train_loss,
                          "val_loss": self.val_loss, "gap": self.gap, "train": self.train, "val": self.val,
                          "stop_reason": self.stop_reason, "early_stop_epoch": self.early_stop_epoch,
                          "best": {"metric": self.best_metric, "value": self.best_value,
                                   "epoch": self.best_epoch, "step": self.best_step}})

    @staticmethod
    def from_rows(rows: Iterable[Row], summary: dict | None = None, run_id: int = 0) -> RunCurves:
        """Build from metric rows and a run summary (see the module docstring)."""
        sums: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for _step, epoch, split, name, value in rows:
            sums[(str(split), str(name))][int(epoch)].append(float(value))
        epochs = np.array(sorted({e for per in sums.values() for e in per}), np.int64)
        index = {int(e): i for i, e in enumerate(epochs)}

        def curve(split: str, name: str, reduce: str) -> np.ndarray:
            out = np.full(len(epochs), np.nan)
            for e, values in sums.get((split, name), {}).items():
                out[index[e]] = float(np.mean(values)) if reduce == "mean" else values[-1]
            return out

        train = {n: curve(s, n, "mean") for s, n in sorted(sums) if s == "train"}
        val = {n: curve(s, n, "last") for s, n in sorted(sums) if s == "val"}
        nan = np.full(len(epochs), np.nan)
        train_loss, val_loss = train.get("loss", nan), val.get("loss", nan)
        summary = summary or {}
        best = summary.get("best") or {}
        stop = summary.get("stop_reason")
        early = summary.get("epoch") if stop == "early_stop" else None
        if stop == "early_stop" and early is None:  # no epoch in the summary: the last evaluated one
            evaluated = epochs[np.isfinite(val_loss)] if len(epochs) else epochs
            early = int(evaluated[-1]) if len(evaluated) else None
        return RunCurves(
            run_id=int(run_id), epochs=epochs, train_loss=train_loss, val_loss=val_loss, gap=val_loss - train_loss,
            train=train, val=val, stop_reason=stop, early_stop_epoch=None if early is None else int(early),
            best_metric=best.get("metric"), best_value=None if best.get("value") is None else float(best["value"]),
            best_epoch=None if best.get("epoch") is None else int(best["epoch"]),
            best_step=None if best.get("step") is None else int(best["step"]))


def run_curves(store: Store, run_id: int) -> RunCurves:
    """The curves of run ``run_id`` of an open store (StoreError when there is no such run)."""
    run = store.run(run_id)
    return RunCurves.from_rows(store.metrics(run_id), run.summary, run_id)
