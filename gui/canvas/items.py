"""Graphics items that draw stored annotations in image pixel coordinates.

One item per annotation (labelme-style), so each can be selected and edited. Masks are drawn as
a translucent pixmap cropped to their bounding box. Rendering and hit-testing live here; the
geometry itself is the Qt-free ``engine.project.shapes`` model.

Speed with thousands of items: pens are cosmetic and built once per colour (``Style``) and Qt's own
C++ ``paint`` draws every item (no Python ``paint``/``shape`` override runs per item per frame), the
only flag set is ``ItemIsSelectable``, and the selected look is a pen/brush swap done once when the
selection changes (``set_selected_look``). Edit handles are ONE ``HandleOverlay`` path item.
(A Python ``paint`` override costs Python calls per item per frame, and on PySide6 6.12.0 with
Python 3.11 each void Qt call made from Python drops one reference to ``None``: keep frames C++.)
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainterPath, QPainterPathStroker, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
    QGraphicsRectItem,
)

from engine.project.geometry import box_handles
from engine.project.shapes import Annotation, Box, Line, Mask, Point, Polygon
from gui.canvas.view import Z_ANNOTATIONS, Z_TOOLS

HANDLE_PX = 8  # edge length of an edit handle on screen


def _pen(color: QColor, width: float = 2.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # constant width on screen whatever the zoom
    return pen


class Style:
    """Pens and brushes of one category colour, built once and shared by all its items."""

    _cache: dict[tuple[int, int], Style] = {}

    def __init__(self, color: QColor, fill_alpha: int) -> None:
        self.color = QColor(color)
        self.pen = _pen(color, 1.0)  # 1 px cosmetic lines take the raster engine's fast path
        self.selected_pen = _pen(color.lighter(160), 2.0)
        fill = QColor(color)
        fill.setAlpha(fill_alpha)
        self.brush = QBrush(fill)
        fill = QColor(color.lighter(130))
        fill.setAlpha(min(255, fill_alpha + 60))
        self.selected_brush = QBrush(fill)

    @classmethod
    def of(cls, color: QColor, fill_alpha: int) -> Style:
        key = (color.rgba(), fill_alpha)
        if key not in cls._cache:
            cls._cache[key] = Style(color, fill_alpha)
        return cls._cache[key]


def _init_item(item: QGraphicsItem, ann: Annotation) -> None:
    item.annotation = ann
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
    item.setData(0, ann.id)


def _restyle(item: BoxItem | PolygonItem, ann: Annotation, color: QColor, fill_alpha: int) -> None:
    item.annotation = ann
    item.setPos(0, 0)
    style = Style.of(color, fill_alpha)
    if style is not item.style:
        item.style = style
        item.set_selected_look(item.isSelected())


class BoxItem(QGraphicsRectItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        super().__init__()
        _init_item(self, ann)
        self.style = Style.of(color, 30)
        self.set_selected_look(False)
        self.set_xyxy(ann.geometry.xyxy)

    def set_selected_look(self, on: bool) -> None:
        self.setPen(self.style.selected_pen if on else self.style.pen)
        self.setBrush(self.style.selected_brush if on else self.style.brush)

    def update_from(self, ann: Annotation, color: QColor) -> bool:
        """Take a changed stored box in place (cheaper than a new item); False if it is no box now."""
        if not isinstance(ann.geometry, Box):
            return False
        _restyle(self, ann, color, 30)
        self.set_xyxy(ann.geometry.xyxy)
        return True

    def set_xyxy(self, xyxy: np.ndarray) -> None:
        """Show the box ``xyxy`` (image pixels; a preview while resizing)."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        self._xyxy = np.array([x1, y1, x2, y2])
        self.setRect(QRectF(x1, y1, x2 - x1, y2 - y1))

    def xyxy(self) -> np.ndarray:
        """(4,) float64 xyxy of the drawn box in image pixels, including any move offset."""
        p = self.pos()
        return self._xyxy + [p.x(), p.y(), p.x(), p.y()]

    def handle_points(self) -> np.ndarray:
        """(8, 2) corners (tl, tr, br, bl) then edge midpoints (top, right, bottom, left)."""
        return box_handles(self.xyxy())


