"""``SplitLayer``: two same-size RGBA images over the canvas image, split at a vertical line.

Left of the split shows the *before* image, right of it the *after* one (scene = image pixels, pixel
(r, c) on [c, c+1) × [r, r+1)). Modes: ``before`` (the whole image from before), ``after``, ``split``
(at ``split`` × width). One QGraphicsItem per layer; the QImages are built once per result, a paint only
draws two source rectangles (and the split line).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from gui.canvas.overlays import OverlayLayer
from gui.canvas.view import Z_OVERLAYS

MODES = ("before", "after", "split")
Z_PREDICTION, Z_UNCERTAINTY = Z_OVERLAYS + 30, Z_OVERLAYS + 31
LINE_COLOR = "#ffffff"


def _qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 RGBA -> a premultiplied QImage that owns its pixels (``rgba`` may go)."""
    rgba = np.ascontiguousarray(rgba, np.uint8)
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class SplitLayer(OverlayLayer):
    """Before | after images split at a vertical line (module docstring)."""

    def __init__(self, name: str, z: float = Z_PREDICTION, draw_line: bool = True) -> None:
        super().__init__(name, LINE_COLOR, z)
        self.draw_line = draw_line
        self._images: dict[str, QImage] = {}
        self._size = (0, 0)  # (W, H)
        self.mode = "split"
        self.split = 0.5

    def set_images(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        """Show (H, W, 4) uint8 RGBA ``before`` and ``after`` (same size); None, None: nothing."""
        if before is None or after is None:
            self._images, self._size = {}, (0, 0)
            self._set_bounds(0, 0, 0, 0)
            self.update()
            return
        if before.shape != after.shape:
            raise ValueError(f"before {before.shape} and after {after.shape} differ")
        self._images = {"before": _qimage(before), "after": _qimage(after)}
        h, w = before.shape[:2]
        self._size = (w, h)
        self.prepareGeometryChange()
        self._bounds = QRectF(0, 0, w, h)
        self.update()

    def clear(self) -> None:
        self.set_images(None, None)

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the images shown, (0, 0) if none."""
        return self._size

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {MODES}")
        self.mode = mode
        self.update()

    def set_split(self, fraction: float) -> None:
        """Where the split line is, as a fraction of the width (used in ``split`` mode)."""
        self.split = float(min(1.0, max(0.0, fraction)))
        self.update()

    def split_x(self) -> float:
        """Scene x of the split: ``before`` shows on [0, x), ``after`` on [x, W)."""
        w = self._size[0]
        if self.mode == "before":
            return float(w)
        if self.mode == "after":
            return 0.0
        return round(self.split * w)

    def source_at(self, x: float) -> str | None:
        """Which image shows at scene x (None: outside the images or nothing shown)."""
        w = self._size[0]
        if not self._images or not 0 <= x < w:
            return None
        return "before" if x < self.split_x() else "after"

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self._images:
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        w, h = self._size
        sx = self.split_x()
        drawn = {}
        for side, x0, x1 in (("before", 0.0, sx), ("after", sx, float(w))):
            if x1 > x0:
                r = QRectF(x0, 0, x1 - x0, h)
                painter.drawImage(r, self._images[side], r)
                drawn[side] = (x0, x1)
        if self.draw_line and self.mode == "split":
            pen = QPen(QColor(self._color), 2)
            pen.setCosmetic(True)
            painter.setOpacity(1.0)
            painter.setPen(pen)
            painter.drawLine(QLineF(sx, 0, sx, h))
            self._paint_captions(painter, sx)
        self.last_paint = {"mode": "image", "drawn": len(drawn), **drawn}

    def _paint_captions(self, painter: QPainter, sx: float) -> None:
        """"before CRF" / "after CRF" on either side of the line's top, at a fixed screen size."""
        top = painter.worldTransform().map(QPointF(sx, 0))
        painter.save()
        painter.resetTransform()
        font = painter.font()
        font.setPointSizeF(9)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        y = max(top.y(), 0.0) + 4
        for text, left in (("◀ before CRF", True), ("after CRF ▶", False)):
            w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 2
            box = QRectF(top.x() - w - 3 if left else top.x() + 3, y, w, h)
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(QColor(self._color))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
