"""The select/edit tool: click, Ctrl-click and rubber-band selection, drag to move, box resize handles,
polygon vertex drag, double-click an edge to insert a vertex, Backspace to delete the active vertex.

While dragging, items are only moved/reshaped on screen; on release the edit becomes ONE command
(``UpdateGeometry``) and the items are rebuilt from what the store committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QGraphicsRectItem

from engine.project.shapes import Box, Geometry, Mask, Polygon
from gui.canvas.items import HANDLE_PX, AnnotationItem, BoxItem, MaskItem, PolygonItem
from gui.canvas.tools import LEFT, MIN_BOX, Tool, clamp, preview_pen

if TYPE_CHECKING:
    from gui.labeling import LabelingController

DRAG_PX = 3.0  # screen px the mouse must travel before a press becomes a drag
EDGE_PX = 8.0  # screen px: how close a double-click must be to a polygon edge


def shift_mask(mask: Mask, dx: int, dy: int) -> Mask:
    """The mask translated by whole pixels (dx, dy); pixels leaving the image are dropped."""
    m = mask.to_array()
    h, w = m.shape
    out = np.zeros_like(m)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = m[ys, xs]
    return Mask.from_array(out)


def translate(g: Geometry, dx: float, dy: float) -> Geometry:
    if isinstance(g, Box):
        return Box(g.xyxy + [dx, dy, dx, dy])
    if isinstance(g, Polygon):
        return Polygon(g.points + [dx, dy])
    return shift_mask(g, round(dx), round(dy))


def nearest_edge(points: np.ndarray, p: np.ndarray) -> tuple[int, np.ndarray, float]:
    """For a closed polygon (N, 2): (index of the edge i -> i+1, closest point on it, distance)."""
    a, b = points, np.roll(points, -1, axis=0)
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    q = a + t[:, None] * ab
    d = np.hypot(*(q - p).T)
    i = int(np.argmin(d))
    return i, q[i], float(d[i])


class SelectTool(Tool):
    name = "select"

    def __init__(self, ctl: LabelingController) -> None:
        super().__init__(ctl)
        self.mode: str | None = None  # 'move' | 'resize' | 'vertex' | 'band'
        self.dragging = False
        self.start = QPointF()
        self.press_view = QPointF()
        self.target: AnnotationItem | None = None
        self.handle = -1
        self.origin = np.zeros(0)
        self.moving: list[AnnotationItem] = []
        self.bounds = np.zeros(4)
        self.delta = (0.0, 0.0)
        self.band_add = False
        self.cycle = False
        self.active_vertex: tuple[int, int] | None = None  # (annotation id, vertex index)
        self.band = QGraphicsRectItem()
        self.band.setPen(preview_pen(QColor(120, 200, 255)))
        self.band.setBrush(QColor(120, 200, 255, 40))

    # -- helpers ------------------------------------------------------------------------------
    def cancel(self) -> bool:
        had = self.mode is not None
        if self.mode in ("move", "resize", "vertex"):
            self.ctl.reload()  # drop the on-screen preview
        self.mode = None
        self._hide(self.band)
        return had

    def _handle_at(self, item: AnnotationItem, view_pos: QPointF) -> int:
        pts = item.handle_points()
        if not len(pts):
            return -1
        t = self.ctl.canvas.viewportTransform()
        vx = t.m11() * pts[:, 0] + t.m21() * pts[:, 1] + t.dx()
        vy = t.m12() * pts[:, 0] + t.m22() * pts[:, 1] + t.dy()
        d = np.maximum(np.abs(vx - view_pos.x()), np.abs(vy - view_pos.y()))
        i = int(np.argmin(d))
        return i if d[i] <= HANDLE_PX * 0.75 + 1 else -1

    def active_index(self, item: AnnotationItem) -> int:
        av = self.active_vertex
        return av[1] if av is not None and av[0] == item.data(0) else -1

    def _resized(self, pos: QPointF) -> np.ndarray:
        x1, y1, x2, y2 = self.origin
        px, py = clamp(pos, *self.ctl.image_size())
        h = self.handle
        x1 = px if h in (0, 3, 7) else x1
        x2 = px if h in (1, 2, 5) else x2
        y1 = py if h in (0, 1, 4) else y1
        y2 = py if h in (2, 3, 6) else y2
        return Box(np.array([x1, y1, x2, y2])).xyxy

    # -- mouse ----------------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        layer = self.ctl.layer
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.start, self.press_view, self.dragging = pos, event.position(), False
        selected = layer.selected_items()
        if len(selected) == 1 and not ctrl:
            h = self._handle_at(selected[0], event.position())
            if h >= 0 and isinstance(selected[0], BoxItem | PolygonItem):
                self.target, self.handle = selected[0], h
                if isinstance(self.target, BoxItem):
                    self.mode, self.origin = "resize", self.target.xyxy()
                else:
                    self.mode, self.origin = "vertex", self.target.points()
                    self.active_vertex = (int(self.target.data(0)), h)
                self.ctl.update_handles()
                return True
        item = layer.item_at(pos)
        if item is not None:
            if ctrl:
                item.setSelected(not item.isSelected())
                return True
            self.cycle = item.isSelected() and len(selected) == 1  # a click on it again picks the shape below
            if not item.isSelected():
                layer.select([int(item.data(0))])
            self.mode, self.moving = "move", layer.selected_items()
            boxes = np.array([i.annotation.bbox() for i in self.moving])
            self.bounds = np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])
            self.delta = (0.0, 0.0)
            return True
        if not ctrl:
            layer.clear_selection()
        self.mode, self.band_add = "band", ctrl
        self.band.setRect(QRectF(pos, pos))
        self._show(self.band)
        return True

    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool:
        if self.mode is None:
            return False
        if not self.dragging:
            d = event.position() - self.press_view
            if max(abs(d.x()), abs(d.y())) < DRAG_PX:
                return True
            self.dragging = True
        if self.mode == "move":
            self._move_to(pos)
        elif self.mode == "resize" and isinstance(self.target, BoxItem):
            self.target.set_xyxy(self._resized(pos))
        elif self.mode == "vertex" and isinstance(self.target, PolygonItem):
            pts = self.origin.copy()
            pts[self.handle] = clamp(pos, *self.ctl.image_size())
            self.target.set_points(pts)
        elif self.mode == "band":
            self.band.setRect(QRectF(self.start, pos).normalized())
        self.ctl.update_handles()
        return True

    def _move_to(self, pos: QPointF) -> None:
        w, h = self.ctl.image_size()
        x1, y1, x2, y2 = self.bounds
        dx = min(max(pos.x() - self.start.x(), -x1), w - x2)
        dy = min(max(pos.y() - self.start.y(), -y1), h - y2)
        if any(isinstance(i, MaskItem) for i in self.moving):
            dx, dy = float(np.clip(round(dx), np.ceil(-x1), np.floor(w - x2))), float(
                np.clip(round(dy), np.ceil(-y1), np.floor(h - y2)))
        self.delta = (dx, dy)
        for item in self.moving:
            item.setPos(dx, dy)

    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or self.mode is None:
            return False
        mode, self.mode = self.mode, None
        if mode == "band":
            self._hide(self.band)
            if self.dragging:
                rect = QRectF(self.start, pos).normalized()
                self.ctl.layer.select([int(i.data(0)) for i in self.ctl.layer.items_in(rect)], add=self.band_add)
            return True
        if not self.dragging:
            if mode == "move" and self.cycle:
                self._select_next_below(self.start)
            return True
        if mode == "move" and self.delta != (0.0, 0.0):
            dx, dy = self.delta
            changes = [(int(i.data(0)), i.annotation.geometry, translate(i.annotation.geometry, dx, dy))
                       for i in self.moving]
            self.ctl.update_geometry(changes, "Move" if len(changes) == 1 else f"Move {len(changes)} shapes")
        elif mode == "resize" and isinstance(self.target, BoxItem):
            new = self.target.xyxy()
            if min(new[2] - new[0], new[3] - new[1]) < MIN_BOX:
                self.target.set_xyxy(self.origin)
                self.ctl.update_handles()
                self.ctl.status(f"Box too small (min {MIN_BOX:g} px a side): resize undone")
                return True
            self._commit_one(self.target, Box(new), "Resize box")
        elif mode == "vertex" and isinstance(self.target, PolygonItem):
            self._commit_one(self.target, Polygon(self.target.points()), "Move vertex")
        return True

    def _select_next_below(self, pos: QPointF) -> None:
        stack = self.ctl.layer.items_at(pos)
        current = self.moving[0] if self.moving else None
        if len(stack) > 1 and current in stack:
            nxt = stack[(stack.index(current) + 1) % len(stack)]
            self.ctl.layer.select([int(nxt.data(0))])

    def _commit_one(self, item: AnnotationItem, new: Geometry, text: str) -> None:
        self.ctl.update_geometry([(int(item.data(0)), item.annotation.geometry, new)], text)

    def mouse_double_click(self, event: QMouseEvent, pos: QPointF) -> bool:
        """Insert a vertex on the nearest edge of a polygon (the selected one first) under the cursor."""
        if event.button() != LEFT:
            return False
        self.mode = None
        tol = EDGE_PX / max(self.ctl.canvas.zoom(), 1e-6)
        p = np.array([pos.x(), pos.y()])
        candidates = [i for i in self.ctl.layer.selected_items() if isinstance(i, PolygonItem)]
        candidates += [i for i in self.ctl.layer.items_in(QRectF(pos.x() - tol, pos.y() - tol, 2 * tol, 2 * tol))
                       if isinstance(i, PolygonItem) and i not in candidates]
        for item in candidates:
            pts = item.points()
            i, q, d = nearest_edge(pts, p)
            if d <= tol:
                new = np.insert(pts, i + 1, q, axis=0)
                self.active_vertex = (int(item.data(0)), i + 1)
                self.ctl.layer.select([int(item.data(0))])
                self._commit_one(item, Polygon(new), "Insert vertex")
                return True
        return True

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() != Qt.Key.Key_Backspace or self.active_vertex is None:
            return False
        ann_id, idx = self.active_vertex
        item = self.ctl.layer.items.get(ann_id)
        if not isinstance(item, PolygonItem) or not item.isSelected() or idx >= len(item.points()):
            return False
        pts = item.points()
        if len(pts) <= 3:
            self.ctl.status("A polygon keeps at least 3 vertices (Del deletes the whole shape)")
            return True
        self.active_vertex = (ann_id, min(idx, len(pts) - 2))
        self._commit_one(item, Polygon(np.delete(pts, idx, axis=0)), "Delete vertex")
        return True
