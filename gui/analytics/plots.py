"""pyqtgraph pieces of the Analytics dock: bar charts and the (ln w, ln h) scatter with its lines.

One item per layer: the points are ONE ``ScatterPlotItem`` (brush per class), the selection one more,
the k-means anchors one more, each line one ``PlotDataItem``. Log axes are drawn as natural-log
coordinates with ticks labelled in pixels (or plain ratios), so the engine's (ln w, ln h) points and
line parameters are plotted as they are. Left-drag on the scatter draws a rubber band that selects
the points inside it, a click selects the points under the cursor; the right button and the wheel zoom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

PALETTE = ("#4e9af1", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
           "#9c755f", "#bab0ac")
MAX_VAR_COLOR, OLS_COLOR, ANCHOR_COLOR, SELECT_COLOR = "#ffd43b", "#ff6b6b", "#ffffff", "#ff00ff"
PIXEL_TICKS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
RATIO_TICKS = (0.125, 0.25, 0.5, 1, 2, 4, 8)


def log_ticks(values: Sequence[float], lo: float, hi: float) -> list[list[tuple[float, str]]]:
    """Major ticks at ln(v) labelled v, for the v whose log lies in [lo - 1, hi + 1]."""
    return [[(math.log(v), f"{v:g}") for v in values if lo - 1 <= math.log(v) <= hi + 1]]


def class_color(index: int) -> QColor:
    return QColor(PALETTE[index % len(PALETTE)])


def plot_widget(title: str, height: int = 130) -> pg.PlotWidget:
    w = pg.PlotWidget(title=f"<span style='font-size:9pt'>{title}</span>")
    w.setMinimumHeight(height)
    w.setMenuEnabled(False)
    w.getPlotItem().hideButtons()
    return w


class BarChart:
    """One ``BarGraphItem`` in a plot; ``set_bars(x0, x1, heights, ticks)``."""

    def __init__(self, widget: pg.PlotWidget, color: str = PALETTE[0]) -> None:
        self.widget = widget
        self.item = pg.BarGraphItem(x0=[], x1=[], height=[], brush=color, pen=pg.mkPen("#202020"))
        widget.addItem(self.item)
        widget.getPlotItem().setMouseEnabled(x=False, y=False)

    def set_bars(self, x0: np.ndarray, x1: np.ndarray, heights: np.ndarray,
                 ticks: list[list[tuple[float, str]]] | None = None) -> None:
        self.item.setOpts(x0=np.asarray(x0, np.float64), x1=np.asarray(x1, np.float64),
                          height=np.asarray(heights, np.float64))
        self.widget.getPlotItem().getAxis("bottom").setTicks(ticks)
        if len(heights):
            self.widget.setXRange(float(np.min(x0)), float(np.max(x1)), padding=0.02)
            self.widget.setYRange(0, max(1.0, float(np.max(heights))) * 1.05, padding=0)

    @property
    def count(self) -> int:
        heights = self.item.opts.get("height")
        return 0 if heights is None else len(heights)


class SelectViewBox(pg.ViewBox):
    """Left-drag: a rubber band (``rect_selected(QRectF)`` in data coordinates); other drags as usual."""

    rect_selected = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.band = QGraphicsRectItem()
        pen = QPen(QColor(SELECT_COLOR))
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.band.setPen(pen)
        self.band.setBrush(QBrush(QColor(255, 0, 255, 30)))
        self.band.setZValue(1e6)
        self.band.hide()
        self.addItem(self.band, ignoreBounds=True)

    def mouseDragEvent(self, ev: pg.GraphicsScene.mouseEvents.MouseDragEvent, axis: int | None = None) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        rect = QRectF(self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())).normalized()
        if ev.isFinish():
            self.band.hide()
            self.rect_selected.emit(rect)
        else:
            self.band.setRect(rect)
            self.band.show()


class ScatterView(pg.PlotWidget):
    """GT boxes as (ln w, ln h) points, the maximum-variance and OLS lines, the k-means anchors."""

    selection_changed = Signal(object)  # np.ndarray of selected point indices

    def __init__(self) -> None:
        vb = SelectViewBox()
        super().__init__(viewBox=vb, title="<span style='font-size:9pt'>GT box width vs height "
                                                "(log axes, px; drag to select)</span>")
        self.vb = vb
        self.setMinimumHeight(260)
        self.setMenuEnabled(False)
        pi = self.getPlotItem()
        pi.hideButtons()
        pi.setLabel("bottom", "width (px)")
        pi.setLabel("left", "height (px)")
        pi.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.points = pg.ScatterPlotItem(size=6, pen=None, name="GT boxes")
        self.selected = pg.ScatterPlotItem(size=10, pen=pg.mkPen(SELECT_COLOR, width=2), brush=None)
        self.max_var = pg.PlotDataItem(pen=pg.mkPen(MAX_VAR_COLOR, width=2), name="max-variance line")
        self.ols = pg.PlotDataItem(pen=pg.mkPen(OLS_COLOR, width=2, style=Qt.PenStyle.DashLine), name="OLS line")
        self.anchors = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("#000000"),
                                          brush=pg.mkBrush(ANCHOR_COLOR), name="k-means anchors")
        for item in (self.points, self.max_var, self.ols, self.anchors, self.selected):
            self.addItem(item)
        self.xy = np.zeros((0, 2))
        self.selection = np.zeros(0, np.int64)
        self._brushes = [pg.mkBrush(class_color(i)) for i in range(len(PALETTE))]
        self.points.sigClicked.connect(self._on_clicked)
        self.vb.rect_selected.connect(self._on_rect)

    def set_points(self, log_wh: np.ndarray, classes: np.ndarray) -> None:
        """(N, 2) float (ln w, ln h) and (N,) class indices (for the colours)."""
        self.xy = np.asarray(log_wh, np.float64).reshape(-1, 2)
        cls = np.asarray(classes, np.int64).reshape(-1)
        self.points.setData(x=self.xy[:, 0], y=self.xy[:, 1],
                            brush=[self._brushes[int(c) % len(self._brushes)] for c in cls])
        self.select(np.zeros(0, np.int64))
        if len(self.xy):
            lo, hi = float(self.xy.min()), float(self.xy.max())
            for axis in ("bottom", "left"):
                self.getPlotItem().getAxis(axis).setTicks(log_ticks(PIXEL_TICKS, lo, hi))
            self.getPlotItem().enableAutoRange()

    def set_lines(self, max_var: dict | None, ols: dict | None) -> None:
        """Both lines across the points' x range (engine dicts; None hides a line)."""
        if not len(self.xy) or max_var is None or ols is None:
            self.max_var.setData([], [])
            self.ols.setData([], [])
            return
        x = np.array([self.xy[:, 0].min(), self.xy[:, 0].max()])
        (mx, my), (dx, dy) = max_var["mean"], max_var["direction"]
        if abs(dx) > 1e-9:
            self.max_var.setData(x, my + (x - mx) * dy / dx)
        else:  # vertical
            self.max_var.setData([mx, mx], [self.xy[:, 1].min(), self.xy[:, 1].max()])
        self.ols.setData(x, ols["intercept"] + ols["slope"] * x)

    def set_anchors(self, anchors_wh: np.ndarray | None) -> None:
        a = np.zeros((0, 2)) if anchors_wh is None else np.asarray(anchors_wh, np.float64).reshape(-1, 2)
        a = a[(a > 0).all(1)]
        self.anchors.setData(x=np.log(a[:, 0]), y=np.log(a[:, 1]))

    @property
    def anchor_count(self) -> int:
        return len(self.anchors.data)

    # -- selection ------------------------------------------------------------------------------
    def select(self, indices: np.ndarray) -> None:
        self.selection = np.unique(np.asarray(indices, np.int64))
        sel = self.xy[self.selection] if len(self.selection) else np.zeros((0, 2))
        self.selected.setData(x=sel[:, 0], y=sel[:, 1])
        self.selection_changed.emit(self.selection)

    def _on_rect(self, rect: QRectF) -> None:
        x, y = self.xy[:, 0], self.xy[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        self.select(np.flatnonzero(inside))

    def _on_clicked(self, _item: pg.ScatterPlotItem, points: Sequence, _ev: object = None) -> None:
        self.select(np.array([p.index() for p in points], np.int64))
