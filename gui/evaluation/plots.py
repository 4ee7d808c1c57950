"""pyqtgraph pieces of the report: a confusion-matrix heat map and a plot of one curve per class.

One item per layer: the heat map is one ``ImageItem`` plus ONE item that paints every cell's count
(``CellText``); a curve plot holds one ``PlotDataItem`` per class (a handful) that the class picker
highlights; markers are one ``ScatterPlotItem``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QVBoxLayout, QWidget

from gui.evaluation.tables import InfoLabel

PALETTE = ("#4e9af1", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
           "#9c755f", "#bab0ac")
TITLE_SIZE = "9pt"
TEXT_LIMIT = 30  # cells per side up to which the counts are written in the cells


def class_color(index: int) -> QColor:
    return QColor(PALETTE[index % len(PALETTE)])


def row_share(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without any count stay 0); float64."""
    m = np.asarray(matrix, np.float64)
    sums = m.sum(1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


class CellText(QGraphicsItem):
    """The counts of an (R, C) matrix drawn at the cell centres (cell (r, c) covers [c, c+1) x [r, r+1))
    in screen-sized text; ONE item for all cells, white on dark cells, black on light ones."""

    def __init__(self) -> None:
        super().__init__()
        self._counts = np.zeros((0, 0), np.int64)
        self._dark = np.zeros((0, 0), bool)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_cells(self, counts: np.ndarray, dark: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._counts = np.asarray(counts)
        self._dark = np.asarray(dark, bool)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        r, c = self._counts.shape[:2]
        return QRectF(0, 0, c, r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        rows, cols = self._counts.shape[:2]
        if not rows or rows > TEXT_LIMIT or cols > TEXT_LIMIT:
            return
        t = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        painter.setFont(font)
        for r in range(rows):
            for c in range(cols):
                p = t.map(QPointF(c + 0.5, r + 0.5))
                painter.setPen(QColor("white") if self._dark[r, c] else QColor("black"))
                painter.drawText(QRectF(p.x() - 40, p.y() - 10, 80, 20), Qt.AlignmentFlag.AlignCenter,
                                 str(int(self._counts[r, c])))
        painter.restore()


class ConfusionView(QWidget):
    """Truth rows, prediction columns; colour = share of the row, text = count; hover names the cell."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(self)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        self.plot.setLabel("left", "truth")
        self.plot.setLabel("bottom", "prediction")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.text = CellText()
        self.plot.addItem(self.image)
        self.plot.addItem(self.text)
        self.hover = InfoLabel(" ", self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.hover)
        self.matrix = np.zeros((0, 0), np.int64)
        self.labels: list[str] = []
        self.unit = "objects"
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_matrix(self, matrix: np.ndarray | None, labels: Sequence[str] = (), title: str = "",
                   unit: str = "objects") -> None:
        """Show ``matrix`` (R, R) int counts with ``labels`` (index 0 first); None clears."""
        m = np.zeros((0, 0), np.int64) if matrix is None else np.asarray(matrix, np.int64)
        self.matrix, self.labels, self.unit = m, [str(n) for n in labels], unit
        self.plot.setTitle(title, size=TITLE_SIZE)
        share = row_share(m)
        if m.size:
            self.image.setImage(share, levels=(0.0, 1.0), autoLevels=False)
            self.image.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
            self.image.show()
        else:
            self.image.clear()
            self.image.hide()
        self.text.set_cells(m, share < 0.55)
        ticks = list(enumerate(self.labels))
        centred = [(i + 0.5, name) for i, name in ticks]
        self.plot.getAxis("bottom").setTicks([centred])
        self.plot.getAxis("left").setTicks([centred])
        n = max(1, len(self.labels))
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        self.hover.setText(" " if not m.size else "hover a cell: truth → prediction")

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, column) of the cell at view coordinates (x, y), or None outside."""
        r, c = int(np.floor(y)), int(np.floor(x))
        if 0 <= r < self.matrix.shape[0] and 0 <= c < self.matrix.shape[1]:
            return r, c
        return None

    def describe(self, row: int, col: int) -> str:
        m = self.matrix
        total = int(m[row].sum())
        n = int(m[row, col])
        share = f" ({100 * n / total:.0f} % of the row)" if total else ""
        return f"truth {self.labels[row]} → predicted {self.labels[col]}: {n} {self.unit}{share}"

    def _on_mouse_moved(self, pos: QPointF) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        cell = self.cell_at(p.x(), p.y())
        if cell is not None:
            self.hover.setText(self.describe(*cell))


class CurvePlot(pg.PlotWidget):
    """One curve per class, x/y in [0, 1]; ``show_class(i)`` highlights one (None: all alike)."""

    def __init__(self, x_label: str, y_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setLabel("bottom", x_label)
        self.setLabel("left", y_label)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)
        self.legend = self.addLegend(offset=(-8, 8), brush=pg.mkBrush(0, 0, 0, 170))
        self.curves: list[pg.PlotDataItem] = []
        self.markers = pg.ScatterPlotItem(size=9, pen=pg.mkPen("w"), brush=pg.mkBrush("#ffd000"))
        self.markers.setZValue(10)
        self.addItem(self.markers)
        self.threshold = pg.InfiniteLine(angle=90, pen=pg.mkPen("#aaaaaa", style=Qt.PenStyle.DashLine),
                                         label="score {value:.2f}", labelOpts={"position": 0.08, "color": "#cccccc"})
        self.threshold.hide()
        self.addItem(self.threshold)
        self._picked: int | None = None

    def set_curves(self, names: Sequence[str], xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> None:
        for c in self.curves:
            self.removeItem(c)
        self.legend.clear()
        self.curves = []
        for i, (name, x, y) in enumerate(zip(names, xs, ys)):
            item = pg.PlotDataItem(np.asarray(x, np.float64), np.asarray(y, np.float64), name=str(name),
                                   pen=pg.mkPen(class_color(i), width=1), connect="finite")
            self.addItem(item)
            self.curves.append(item)
        self.markers.setData([], [])
        self.show_class(self._picked)

    def set_markers(self, points: Sequence[tuple[float, float]]) -> None:
        pts = [(x, y) for x, y in points if np.isfinite(x) and np.isfinite(y)]
        self.markers.setData([p[0] for p in pts], [p[1] for p in pts])

    def set_threshold(self, value: float | None) -> None:
        if value is None:
            self.threshold.hide()
        else:
            self.threshold.setValue(value)
            self.threshold.show()

    def show_class(self, index: int | None) -> None:
        """Highlight curve ``index`` (others faint); None shows every curve alike."""
        self._picked = index if index is not None and 0 <= index < len(self.curves) else None
        for i, item in enumerate(self.curves):
            color = class_color(i)
            if self._picked is not None and i != self._picked:
                color.setAlpha(50)
            width = 2 if i == self._picked else 1
            item.setPen(pg.mkPen(color, width=width))
            item.setZValue(5 if i == self._picked else 0)

    def picked(self) -> int | None:
        return self._picked
