"""Drawing tools the canvas hands its mouse/key events to: box, polygon, point, line, brush and eraser.

Each tool shows a preview item (Z_TOOLS) while the user draws and turns the finished shape into
ONE command through the host (``gui.labeling.host.LabelingHost``, the labeling controller): the shape appears as a
real annotation item only after the store committed it. Positions are scene = image pixels.
The select/edit tool lives in ``gui.labeling.select_tool``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem

from engine.project.geometry import clamp_point
from engine.project.shapes import Box, Line, Point, Polygon
from gui.canvas.items import color_of
from gui.canvas.view import Z_TOOLS

if TYPE_CHECKING:
    from gui.labeling.host import LabelingHost

MIN_BOX = 2.0  # px: smaller boxes are refused (a click is not a box)
CLOSE_PX = 8.0  # screen px: clicking this close to the first vertex closes a polygon
LEFT = Qt.MouseButton.LeftButton


def clamp(p: QPointF, w: int, h: int) -> tuple[float, float]:
    """``p`` clamped into the image [0, w] x [0, h] (pixel edges)."""
    return clamp_point(p.x(), p.y(), w, h)


def preview_pen(color: QColor, width: float = 1.5) -> QPen:
    pen = QPen(color, width, Qt.PenStyle.DashLine)
    pen.setCosmetic(True)
    return pen


class Tool:
    """Base: every handler returns False (not handled) so the view keeps its default behaviour."""

    name = "tool"
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, ctl: LabelingHost) -> None:
        self.ctl = ctl

    def activate(self) -> None:
        self.ctl.canvas.viewport().setCursor(self.cursor)

    def deactivate(self) -> None:
        self.cancel()

    def cancel(self) -> bool:
        """Drop any half-drawn shape; True if there was one."""
        return False

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        return False

    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool:
        return False

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        return False

    def mouse_double_click(self, event: QMouseEvent, pos: QPointF) -> bool:
        return False

    def key_press(self, event: QKeyEvent) -> bool:
        return False

    def _show(self, item: QGraphicsItem) -> None:
        if item.scene() is None:
            item.setZValue(Z_TOOLS)
            self.ctl.canvas.scene().addItem(item)

    def _hide(self, item: QGraphicsItem) -> None:
        if item.scene() is not None:
            item.scene().removeItem(item)


class BoxTool(Tool):
    """Drag to draw a box; it is clamped inside the image and must be at least MIN_BOX px a side."""

    name = "box"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, ctl: LabelingHost) -> None:
        super().__init__(ctl)
        self.start: tuple[float, float] | None = None
        self.preview = QGraphicsRectItem()
        self.preview.setPen(preview_pen(QColor(255, 255, 255)))

    def cancel(self) -> bool:
        had = self.start is not None
        self.start = None
        self._hide(self.preview)
        return had

    def _rect(self, pos: QPointF) -> np.ndarray:
        w, h = self.ctl.image_size()
        assert self.start is not None
        x, y = clamp(pos, w, h)
        return Box(np.array([*self.start, x, y])).xyxy

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        self.start = clamp(pos, *self.ctl.image_size())
        self.preview.setRect(QRectF(*self.start, 0, 0))
        self._show(self.preview)
        return True

    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool:
        if self.start is None:
            return False
        x1, y1, x2, y2 = self._rect(pos)
        self.preview.setRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        return True

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        if self.start is None or event.button() != LEFT:
            return False
        xyxy = self._rect(pos)
        self.cancel()
        if min(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]) < MIN_BOX:
            self.ctl.status(f"Box too small (min {MIN_BOX:g} px a side): not added")
            return True
        self.ctl.add_shape(Box(xyxy), "Add box")
        return True


class PolygonTool(Tool):
    """Click vertices; close on the first vertex, Enter or double-click; Backspace undoes a vertex; Esc cancels."""

    name = "polygon"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, ctl: LabelingHost) -> None:
        super().__init__(ctl)
        self.points: list[tuple[float, float]] = []
        self.cursor_pos: tuple[float, float] | None = None
        self.preview = QGraphicsPathItem()
        self.preview.setPen(preview_pen(QColor(255, 255, 255)))

    def cancel(self) -> bool:
        had = bool(self.points)
        self.points.clear()
        self._hide(self.preview)
        return had

    def _redraw(self) -> None:
        path = QPainterPath()
        if self.points:
            path.moveTo(*self.points[0])
            for p in self.points[1:]:
                path.lineTo(*p)
            if self.cursor_pos is not None:
                path.lineTo(*self.cursor_pos)
            r = CLOSE_PX / 2 / max(self.ctl.canvas.zoom(), 1e-6)
            path.addEllipse(QPointF(*self.points[0]), r, r)  # where to click to close
        self.preview.setPath(path)

    def _screen_dist(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        return math.dist(a, b) * self.ctl.canvas.zoom()

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        p = clamp(pos, *self.ctl.image_size())
        if len(self.points) >= 3 and self._screen_dist(p, self.points[0]) <= CLOSE_PX:
            self.finish()
            return True
        if self.points and self._screen_dist(p, self.points[-1]) < 2.0:
            return True  # the second press of a double-click, or a jitter: no duplicate vertex
        self.points.append(p)
        self._show(self.preview)
        self._redraw()
        return True

    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool:
        if not self.points:
            return False
        self.cursor_pos = clamp(pos, *self.ctl.image_size())
        self._redraw()
        return True

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        return bool(self.points) and event.button() == LEFT

    def mouse_double_click(self, event: QMouseEvent, pos: QPointF) -> bool:
        if len(self.points) >= 3:
            self.finish()
        return True

    def key_press(self, event: QKeyEvent) -> bool:
        if not self.points:
            return False
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if len(self.points) >= 3:
                self.finish()
            else:
                self.ctl.status("A polygon needs at least 3 vertices")
            return True
        if key == Qt.Key.Key_Backspace:
            self.points.pop()
            if self.points:
                self._redraw()
            else:
                self.cancel()
            return True
        if key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False

    def finish(self) -> None:
        pts = np.array(self.points, dtype=np.float64)
        self.cancel()
        if len(pts) < 3 or Polygon(pts).area() <= 0:
            self.ctl.status("Polygon has no area: not added")
            return
        self.ctl.add_shape(Polygon(pts), "Add polygon")


class PointTool(Tool):
    """A click adds a point (labelme's point shape)."""

    name = "point"
    cursor = Qt.CursorShape.CrossCursor

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        self.ctl.add_shape(Point(np.array(clamp(pos, *self.ctl.image_size()))), "Add point")
        return True

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        return event.button() == LEFT and self.ctl.has_image()


class LineTool(PolygonTool):
    """Click vertices of an open polyline; Enter or double-click finishes (>= 2 vertices); Backspace, Esc."""

    name = "line"
    min_points = 2

    def _redraw(self) -> None:
        path = QPainterPath()
        if self.points:
            path.moveTo(*self.points[0])
            for p in self.points[1:]:
                path.lineTo(*p)
            if self.cursor_pos is not None:
                path.lineTo(*self.cursor_pos)
        self.preview.setPath(path)

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        p = clamp(pos, *self.ctl.image_size())
        if self.points and self._screen_dist(p, self.points[-1]) < 2.0:
            return True  # the second press of a double-click: no duplicate vertex
        self.points.append(p)
        self._show(self.preview)
        self._redraw()
        return True

    def mouse_double_click(self, event: QMouseEvent, pos: QPointF) -> bool:
        if self.points and self.ctl.has_image():
            p = clamp(pos, *self.ctl.image_size())
            if self._screen_dist(p, self.points[-1]) >= 2.0:
                self.points.append(p)  # a double-click without a press before it still ends at the cursor
        if len(self.points) >= 2:
            self.finish()
        return True

    def key_press(self, event: QKeyEvent) -> bool:
        if self.points and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if len(self.points) >= 2:
                self.finish()
            else:
                self.ctl.status("A line needs at least 2 vertices")
            return True
        return super().key_press(event)

    def finish(self) -> None:
        pts = np.array(self.points, dtype=np.float64)
        self.cancel()
        if len(pts) < 2 or not np.any(np.ptp(pts, axis=0) > 0):
            self.ctl.status("Line has no length: not added")
            return
        self.ctl.add_shape(Line(pts), "Add line")


class BrushTool(Tool):
    """Paint (or, with ``erase``, erase) a stroke of radius ``ctl.brush_radius`` into a mask.

    Target: the selected mask; for the eraser with none selected, the topmost mask under the
    stroke's start. A brush stroke with no mask selected (or with Shift held) starts a new instance,
    which is then selected so the next strokes paint into it.
    """

    name = "brush"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, ctl: LabelingHost, erase: bool = False) -> None:
        super().__init__(ctl)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self.points: list[tuple[float, float]] = []
        self.target_id: int | None = None
        self.preview = QGraphicsPathItem()
        self.ring = QGraphicsEllipseItem()
        self.ring.setPen(preview_pen(QColor(255, 255, 255), 1.0))

    def deactivate(self) -> None:
        self.cancel()
        self._hide(self.ring)

    def cancel(self) -> bool:
        had = bool(self.points)
        self.points.clear()
        self._hide(self.preview)
        return had

    def update_ring(self, pos: QPointF | None = None) -> None:
        r = self.ctl.brush_radius
        c = pos if pos is not None else self.ring.rect().center()
        self.ring.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    def _preview_pen(self) -> QPen:
        if self.erase:
            color = QColor(255, 255, 255, 140)
        else:
            cat = self.ctl.category()
            color = color_of(cat.color if cat else "#ffff00")
            color.setAlpha(140)
        pen = QPen(color, 2 * self.ctl.brush_radius, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        return pen

    def _redraw(self) -> None:
        path = QPainterPath(QPointF(*self.points[0]))
        for p in self.points[1:]:
            path.lineTo(*p)
        if len(self.points) == 1:
            path.lineTo(self.points[0][0] + 1e-3, self.points[0][1])
        self.preview.setPath(path)

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        new_instance = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier) and not self.erase
        self.target_id = None if new_instance else self.ctl.mask_target(pos, self.erase)
        if self.erase and self.target_id is None:
            self.ctl.status("Nothing to erase here: select a mask first")
            return True
        self.points = [(pos.x(), pos.y())]
        self.preview.setPen(self._preview_pen())
        self._show(self.preview)
        self._redraw()
        return True

    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool:
        self._show(self.ring)
        self.update_ring(pos)
        if not self.points:
            return False
        self.points.append((pos.x(), pos.y()))
        self._redraw()
        return True

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        if not self.points or event.button() != LEFT:
            return False
        pts = np.array(self.points, dtype=np.float64)
        self.cancel()
        self.ctl.paint(pts, self.erase, self.target_id)
        return True
