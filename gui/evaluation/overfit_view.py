"""The overfitting view of one run: train and val loss per epoch, the generalisation gap, early stop
and best checkpoint markers, and the validation metric the checkpoint was selected by.

``set_curves(RunCurves | None)``; the curves are read from the store off the GUI thread
(``gui.evaluation.jobs.curves_job``). A gap (val - train) that grows while the train loss falls is
overfitting; the best checkpoint is where the selection metric peaked.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from engine.eval.curves import RunCurves
from gui.evaluation.tables import InfoLabel, fmt

TRAIN, VAL, GAP, METRIC = "#4e9af1", "#f28e2b", "#e15759", "#59a14f"
BEST, EARLY = "#59d36b", "#ff5a5a"


def _plot(parent: QWidget, y_label: str) -> pg.PlotWidget:
    p = pg.PlotWidget(parent)
    p.setMenuEnabled(False)
    p.setLabel("bottom", "epoch")
    p.setLabel("left", y_label)
    p.showGrid(x=True, y=True, alpha=0.2)
    p.addLegend(offset=(-8, 8), brush=pg.mkBrush(0, 0, 0, 170))
    p.getAxis("left").enableAutoSIPrefix(False)
    return p


def _marker(color: str, text: str) -> pg.InfiniteLine:
    line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                           label=text, labelOpts={"position": 0.06, "color": color, "movable": False})
    line.hide()
    return line


class OverfitView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: RunCurves | None = None
        self.summary = InfoLabel("Pick a run to see its train and validation curves.", self)
        self.loss_plot = _plot(self, "loss")
        self.metric_plot = _plot(self, "validation metric")
        sym = {"symbol": "o", "symbolSize": 5}
        self.items: dict[str, pg.PlotDataItem] = {
            "train": self.loss_plot.plot([], [], name="train loss", pen=pg.mkPen(TRAIN, width=1),
                                         symbolBrush=TRAIN, symbolPen=None, **sym),
            "val": self.loss_plot.plot([], [], name="val loss", pen=pg.mkPen(VAL, width=1),
                                       symbolBrush=VAL, symbolPen=None, **sym),
            "gap": self.loss_plot.plot([], [], name="gap (val − train)",
                                       pen=pg.mkPen(GAP, width=1, style=Qt.PenStyle.DotLine),
                                       symbolBrush=GAP, symbolPen=None, **sym),
            "metric": self.metric_plot.plot([], [], name="val metric", pen=pg.mkPen(METRIC, width=1),
                                            symbolBrush=METRIC, symbolPen=None, **sym),
        }
        for item in self.items.values():
            item.setData(connect="finite")
        self.markers: dict[str, pg.InfiniteLine] = {}
        for plot_name, plot in (("loss", self.loss_plot), ("metric", self.metric_plot)):
            for kind, color in (("best", BEST), ("early_stop", EARLY)):
                line = _marker(color, "best" if kind == "best" else "early stop")
                plot.addItem(line)
                self.markers[f"{plot_name}_{kind}"] = line
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot, 3)
        plots.addWidget(self.metric_plot, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.summary)
        lay.addLayout(plots, 1)

    def set_curves(self, c: RunCurves | None) -> None:
        self.curves = c
        empty = np.zeros(0)
        if c is None or not len(c.epochs):
            for item in self.items.values():
                item.setData(empty, empty)
            for line in self.markers.values():
                line.hide()
            self.summary.setText("This run has no metric rows yet." if c is not None
                                 else "Pick a run to see its train and validation curves.")
            return
        x = c.epochs.astype(np.float64)
        self.items["train"].setData(x, c.train_loss, connect="finite")
        self.items["val"].setData(x, c.val_loss, connect="finite")
        self.items["gap"].setData(x, c.gap, connect="finite")
        metrics = c.val_metrics
        name = c.best_metric if c.best_metric in metrics else next(iter(metrics), None)
        if name is not None:
            self.items["metric"].setData(x, metrics[name], connect="finite")
            self.metric_plot.setLabel("left", f"val {name}")
        else:
            self.items["metric"].setData(empty, empty)
        for plot_name in ("loss", "metric"):
            self._place(self.markers[f"{plot_name}_best"], c.best_epoch, f"best · epoch {c.best_epoch}")
            self._place(self.markers[f"{plot_name}_early_stop"], c.early_stop_epoch,
                        f"early stop · epoch {c.early_stop_epoch}")
        self.loss_plot.enableAutoRange()
        self.metric_plot.enableAutoRange()
        self.summary.setText(self._describe(c, name))

    @staticmethod
    def _place(line: pg.InfiniteLine, epoch: int | None, text: str) -> None:
        if epoch is None:
            line.hide()
            return
        line.setValue(float(epoch))
        line.label.setFormat(text)
        line.show()

    @staticmethod
    def _describe(c: RunCurves, metric: str | None) -> str:
        parts = [f"run {c.run_id}: {len(c.epochs)} epoch(s)"]
        if c.best_epoch is not None:
            parts.append(f"best checkpoint at epoch {c.best_epoch} ({c.best_metric} {fmt(c.best_value)})")
        if c.early_stop_epoch is not None:
            parts.append(f"early stopping at epoch {c.early_stop_epoch}")
        elif c.stop_reason:
            parts.append(f"stopped: {c.stop_reason.replace('_', ' ')}")
        finite = np.isfinite(c.gap)
        if finite.any():
            last = float(c.gap[finite][-1])
            parts.append(f"gap val − train at the last evaluated epoch {last:+.3f}, largest at epoch "
                         f"{c.max_gap_epoch()}")
            rising = finite.sum() >= 3 and float(np.diff(c.gap[finite])[-2:].min()) > 0
            falling = finite.sum() >= 3 and float(np.diff(c.train_loss[finite])[-2:].max()) < 0
            if rising and falling:
                parts.append("the gap grows while the train loss falls: overfitting")
        if metric is None:
            parts.append("no validation metric recorded")
        return " · ".join(parts)
