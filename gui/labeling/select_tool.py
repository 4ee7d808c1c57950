"""The select/edit tool: click, Ctrl-click and rubber-band selection, drag to move, box resize handles,
polygon/line vertex drag, double-click an edge to insert a vertex, Backspace to delete the active vertex,
arrow keys nudge the selection (Shift: 10 px).

Objects: a click selects the shape's whole object (every shape sharing its group id), so a drag moves
box and mask together; Alt+click selects one part only. Handles belong to one part: the single selected
shape, or the object's box/polygon/line when exactly one object is selected (resizing edits that part).

While dragging, items are only moved/reshaped on screen; on release the edit becomes ONE command
(``UpdateGeometry``) and the items are rebuilt from what the store committed. The geometry itself
(move limits, resize handles, edge insertion, translation) is ``engine.project.geometry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QGraphicsRectItem

from engine.project.geometry import move_delta, nearest_edge, resize_box, translate
from engine.project.shapes import Box, Geometry, Line, Polygon
from gui.canvas.items import HANDLE_PX, AnnotationItem, BoxItem, LineItem, MaskItem, PointItem, PolygonItem
from gui.labeling.tools import LEFT, MIN_BOX, Tool, clamp, preview_pen

if TYPE_CHECKING:
    from gui.labeling.host import LabelingHost

DRAG_PX = 3.0  # screen px the mouse must travel before a press becomes a drag
EDGE_PX = 8.0  # screen px: how close a double-click must be to a polygon edge


class SelectTool(Tool):
    name = "select"

    def __init__(self, ctl: LabelingHost) -> None:
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
        self.clicked: list[int] = []
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
        return i if d[i] <= HANDLE_PX / 2 + 1.5 else -1  # the drawn square, plus a little

    def active_index(self, item: AnnotationItem) -> int:
        av = self.active_vertex
        return av[1] if av is not None and av[0] == item.data(0) else -1

    def _resized(self, pos: QPointF) -> np.ndarray:
        return resize_box(self.origin, self.handle, *clamp(pos, *self.ctl.image_size()))

    # -- mouse ----------------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool:
        if event.button() != LEFT or not self.ctl.has_image():
            return False
        layer = self.ctl.layer
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        self.start, self.press_view, self.dragging = pos, event.position(), False
        selected = layer.selected_items()
        primary = self.ctl.primary_item()
        if primary is not None and not ctrl:
            h = self._handle_at(primary, event.position())
            if h >= 0 and isinstance(primary, BoxItem | PolygonItem | LineItem):
                self.target, self.handle = primary, h
                if isinstance(self.target, BoxItem):
                    self.mode, self.origin = "resize", self.target.xyxy()
                else:
                    self.mode, self.origin = "vertex", self.target.points()
                    self.active_vertex = (int(self.target.data(0)), h)
                self.ctl.update_handles()
                return True
        item = layer.item_at(pos)
        if item is not None:
            part = [int(item.data(0))] if alt else layer.object_ids(int(item.data(0)))
            if ctrl:
                layer.select(part, add=True) if not item.isSelected() else layer.select(
                    [i for i in layer.selected_ids() if i not in part])
                return True
            obj = set(layer.object_ids(int(item.data(0))))
            self.clicked = sorted(part)
            # a click on the selected object (or part) again picks the object below
            self.cycle = not alt and item.isSelected() and set(layer.selected_ids()) in (obj, {int(item.data(0))})
            if not item.isSelected() or (alt and len(selected) > 1):
                layer.select(part)
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
        elif self.mode == "vertex" and isinstance(self.target, PolygonItem | LineItem):
            pts = self.origin.copy()
            pts[self.handle] = clamp(pos, *self.ctl.image_size())
            self.target.set_points(pts)
        elif self.mode == "band":
            self.band.setRect(QRectF(self.start, pos).normalized())
        self.ctl.update_handles()
        return True

    def _move_to(self, pos: QPointF) -> None:
        dx, dy = move_delta(self.bounds, pos.x() - self.start.x(), pos.y() - self.start.y(), *self.ctl.image_size(),
                            whole_pixels=any(isinstance(i, MaskItem) for i in self.moving))
        self.delta = (dx, dy)
        for item in self.moving:
            if isinstance(item, PointItem):
                xy = item.annotation.geometry.xy
                item.setPos(float(xy[0]) + dx, float(xy[1]) + dy)
            else:
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
            elif mode == "move" and set(self.ctl.layer.selected_ids()) > set(self.clicked):
                self.ctl.layer.select(self.clicked)  # a click (no drag) in a larger selection picks that object
            return True
        if mode == "move" and self.delta != (0.0, 0.0):
            dx, dy = self.delta
            changes = [(int(i.data(0)), i.annotation.geometry, translate(i.annotation.geometry, dx, dy))
                       for i in self.moving]
            objects = {self.ctl.layer.object_ids(c[0])[0] if self.ctl.layer.object_ids(c[0]) else c[0] for c in changes}
            self.ctl.update_geometry(changes, "Move" if len(objects) == 1 else f"Move {len(objects)} objects")
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
        elif mode == "vertex" and isinstance(self.target, LineItem):
            self._commit_one(self.target, Line(self.target.points()), "Move vertex")
        return True

    def _select_next_below(self, pos: QPointF) -> None:
        """Select the next object under ``pos`` (below the current one, wrapping round)."""
        layer = self.ctl.layer
        current = set(layer.selected_ids())
        stack = layer.items_at(pos)
        if stack:
            whole = set(layer.object_ids(int(stack[0].data(0))))
            if current < whole:  # a part (Alt+click) was selected: a plain click takes the whole object
                layer.select(sorted(whole))
                return
        objs: list[list[int]] = []
        for it in stack:
            ids = layer.object_ids(int(it.data(0)))
            if ids not in objs:
                objs.append(ids)
        if len(objs) < 2:
            return
        at = next((k for k, ids in enumerate(objs) if current & set(ids)), -1)
        layer.select(objs[(at + 1) % len(objs)])

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
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        if event.key() in arrows and self.mode is None and self.ctl.layer.selected_ids():
            step = 10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
            dx, dy = arrows[Qt.Key(event.key())]
            self.ctl.nudge(dx * step, dy * step)
            return True
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
