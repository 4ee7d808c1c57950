"""Graphics items that draw stored annotations in image pixel coordinates.

One item per annotation (labelme-style), so each can be selected and edited. Masks are drawn as
a translucent pixmap cropped to their bounding box. Rendering and hit-testing live here; the
geometry itself is the Qt-free ``engine.project.shapes`` model.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsPolygonItem, QGraphicsRectItem

from engine.project.shapes import Annotation, Box, Mask, Polygon
from gui.canvas.view import Z_ANNOTATIONS


def _pen(color: QColor, width: float = 2.0) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)  # constant width on screen whatever the zoom
    return pen


class BoxItem(QGraphicsRectItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        x1, y1, x2, y2 = ann.geometry.xyxy
        super().__init__(QRectF(x1, y1, x2 - x1, y2 - y1))
        self.annotation = ann
        self.setPen(_pen(color))
        fill = QColor(color)
        fill.setAlpha(30)
        self.setBrush(QBrush(fill))


class PolygonItem(QGraphicsPolygonItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        super().__init__(QPolygonF([QPointF(float(x), float(y)) for x, y in ann.geometry.points]))
        self.annotation = ann
        self.setPen(_pen(color))
        fill = QColor(color)
        fill.setAlpha(60)
        self.setBrush(QBrush(fill))


def mask_pixmap(mask: np.ndarray, color: QColor, alpha: int = 110) -> tuple[QPixmap, int, int]:
    """(H, W) {0,1} mask -> RGBA pixmap of its bounding box and the box's (x0, y0)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return QPixmap(), 0, 0
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    crop = mask[y0:y1, x0:x1].astype(bool)
    rgba = np.zeros((*crop.shape, 4), np.uint8)
    rgba[crop] = (color.red(), color.green(), color.blue(), alpha)
    h, w = crop.shape
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return QPixmap.fromImage(img), int(x0), int(y0)


class MaskItem(QGraphicsPixmapItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        pix, x0, y0 = mask_pixmap(ann.geometry.to_array(), color)
        super().__init__(pix)
        self.setOffset(x0, y0)
        self.annotation = ann
        self.setShapeMode(QGraphicsPixmapItem.ShapeMode.MaskShape)


def make_item(ann: Annotation, color: QColor) -> QGraphicsItem:
    """The display item for one annotation."""
    g = ann.geometry
    if isinstance(g, Box):
        item: QGraphicsItem = BoxItem(ann, color)
    elif isinstance(g, Polygon):
        item = PolygonItem(ann, color)
    elif isinstance(g, Mask):
        item = MaskItem(ann, color)
    else:
        raise TypeError(f"no item for {type(g).__name__}")
    item.setZValue(Z_ANNOTATIONS + (0.5 if isinstance(g, Box) else 0.0))
    item.setToolTip(f"#{ann.id} {ann.kind}" + (f" score {ann.score:.2f}" if ann.score is not None else ""))
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
    item.setData(0, ann.id)
    return item


def color_of(hex_color: str) -> QColor:
    c = QColor(hex_color)
    return c if c.isValid() else QColor(Qt.GlobalColor.yellow)
