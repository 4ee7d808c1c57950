"""The dock's canvas layers, one QGraphicsItem each, in image pixels (= scene coordinates).

- ``HeatmapLayer``: an (H, W) map in [0, 1] coloured and drawn over the image at 1 scene unit per pixel
  (Grad-CAM, original pixels); its item opacity is the dock's slider.
- ``CellLayer``: the hovered feature cell: its receptive field (outline, and a translucent fill of the part
  inside the image, so a field larger than the image still shows) and one stride step around its centre.
- ``InternalsOverlays``: the heat map, the explained target's box (a ``BoxLayer``) and the cell layer.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene, QStyleOptionGraphicsItem, QWidget

from gui.canvas.overlays import BoxLayer, OverlayLayer
from gui.canvas.view import Z_OVERLAYS
from gui.internals.arrays import heatmap_rgba, lut

RF_COLOR, STEP_COLOR, TARGET_COLOR = "#00e5ff", "#ffd000", "#ffffff"
Z_HEATMAP, Z_TARGET, Z_CELL = Z_OVERLAYS + 20, Z_OVERLAYS + 21, Z_OVERLAYS + 22


class HeatmapLayer(OverlayLayer):
    """An (H, W) float map in [0, 1] over the image, coloured with ``colormap``, pixel (r, c) on [c, c+1) × [r, r+1)."""

    def __init__(self, name: str, colormap: str = "inferno", z: float = Z_HEATMAP) -> None:
        super().__init__(name, "#ffffff", z)
        self.table = lut(colormap)
        self._image: QImage | None = None
        self._size = (0, 0)  # (W, H)

    def set_map(self, cam: np.ndarray | None) -> None:
        """Show ``cam`` (H, W) in [0, 1] (None: nothing). The RGBA array is built here, converted once."""
        if cam is None:
            self._image, self._size = None, (0, 0)
            self._set_bounds(0, 0, 0, 0)
            self.update()
            return
        rgba = heatmap_rgba(cam, self.table)
        h, w = rgba.shape[:2]
        img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self._image = img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)  # a copy: rgba may go
        self._size = (w, h)
        self.prepareGeometryChange()
        self._bounds = QRectF(0, 0, w, h)
        self.update()

    def map_size(self) -> tuple[int, int]:
        """(width, height) of the map shown, (0, 0) if none."""
        return self._size

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is None:
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        w, h = self._size
        painter.drawImage(QRectF(0, 0, w, h), self._image)
        self.last_paint = {"mode": "image", "drawn": 1}


def _cosmetic(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    return pen


class CellLayer(OverlayLayer):
    """Receptive field (row 0 of ``boxes()``) and stride step (row 1) of one cell, xyxy image pixels."""

    def __init__(self, name: str, z: float = Z_CELL) -> None:
        super().__init__(name, RF_COLOR, z)
        self.step_color = QColor(STEP_COLOR)
        self._boxes = np.zeros((0, 4), np.float64)
        self._image = QRectF()

    def set_cell(self, rf_box: np.ndarray | None, step_box: np.ndarray | None = None,
                 image_size: tuple[int, int] = (0, 0)) -> None:
        """Show a cell (None: nothing); ``image_size`` (W, H) bounds the fill of the field."""
        if rf_box is None:
            self._boxes = np.zeros((0, 4), np.float64)
            self._set_bounds(0, 0, 0, 0)
        else:
            rows = [rf_box] + ([step_box] if step_box is not None else [])
            self._boxes = np.asarray(rows, np.float64).reshape(-1, 4)
            b = self._boxes
            self._set_bounds(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        self._image = QRectF(0, 0, *image_size)
        self.update()

    def boxes(self) -> np.ndarray:
        """(N, 4) float64: the receptive field, then the stride step (a view: do not modify)."""
        return self._boxes

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not len(self._boxes):
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        x1, y1, x2, y2 = self._boxes[0].tolist()
        rf = QRectF(x1, y1, x2 - x1, y2 - y1)
        fill = QColor(self._color)
        fill.setAlpha(45)
        seen = rf.intersected(self._image) if not self._image.isEmpty() else rf
        painter.fillRect(seen, fill)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(_cosmetic(self._color, 2))
        painter.drawRect(rf)
        if len(self._boxes) > 1:
            x1, y1, x2, y2 = self._boxes[1].tolist()
            painter.setPen(_cosmetic(self.step_color, 2))
            painter.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        self.last_paint = {"mode": "vector", "drawn": int(len(self._boxes))}


class InternalsOverlays:
    """The three layers of the dock: ``heatmap``, ``target`` (the explained box), ``cell`` (hovered cell)."""

    def __init__(self) -> None:
        self.heatmap = HeatmapLayer("internals_gradcam")
        self.target = BoxLayer("internals_target", TARGET_COLOR, Z_TARGET, width=2, dashed=True)
        self.cell = CellLayer("internals_cell")
        self.heatmap.setOpacity(0.5)
        self._shown = True

    def items(self) -> list[OverlayLayer]:
        return [self.heatmap, self.target, self.cell]

    def attach(self, scene: QGraphicsScene) -> None:
        for it in self.items():
            if it.scene() is not scene:
                scene.addItem(it)

    def set_shown(self, on: bool) -> None:
        """All three visible (the dock is on screen) or hidden."""
        self._shown = on
        for it in self.items():
            it.setVisible(on)

    def set_cell(self, rf_box: np.ndarray | None, step_box: np.ndarray | None = None,
                 image_size: tuple[int, int] = (0, 0)) -> None:
        """The hovered cell: its receptive field and one stride step around its centre (None: none)."""
        self.cell.set_cell(rf_box, step_box, image_size)

    def set_target(self, box: np.ndarray | None, label: str = "") -> None:
        if box is None or not np.isfinite(np.asarray(box, np.float64)).all():
            self.target.set_boxes(np.zeros((0, 4)))
        else:
            self.target.set_boxes(np.asarray(box, np.float64).reshape(1, 4), labels=[label] if label else None)

    def clear(self) -> None:
        self.heatmap.set_map(None)
        self.set_target(None)
        self.set_cell(None)
