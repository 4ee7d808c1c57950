"""Issue 12 through REAL mouse and key events: objects (move/delete/group/ungroup), the Objects list, copy/paste,
duplicate, copy from previous, hide/show, category names, nudge, point/line shapes, tag rename/delete, the tag
filter, the Del focus rule, brightness/contrast, keep zoom, the wheel option and the shortcuts list."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMenu

from engine.project.shapes import Line, Point
from gui.canvas.items import BoxItem, LineItem, MaskItem, PointItem
from gui.canvas.testing import click, double_click, drag, key, vp
from gui.images.filter import ImageFilter
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


def assert_canvas_is_store(w: MainWindow) -> None:
    """Same annotation ids, and every item draws exactly the stored geometry (no leftover drag offset)."""
    stored = {a.id: a for a in w.store.annotations(w.image_id)}
    items = w.annotations.items
    assert set(items) == set(stored)
    for ann_id, item in items.items():
        a = stored[ann_id]
        assert item.annotation.category_id == a.category_id and item.annotation.group_id == a.group_id
        if isinstance(item, BoxItem):
            np.testing.assert_allclose(item.xyxy(), a.geometry.xyxy)
        elif isinstance(item, MaskItem):
            assert item.pos().x() == item.pos().y() == 0 and item.annotation.geometry == a.geometry
        else:
            np.testing.assert_allclose(item.points(), a.geometry.points)


def empty_corner(w: MainWindow) -> tuple[float, float]:
    from PySide6.QtCore import QRectF
    W, H = w.canvas.image_size()
    for y in np.linspace(12, H - 40, 12):
        for x in np.linspace(12, W - 40, 12):
            if not w.annotations.items_in(QRectF(x - 2, y - 2, 36, 36)):
                return float(x), float(y)
    raise AssertionError("no empty area on the test image")


def _object_box(w: MainWindow) -> tuple[BoxItem, list[int]]:
    box = next(i for i in w.annotations.items.values() if isinstance(i, BoxItem)
               and i.annotation.group_id is not None)
    return box, w.annotations.object_ids(int(box.data(0)))


def _centre(box: BoxItem) -> tuple[float, float]:
    x1, y1, x2, y2 = box.annotation.geometry.xyxy
    return (x1 + x2) / 2, (y1 + y2) / 2


def _stored(w: MainWindow) -> dict:
    return {a.id: (a.kind, a.category_id, a.group_id, a.geometry.to_json()) for a in w.store.annotations(w.image_id)}


def test_click_selects_object_move_and_delete_act_on_it_and_undo(window: MainWindow) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_V)
    start = _stored(w)
    box, obj = _object_box(w)
    assert len(obj) == 2 and isinstance(w.annotations.items[obj[0]], MaskItem | BoxItem)
    cx, cy = _centre(box)
    click(c, cx, cy)
    assert w.annotations.selected_ids() == obj
    assert w.labeling.objects.tree.selectedItems()  # the Objects list follows the canvas
    mask_id = next(i for i in obj if isinstance(w.annotations.items[i], MaskItem))
    mask_box = w.store.annotation(mask_id).bbox()
    box_xyxy = box.annotation.geometry.xyxy.copy()
    drag(c, [(cx, cy), (cx + 6, cy + 4)])
    moved = w.store.annotation(mask_id).bbox()
    assert not np.allclose(moved, mask_box)  # the mask moved with its box
    box_moved = w.store.annotation(int(box.data(0))).geometry.xyxy
    assert np.all(np.abs((moved[:2] - mask_box[:2]) - (box_moved[:2] - box_xyxy[:2])) <= 1)
    assert_canvas_is_store(w)
    key(c, Qt.Key.Key_Delete)
    assert not set(obj) & {a.id for a in w.store.annotations(w.image_id)}  # box AND mask are gone
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    assert _stored(w) == start
    assert_canvas_is_store(w)


def test_alt_click_resizes_one_part_group_and_ungroup(window: MainWindow) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_V)
    box, obj = _object_box(w)
    cx, cy = _centre(box)
    click(c, cx, cy, ALT)
    assert w.annotations.selected_ids() == [int(box.data(0))]
    # ungroup the object: both parts become their own objects
    click(c, cx, cy)
    key(c, Qt.Key.Key_G, CTRL | SHIFT)
    assert all(w.store.annotation(i).group_id is None for i in obj)
    assert [o for o in w.labeling.objects.object_rows() if set(o) & set(obj)] == [[obj[0]], [obj[1]]]
    click(c, cx, cy)
    assert w.annotations.selected_ids() == [int(box.data(0))]  # now only the box
    # group them again with a rubber band + Ctrl+G
    click(c, cx, cy, ALT)
    mask_id = next(i for i in obj if i != int(box.data(0)))
    w.annotations.select(obj)
    key(c, Qt.Key.Key_G, CTRL)
    g = {w.store.annotation(i).group_id for i in obj}
    assert len(g) == 1 and None not in g
    click(c, -40, -40)
    click(c, cx, cy)
    assert sorted(w.annotations.selected_ids()) == sorted(obj)
    # the handles are the box's: dragging a corner resizes the box only
    x1, y1, x2, y2 = w.store.annotation(int(box.data(0))).geometry.xyxy
    mask_before = w.store.annotation(mask_id).geometry.to_json()
    drag(c, [(x2, y2), (x2 + 5, y2 + 5)])
    assert w.store.annotation(int(box.data(0))).geometry.xyxy[2] > x2 + 2
    assert w.store.annotation(mask_id).geometry.to_json() == mask_before
    for _ in range(4):
        key(c, Qt.Key.Key_Z, CTRL)
    assert all(w.store.annotation(i).group_id == box.annotation.group_id for i in obj)
    assert_canvas_is_store(w)


def test_objects_list_selects_on_canvas(window: MainWindow) -> None:
    w = window
    tree = w.labeling.objects.tree
    w.labeling.ui.objects_dock.raise_()
    rows = w.labeling.objects.object_rows()
    assert rows and sorted(i for r in rows for i in r) == sorted(w.annotations.items)
    top = tree.topLevelItem(1)
    rect = tree.visualItemRect(top)
    from PySide6.QtTest import QTest
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert w.annotations.selected_ids() == sorted(rows[1])


def test_copy_paste_across_images_duplicate_and_copy_previous(window: MainWindow) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_V)
    first = w.image_id
    box, obj = _object_box(w)
    click(c, *_centre(box))
    key(c, Qt.Key.Key_C, CTRL)
    n0 = len(w.store.annotations(first))
    key(c, Qt.Key.Key_D, CTRL)  # duplicate: a new object (new group), offset, selected
    dup = w.annotations.selected_ids()
    assert len(dup) == 2 and len(w.store.annotations(first)) == n0 + 2
    groups = {w.store.annotation(i).group_id for i in dup}
    assert len(groups) == 1 and groups != {box.annotation.group_id}
    key(c, Qt.Key.Key_D)  # next image
    w.images_feature.loader.wait(10)
    second = w.image_id
    assert second != first
    n1 = len(w.store.annotations(second))
    key(c, Qt.Key.Key_V, CTRL)
    pasted = [w.store.annotation(i) for i in w.annotations.selected_ids()]
    assert len(pasted) == 2 and all(a.image_id == second and a.provenance == "manual" for a in pasted)
    np.testing.assert_allclose(next(a for a in pasted if a.kind == "box").geometry.xyxy, box.annotation.geometry.xyxy)
    key(c, Qt.Key.Key_V, CTRL | SHIFT)  # copy everything from the previous image
    assert len(w.store.annotations(second)) == n1 + 2 + n0 + 2
    assert_canvas_is_store(w)
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    assert len(w.store.annotations(second)) == n1


def test_hide_show_all_and_per_category_and_names(window: MainWindow) -> None:
    w, c = window, window.canvas
    items = w.annotations.items
    assert items and all(i.isVisible() for i in items.values())
    assert not w.annotations.label_texts()  # names are a View option, off by default
    w.labeling.ui.names_action.trigger()
    names = w.annotations.label_texts()
    cats = {cat.id: cat.name for cat in w.store.categories()}
    assert set(names.values()) == {cats[i.annotation.category_id] for i in items.values()}
    key(c, Qt.Key.Key_H, CTRL)
    assert not any(i.isVisible() for i in items.values()) and not w.annotations.label_texts()
    box, _ = _object_box(w)
    click(c, *_centre(box))
    assert w.annotations.selected_ids() == []  # hidden shapes cannot be selected
    key(c, Qt.Key.Key_H, CTRL)
    assert all(i.isVisible() for i in items.values())
    cid = box.annotation.category_id
    w.labeling.labels.set_visible(cid, False)  # the checkbox of the category's row
    assert all(i.isVisible() == (i.annotation.category_id != cid) for i in items.values())
    w.labeling.labels.set_visible(cid, True)
    assert all(i.isVisible() for i in items.values())
    w.labeling.ui.names_action.trigger()
    assert not w.annotations.label_texts()


def test_nudge_with_arrow_keys(window: MainWindow) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_V)
    box, obj = _object_box(w)
    click(c, *_centre(box))
    before = w.store.annotation(int(box.data(0))).geometry.xyxy
    key(c, Qt.Key.Key_Right)
    key(c, Qt.Key.Key_Down, SHIFT)
    after = w.store.annotation(int(box.data(0))).geometry.xyxy
    np.testing.assert_allclose(after - before, [1, 10, 1, 10])
    assert_canvas_is_store(w)
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    np.testing.assert_allclose(w.store.annotation(int(box.data(0))).geometry.xyxy, before)


def test_point_and_line_shapes(window: MainWindow) -> None:
    w, c = window, window.canvas
    x, y = empty_corner(w)
    key(c, Qt.Key.Key_O)
    assert w.labeling.tool.name == "point"
    click(c, x + 5, y + 5)
    pt = [a for a in w.store.annotations(w.image_id) if a.kind == "point"]
    assert len(pt) == 1 and isinstance(pt[0].geometry, Point)
    assert isinstance(w.annotations.items[pt[0].id], PointItem)
    key(c, Qt.Key.Key_L)
    click(c, x + 2, y + 20)
    click(c, x + 20, y + 22)
    double_click(c, x + 28, y + 30)
    lines = [a for a in w.store.annotations(w.image_id) if a.kind == "line"]
    assert len(lines) == 1 and isinstance(lines[0].geometry, Line) and len(lines[0].geometry.points) == 3
    assert isinstance(w.annotations.items[lines[0].id], LineItem)
    # move the point with the select tool
    key(c, Qt.Key.Key_V)
    drag(c, [(x + 5, y + 5), (x + 9, y + 8)])
    moved = w.store.annotation(pt[0].id).geometry.xy
    assert moved[0] > x + 6
    assert_canvas_is_store(w)


def test_tag_rename_delete_with_undo_and_the_tag_filter_follows(window: MainWindow) -> None:
    w = window
    tags = w.labeling.tags
    assert tags.add_tag("blurry")
    tag = next(t for t in w.store.tags() if t.name == "blurry")
    image = w.image_id
    # the tag filter shows the image just tagged (the regression: 0 rows)
    w.images.set_filter(ImageFilter(tag=tag.id))
    assert w.images.model.rowCount() == 1
    tags.boxes[tag.id].click()  # untag
    assert w.images.model.rowCount() == 0
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert w.images.model.rowCount() == 1
    assert tags.rename_tag(tag.id, "soft")
    assert tags.boxes[tag.id].text() == "soft"
    assert tags.delete_tag(tag.id, confirm=False)
    assert tag.id not in {t.id for t in w.store.tags()}
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert tag.id in w.store.image_tags(image)
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert {t.id: t.name for t in w.store.tags()}[tag.id] == "blurry"


def test_del_in_the_image_list_does_not_delete_shapes(window: MainWindow, qtbot) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_A, CTRL)
    n = len(w.store.annotations(w.image_id))
    w.images.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.images.view, timeout=2000)
    from PySide6.QtTest import QTest
    QTest.keyClick(w.images.view, Qt.Key.Key_Delete)
    assert len(w.store.annotations(w.image_id)) == n
    c.setFocus()
    key(c, Qt.Key.Key_Delete)
    assert len(w.store.annotations(w.image_id)) == 0


def test_context_menu_offers_the_edit_actions(window: MainWindow, qtbot) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_V)
    box, obj = _object_box(w)
    pos = vp(c, *_centre(box))
    from PySide6.QtGui import QContextMenuEvent
    QApplication.sendEvent(c.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, c.mapToGlobal(pos)))
    menu = w.labeling.context_menu
    assert isinstance(menu, QMenu)
    texts = [a.text().replace("&", "") for a in menu.actions()]
    assert "Copy shapes" in texts and "Delete selected shapes" in texts and "Group into one object" in texts
    assert w.annotations.selected_ids() == obj  # right-click selected the object under the cursor
    menu.close()


def test_brightness_contrast_keep_zoom_and_wheel_option(window: MainWindow, qtbot) -> None:
    w, c = window, window.canvas
    w.images_feature.loader.wait(10)
    item = c._image_item
    before = item.pixmap().toImage().pixelColor(5, 5)
    dlg = w.labeling.ui.show_levels()
    w.labeling.ui.brightness.setValue(40)
    after = c._image_item.pixmap().toImage().pixelColor(5, 5)
    assert after.red() > before.red() or before.red() == 255
    w.labeling.ui._on_levels_reset()
    assert c._image_item.pixmap().toImage().pixelColor(5, 5) == before
    dlg.close()
    # keep zoom on the next image
    w.labeling.ui.keep_zoom_action.setChecked(True)
    c.zoom_by(2.0)
    z = c.zoom()
    key(c, Qt.Key.Key_D)
    w.images_feature.loader.wait(10)
    assert c.zoom() == z
    w.labeling.ui.keep_zoom_action.setChecked(False)
    # labelme's wheel: the wheel scrolls, Ctrl+wheel zooms
    w.labeling.ui.wheel_action.setChecked(True)
    centre = QPointF(c.viewport().rect().center())
    for mods, zooms in ((Qt.KeyboardModifier.NoModifier, False), (CTRL, True)):
        z0, h0 = c.zoom(), c.mapToScene(QPoint(0, 0))
        ev = QWheelEvent(centre, QPointF(c.viewport().mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120),
                         Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(c.viewport(), ev)
        assert (c.zoom() != z0) == zooms
        if not zooms:
            assert c.mapToScene(QPoint(0, 0)) != h0
    w.labeling.ui.wheel_action.setChecked(False)


def test_help_lists_the_new_shortcuts(window: MainWindow) -> None:
    rows = dict((text, keys) for keys, text in window.labeling.ui.shortcut_rows())
    for text, k in (("Copy shapes", "Ctrl+C"), ("Paste shapes", "Ctrl+V"), ("Duplicate shapes", "Ctrl+D"),
                    ("Hide / show annotations", "Ctrl+H"), ("Group into one object", "Ctrl+G"),
                    ("Ungroup", "Ctrl+Shift+G"), ("Point tool", "O"), ("Line tool", "L")):
        assert rows.get(text) == k, (text, rows.get(text))
    assert any("Alt+click" in k for k in rows.values()) or any("Alt+click" in t for t in rows)