class PolygonItem(QGraphicsPolygonItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        super().__init__()
        _init_item(self, ann)
        self.style = Style.of(color, 60)
        self.set_selected_look(False)
        self.set_points(ann.geometry.points)

    def set_selected_look(self, on: bool) -> None:
        self.setPen(self.style.selected_pen if on else self.style.pen)
        self.setBrush(self.style.selected_brush if on else self.style.brush)

    def update_from(self, ann: Annotation, color: QColor) -> bool:
        """Take a changed stored polygon in place; False if it is no polygon now."""
        if not isinstance(ann.geometry, Polygon):
            return False
        _restyle(self, ann, color, 60)
        self.set_points(ann.geometry.points)
        return True

    def set_points(self, points: np.ndarray) -> None:
        """Show the polygon with (N, 2) vertices in image pixels (a preview while editing)."""
        self._points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.setPolygon(QPolygonF([QPointF(float(x), float(y)) for x, y in self._points]))

    def points(self) -> np.ndarray:
        """(N, 2) float64 vertices as drawn, including any move offset."""
        p = self.pos()
        return self._points + [p.x(), p.y()]

    def handle_points(self) -> np.ndarray:
        return self.points()


def mask_pixmap(mask: np.ndarray, color: QColor, alpha: int = 110, x0: int = 0, y0: int = 0,
                tight: bool = False) -> tuple[QPixmap, int, int]:
    """(h, w) {0,1} mask (a crop at (x0, y0)) -> translucent pixmap of its bounding box and the box's (x0, y0).

    ``tight``: the crop already is its bounding box (a stored ``Mask`` crop), so it is not searched again.
    One byte per pixel goes to Qt (an indexed image with a two-colour table), no RGBA array is built.
    """
    if not tight:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(cols) == 0:
            return QPixmap(), 0, 0
        c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        mask = mask[r0:r1, c0:c1]
        x0, y0 = x0 + int(c0), y0 + int(r0)
    crop = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = crop.shape
    if h == 0 or w == 0:
        return QPixmap(), 0, 0
    img = QImage(crop.data, w, h, w, QImage.Format.Format_Indexed8)
    img.setColorTable([0, QColor(color.red(), color.green(), color.blue(), alpha).rgba()])
    return QPixmap.fromImage(img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)), int(x0), int(y0)


class MaskItem(QGraphicsPixmapItem):
    def __init__(self, ann: Annotation, color: QColor) -> None:
        cx, cy, crop = ann.geometry.crop()  # the stored crop only, never the (H, W) image
        pix, x0, y0 = mask_pixmap(crop, color, 110, cx, cy, tight=ann.geometry.image_size is not None)
        super().__init__(pix)
        self.setOffset(x0, y0)
        _init_item(self, ann)
        self.style = Style.of(color, 0)
        self.setShapeMode(QGraphicsPixmapItem.ShapeMode.MaskShape)

    def set_selected_look(self, on: bool) -> None:
        """Nothing to swap: Qt outlines a selected pixmap item itself."""

    def update_from(self, ann: Annotation, color: QColor) -> bool:
        return False  # a new pixmap is a new item

    def handle_points(self) -> np.ndarray:
        return np.zeros((0, 2))


POINT_PX = 5.0  # screen radius of a point


class LineItem(QGraphicsPathItem):
    """An open polyline (labelme's line/linestrip): vertices are its handles, dragged like a polygon's."""

    def __init__(self, ann: Annotation, color: QColor) -> None:
        super().__init__()
        _init_item(self, ann)
        self.style = Style.of(color, 0)
        self.set_selected_look(False)
        self.set_points(ann.geometry.points)

    def set_selected_look(self, on: bool) -> None:
        pen = QPen(self.style.selected_pen if on else self.style.pen)
        pen.setWidthF(3.0 if on else 2.0)
        self.setPen(pen)

    def update_from(self, ann: Annotation, color: QColor) -> bool:
        if not isinstance(ann.geometry, Line):
            return False
        _restyle(self, ann, color, 0)
        self.set_points(ann.geometry.points)
        return True

    def set_points(self, points: np.ndarray) -> None:
        self._points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        path = QPainterPath(QPointF(*self._points[0]))
        for x, y in self._points[1:]:
            path.lineTo(float(x), float(y))
        self.setPath(path)

    def points(self) -> np.ndarray:
        p = self.pos()
        return self._points + [p.x(), p.y()]

    def handle_points(self) -> np.ndarray:
        return self.points()

    def shape(self) -> QPainterPath:  # noqa: D102 - a thin line is hard to hit: a few pixels around it
        stroker = QPainterPathStroker()
        views = self.scene().views() if self.scene() is not None else []
        zoom = views[0].transform().m11() if views else 1.0
        stroker.setWidth(8.0 / max(zoom, 1e-6))
        return stroker.createStroke(self.path())


