"""The data of one run's curves for the Plots panel: ring-buffered series keyed by (split, name).

Qt-free. Names follow the engine's metric rows ``(step, epoch, split, name, value)``: split
'train' holds ``loss_*``, ``loss`` and ``lr`` per step; split 'val' holds ``loss_*``, ``loss``
and the COCO stats (``map``, ``map50``, ...) per evaluated epoch.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.project.store import RunRecord, Store
from gui.training.options import SUMMARY_METRICS
from gui.training.ring_buffer import Series

PLOTTED_METRICS = SUMMARY_METRICS  # other metrics are kept (CSV export) but not drawn
# per-step imbalance fractions a detector streams (engine.tasks.faster_rcnn.step_stats); counts are not drawn
PLOTTED_STATS = ("stat_easy_neg_share", "stat_roi_fg_fraction", "stat_roi_easy_neg_share")


def plot_kind(name: str) -> str | None:
    """Which plot a metric name goes to: 'loss', 'metric' (mAP family), 'lr', 'stat' (imbalance
    fractions), or None (not plotted)."""
    if name.startswith("loss"):
        return "loss"
    if name in PLOTTED_METRICS:
        return "metric"
    if name == "lr":
        return "lr"
    if name in PLOTTED_STATS:
        return "stat"
    return None


class RunData:
    """The curves of one run: ``series[(split, name)]`` plus early-stopping / best-epoch steps."""

    def __init__(self, run_id: int, label: str, capacity: int = 100_000, smoothing: float = 0.0) -> None:
        self.run_id = run_id
        self.label = label
        self.capacity = capacity
        self.smoothing = smoothing
        self.series: dict[tuple[str, str], Series] = {}
        self.early_stop_step: float | None = None
        self.best_step: float | None = None
        self.status = "running"
        self.total_steps = 0  # planned steps of a live run (0 = unknown)

    def add(self, split: str, name: str, step: float, epoch: float, value: float) -> None:
        s = self.series.get((split, name))
        if s is None:
            s = self.series[(split, name)] = Series(self.capacity, self.smoothing if split == "train" else 0.0)
        s.append(step, epoch, value)

    def set_smoothing(self, w: float) -> None:
        self.smoothing = w
        for (split, name), s in self.series.items():
            if split == "train" and plot_kind(name) == "loss":
                s.set_smoothing(w)

    def rows(self) -> Iterable[tuple[int, str, str, float, float, float]]:
        """(run_id, split, name, step, epoch, value) for every stored point."""
        for (split, name), s in sorted(self.series.items()):
            for step, epoch, value in s.rows():
                yield self.run_id, split, name, step, epoch, value

    @staticmethod
    def from_store(store: Store, run: RunRecord) -> RunData:
        data = RunData(run.id, run_label(run))
        for step, epoch, split, name, value in store.metrics(run.id):
            data.add(split, name, step, epoch, value)
        data.status = run.status or ""
        summary = run.summary
        best = summary.get("best") or {}
        if best.get("step") is not None:
            data.best_step = float(best["step"])
        if data.status == "early_stopped" or summary.get("stop_reason") == "early_stop":
            val = [s.steps() for (sp, _), s in data.series.items() if sp == "val" and len(s)]
            if val:
                data.early_stop_step = float(max(v[-1] for v in val))
        return data


def run_label(run: RunRecord) -> str:
    return f"#{run.id} {run.name or ''} · {run.status or ''}".replace("  ", " ")
