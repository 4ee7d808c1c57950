"""Create, move, resize and delete boxes, polygons and masks with REAL mouse/key events on the canvas.

After every edit the store must hold exactly what the canvas shows (``assert_canvas_is_store``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt

from engine.project.shapes import Mask
from gui.canvas.items import BoxItem, MaskItem, PolygonItem
from gui.canvas.testing import click, double_click, drag, key, scene_of, vp
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


def assert_canvas_is_store(w: MainWindow) -> None:
    """Same annotation ids, and every item DRAWS exactly the stored geometry (no leftover drag offset)."""
    stored = {a.id: a for a in w.store.annotations(w.image_id)}
    items = w.annotations.items
    assert set(items) == set(stored)
    for ann_id, item in items.items():
        a = stored[ann_id]
        assert item.annotation.category_id == a.category_id
        if isinstance(item, BoxItem):
            np.testing.assert_allclose(item.xyxy(), a.geometry.xyxy)
        elif isinstance(item, PolygonItem):
            np.testing.assert_allclose(item.points(), a.geometry.points)
        else:
            assert isinstance(item, MaskItem) and item.pos().x() == item.pos().y() == 0
            assert item.annotation.geometry.rle == a.geometry.rle


def tol(w: MainWindow) -> float:
    """A drag moves by whole viewport pixels: both ends round, so allow 1.5 of them in image pixels."""
    return max(1.0, 1.5 / w.canvas.zoom())


def new_ids(w: MainWindow, before: set[int]) -> list[int]:
    return sorted({a.id for a in w.store.annotations(w.image_id)} - before)


def ids_now(w: MainWindow) -> set[int]:
    return {a.id for a in w.store.annotations(w.image_id)}


def empty_corner(w: MainWindow) -> tuple[float, float]:
    """An image point with no annotation under it, away from the border."""
    W, H = w.canvas.image_size()
    for y in np.linspace(12, H - 40, 12):
        for x in np.linspace(12, W - 40, 12):
            if not w.annotations.items_in(QRectF(x - 2, y - 2, 36, 36)):
                return float(x), float(y)
    raise AssertionError("no empty area on the test image")


def test_draw_move_resize_delete_box(window: MainWindow, qtbot) -> None:
    w, c = window, window.canvas
    x, y = empty_corner(w)
    before = ids_now(w)
    key(c, Qt.Key.Key_R)
    assert w.labeling.tool.name == "box"
    drag(c, [(x, y), (x + 30, y + 20)])
    (box_id,) = new_ids(w, before)
    stored = w.store.annotation(box_id)
    start, end = scene_of(c, vp(c, x, y)), scene_of(c, vp(c, x + 30, y + 20))
    np.testing.assert_allclose(stored.geometry.xyxy, [*start, *end])
    assert stored.category_id == w.labeling.category_id and stored.provenance == "manual"
    assert w.annotations.selected_ids() == [box_id]
    assert_canvas_is_store(w)

    key(c, Qt.Key.Key_V)  # select tool; the new box is still selected
    drag(c, [(x + 15, y + 10), (x + 25, y + 16)])  # move by ~(10, 6)
    moved = w.store.annotation(box_id).geometry.xyxy
    np.testing.assert_allclose(moved[2:] - moved[:2], stored.geometry.xyxy[2:] - stored.geometry.xyxy[:2])
    x0, y0 = stored.geometry.xyxy[:2]
    assert abs(moved[0] - x0 - 10) < tol(w) and abs(moved[1] - y0 - 6) < tol(w)
    assert_canvas_is_store(w)

    x2, y2 = moved[2], moved[3]
    drag(c, [(x2, y2), (x2 + 12, y2 + 9)])  # bottom-right handle
    resized = w.store.annotation(box_id).geometry.xyxy
    np.testing.assert_allclose(resized[:2], moved[:2])
    assert abs(resized[2] - x2 - 12) < tol(w) and abs(resized[3] - y2 - 9) < tol(w)
    assert_canvas_is_store(w)

    key(c, Qt.Key.Key_Delete)
    assert box_id not in ids_now(w)
    assert_canvas_is_store(w)


def test_box_is_clamped_and_tiny_boxes_are_refused(window: MainWindow) -> None:
    w, c = window, window.canvas
    W, H = c.image_size()
    before = ids_now(w)
    key(c, Qt.Key.Key_W)  # W is the other box key
    drag(c, [(W - 20, H - 15), (W + 60, H + 40)])
    (box_id,) = new_ids(w, before)
    x1, y1, x2, y2 = w.store.annotation(box_id).geometry.xyxy
    assert (x2, y2) == (W, H) and x1 < W - 15 and y1 < H - 10
    before = ids_now(w)
    drag(c, [(10, 10), (10.6, 10.6)], steps=1)  # sub-2-px drag
    assert ids_now(w) == before
    assert "too small" in w.statusBar().currentMessage()
    assert_canvas_is_store(w)


def test_polygon_draw_close_backspace_escape(window: MainWindow) -> None:
    w, c = window, window.canvas
    x, y = empty_corner(w)
    before = ids_now(w)
    key(c, Qt.Key.Key_P)
    for px, py in [(x, y), (x + 30, y), (x + 99, y + 99)]:
        click(c, px, py)
    key(c, Qt.Key.Key_Backspace)  # removes the stray third vertex
    click(c, x + 30, y + 30)
    click(c, x, y + 30)
    click(c, x + 1, y + 1)  # near the first vertex: closes
    (pid,) = new_ids(w, before)
    pts = w.store.annotation(pid).geometry.points
    assert len(pts) == 4
    np.testing.assert_allclose(pts, [scene_of(c, vp(c, *p)) for p in [(x, y), (x + 30, y), (x + 30, y + 30),
                                                                        (x, y + 30)]])
    assert_canvas_is_store(w)
    # Enter closes too; Esc cancels a half-drawn one
    before = ids_now(w)
    for px, py in [(x + 40, y), (x + 60, y), (x + 50, y + 20)]:
        click(c, px, py)
    key(c, Qt.Key.Key_Return)
    assert len(new_ids(w, before)) == 1
    before = ids_now(w)
    click(c, x + 5, y + 40)
    click(c, x + 25, y + 40)
    key(c, Qt.Key.Key_Escape)
    assert ids_now(w) == before and not w.labeling.tools["polygon"].points
    assert w.labeling.tool.name == "polygon"  # Esc first cancels the drawing, the next Esc leaves the tool
    key(c, Qt.Key.Key_Escape)
    assert w.labeling.tool.name == "select"
    assert_canvas_is_store(w)


def test_polygon_vertex_drag_insert_delete_move(window: MainWindow) -> None:
    w, c = window, window.canvas
    x, y = empty_corner(w)
    before = ids_now(w)
    key(c, Qt.Key.Key_P)
    for p in [(x, y), (x + 30, y), (x + 30, y + 30), (x, y + 30)]:
        click(c, *p)
    key(c, Qt.Key.Key_Enter)
    (pid,) = new_ids(w, before)
    p0 = w.store.annotation(pid).geometry.points
    key(c, Qt.Key.Key_V)
    drag(c, [tuple(p0[2]), (p0[2][0] + 8, p0[2][1] + 5)])  # drag vertex 2
    p1 = w.store.annotation(pid).geometry.points
    assert len(p1) == 4 and abs(p1[2][0] - p0[2][0] - 8) < tol(w) and abs(p1[2][1] - p0[2][1] - 5) < tol(w)
    np.testing.assert_allclose(p1[[0, 1, 3]], p0[[0, 1, 3]])
    assert_canvas_is_store(w)

    mid = (p1[0] + p1[1]) / 2  # top edge
    double_click(c, *mid)
    p2 = w.store.annotation(pid).geometry.points
    assert len(p2) == 5 and np.allclose(p2[1], mid, atol=1)
    key(c, Qt.Key.Key_Backspace)  # the inserted vertex is the active one
    p3 = w.store.annotation(pid).geometry.points
    np.testing.assert_allclose(p3, p1)
    assert_canvas_is_store(w)

    cx, cy = p3.mean(0)
    drag(c, [(cx, cy), (cx - 6, cy + 4)])
    p4 = w.store.annotation(pid).geometry.points
    assert np.allclose(p4 - p3, (p4 - p3)[0]) and abs((p4 - p3)[0][0] + 6) < 1
    key(c, Qt.Key.Key_Delete)
    assert pid not in ids_now(w)
    assert_canvas_is_store(w)


def test_paint_extend_erase_move_delete_mask(window: MainWindow) -> None:
    w, c = window, window.canvas
    x, y = empty_corner(w)
    before = ids_now(w)
    key(c, Qt.Key.Key_B)
    for _ in range(3):
        key(c, Qt.Key.Key_BracketLeft)
    r = w.labeling.brush_radius
    assert r < 8
    drag(c, [(x, y + 10), (x + 25, y + 10)])
    (mid,) = new_ids(w, before)
    m = w.store.annotation(mid).geometry
    assert isinstance(m, Mask) and m.size == (c.image_size()[1], c.image_size()[0])
    a = m.to_array()
    assert a[int(y + 10), int(x + 12)] == 1 and a[int(y + 10 + r + 3), int(x + 12)] == 0
    area0 = a.sum()
    assert w.annotations.selected_ids() == [mid]  # the next stroke paints into it
    drag(c, [(x + 12, y + 10), (x + 12, y + 30)])
    assert new_ids(w, before) == [mid]
    a = w.store.annotation(mid).geometry.to_array()
    assert a.sum() > area0 and a[int(y + 28), int(x + 12)] == 1
    assert_canvas_is_store(w)

    key(c, Qt.Key.Key_E)
    drag(c, [(x - 10, y + 10), (x + 40, y + 10)])  # erase across the horizontal bar
    a2 = w.store.annotation(mid).geometry.to_array()
    assert a2[int(y + 10), int(x + 5)] == 0 and a2[int(y + 28), int(x + 12)] == 1 and a2.sum() < a.sum()
    assert_canvas_is_store(w)

    key(c, Qt.Key.Key_V)
    click(c, -50, -50)  # outside: clears the selection
    assert w.annotations.selected_ids() == []
    click(c, x + 12, y + 26)
    assert w.annotations.selected_ids() == [mid]
    drag(c, [(x + 12, y + 26), (x + 17, y + 29)])
    a3 = w.store.annotation(mid).geometry.to_array()
    assert a3.sum() == a2.sum() and not np.array_equal(a3, a2)
    ys, xs = np.nonzero(a2)
    ys3, xs3 = np.nonzero(a3)
    (sx0, sy0), (sx1, sy1) = scene_of(c, vp(c, x + 12, y + 26)), scene_of(c, vp(c, x + 17, y + 29))
    assert abs(xs3.min() - xs.min() - (sx1 - sx0)) < 1 and abs(ys3.min() - ys.min() - (sy1 - sy0)) < 1
    assert_canvas_is_store(w)

    key(c, Qt.Key.Key_E)  # erase everything: the emptied mask is removed, undo brings it back
    zigzag = [(x - 15 if i % 2 else x + 50, y - 5 + 3 * (i // 2)) for i in range(36)]
    drag(c, zigzag, steps=6)
    assert mid not in ids_now(w)
    assert_canvas_is_store(w)
    key(c, Qt.Key.Key_Z, CTRL)
    np.testing.assert_array_equal(w.store.annotation(mid).geometry.to_array(), a3)
    key(c, Qt.Key.Key_V)
    click(c, -50, -50)
    click(c, x + 17, y + 29)
    key(c, Qt.Key.Key_Delete)
    assert mid not in ids_now(w)
    assert_canvas_is_store(w)


def test_rubber_band_ctrl_click_and_click_through(window: MainWindow) -> None:
    w, c = window, window.canvas
    W, H = c.image_size()
    key(c, Qt.Key.Key_V)
    drag(c, [(-5, -5), (W + 5, H + 5)])  # band over the whole image
    assert sorted(w.annotations.selected_ids()) == sorted(w.annotations.items)
    box = next(i for i in w.annotations.items.values() if isinstance(i, BoxItem))
    bx = box.annotation.geometry.xyxy
    inside = ((bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2)
    click(c, *inside, CTRL)  # ctrl-click removes its object from the selection
    obj = w.annotations.object_ids(int(box.data(0)))
    assert not set(obj) & set(w.annotations.selected_ids())
    click(c, *inside)  # a plain click selects its whole object (the demo's box + mask)
    assert w.annotations.selected_ids() == obj and len(obj) == 2
    click(c, *inside, Qt.KeyboardModifier.AltModifier)  # Alt+click: only the part (the box is on top)
    assert w.annotations.selected_ids() == [int(box.data(0))]
    stack = w.annotations.items_at(w.annotations.items[int(box.data(0))].sceneBoundingRect().center())
    click(c, *inside)  # clicking the selected shape again selects the one under it
    assert len(stack) < 2 or w.annotations.selected_ids() != [int(box.data(0))]
    key(c, Qt.Key.Key_A, CTRL)
    assert len(w.annotations.selected_ids()) == len(w.annotations.items)