class PointItem(QGraphicsEllipseItem):
    """A point: a small disc of constant screen size (``POINT_PX``) at the point."""

    def __init__(self, ann: Annotation, color: QColor) -> None:
        super().__init__()
        _init_item(self, ann)
        self.style = Style.of(color, 200)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setRect(QRectF(-POINT_PX, -POINT_PX, 2 * POINT_PX, 2 * POINT_PX))
        self.set_selected_look(False)
        self.set_points(ann.geometry.points)

    def set_selected_look(self, on: bool) -> None:
        self.setPen(self.style.selected_pen if on else self.style.pen)
        self.setBrush(self.style.selected_brush if on else self.style.brush)

    def update_from(self, ann: Annotation, color: QColor) -> bool:
        if not isinstance(ann.geometry, Point):
            return False
        _restyle(self, ann, color, 200)
        self.set_points(ann.geometry.points)
        return True

    def set_points(self, points: np.ndarray) -> None:
        self._xy = np.asarray(points, dtype=np.float64).reshape(2)
        self.setPos(float(self._xy[0]), float(self._xy[1]))

    def points(self) -> np.ndarray:
        p = self.pos()
        return np.array([[p.x(), p.y()]])

    def handle_points(self) -> np.ndarray:
        return np.zeros((0, 2))


AnnotationItem = BoxItem | PolygonItem | MaskItem | LineItem | PointItem


def make_item(ann: Annotation, color: QColor) -> AnnotationItem:
    """The display item for one annotation."""
    g = ann.geometry
    if isinstance(g, Box):
        item: AnnotationItem = BoxItem(ann, color)
    elif isinstance(g, Polygon):
        item = PolygonItem(ann, color)
    elif isinstance(g, Mask):
        item = MaskItem(ann, color)
    elif isinstance(g, Line):
        item = LineItem(ann, color)
    elif isinstance(g, Point):
        item = PointItem(ann, color)
    else:
        raise TypeError(f"no item for {type(g).__name__}")
    item.setZValue(Z_ANNOTATIONS + (0.5 if isinstance(g, Box) else 0.7 if isinstance(g, Point | Line) else 0.0))
    item.setToolTip(f"#{ann.id} {ann.kind}" + (f" score {ann.score:.2f}" if ann.score is not None else ""))
    return item


def color_of(hex_color: str) -> QColor:
    c = QColor(hex_color)
    return c if c.isValid() else QColor(Qt.GlobalColor.yellow)


class HandleOverlay(QGraphicsPathItem):
    """Edit handles of the selected shape: squares of ``HANDLE_PX`` screen pixels at (K, 2) scene points.

    A plain path item (Qt paints it): the squares are rebuilt in scene units when the points or the
    zoom change; the active vertex is a second path drawn in orange.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(Z_TOOLS - 1)
        self.setPen(_pen(QColor(20, 20, 20), 1.0))
        self.setBrush(QBrush(QColor(255, 255, 255)))
        self.active_item = QGraphicsPathItem(self)
        self.active_item.setPen(_pen(QColor(20, 20, 20), 1.0))
        self.active_item.setBrush(QBrush(QColor(255, 140, 0)))
        self._points = np.zeros((0, 2))
        self._active = -1
        self._zoom = 1.0

    def set_points(self, points: np.ndarray, active: int = -1) -> None:
        self._points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self._active = active
        self._rebuild()

    def points(self) -> np.ndarray:
        return self._points

    def active(self) -> int:
        return self._active

    def set_zoom(self, zoom: float) -> None:
        self._zoom = max(zoom, 1e-6)
        if len(self._points):
            self._rebuild()

    def _rebuild(self) -> None:
        s = HANDLE_PX / self._zoom
        path, active = QPainterPath(), QPainterPath()
        for i, (x, y) in enumerate(self._points):
            (active if i == self._active else path).addRect(QRectF(x - s / 2, y - s / 2, s, s))
        self.setPath(path)
        self.active_item.setPath(active)
