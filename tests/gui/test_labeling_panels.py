"""Relabel with number keys, image tags and categories (add, rename, recolor, merge, delete) through the GUI."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QCheckBox, QColorDialog, QInputDialog, QMessageBox

from engine.project.store import Store
from gui.canvas.items import BoxItem
from gui.canvas.testing import click, drag, key
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def snapshot(store: Store) -> tuple:
    anns = tuple((a.id, a.image_id, a.category_id, a.kind, str(a.geometry.to_json()), a.group_id)
                 for a in store.annotations())
    return anns, tuple(store.categories()), tuple(sorted(store.all_image_tags().items()))


def tick(panel: object, box: QCheckBox) -> None:
    """A real click on the checkbox's indicator, its tab raised and scrolled into view first as a user would."""
    panel.ctl.ui.tags_dock.raise_()
    QApplication.processEvents()
    panel.scroll.ensureWidgetVisible(box)
    assert box.isVisible()
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(8, box.height() // 2))


def canvas_categories(w: MainWindow) -> dict[int, int]:
    return {k: i.annotation.category_id for k, i in w.annotations.items.items()}


def test_number_keys_pick_category_and_relabel_selection_with_its_group(window: MainWindow) -> None:
    w, c = window, window.canvas
    cats = w.store.categories()
    box = next(i for i in w.annotations.items.values() if isinstance(i, BoxItem))
    group = {a.id for a in w.store.annotations(w.image_id) if a.group_id == box.annotation.group_id}
    assert len(group) == 2  # the demo stores each object as box + mask
    target = next(cat for cat in cats if cat.id != box.annotation.category_id)
    x1, y1, x2, y2 = box.annotation.geometry.xyxy
    click(c, (x1 + x2) / 2, (y1 + y2) / 2)
    assert set(w.annotations.selected_ids()) == group  # a click selects the whole object
    key(c, Qt.Key(Qt.Key.Key_1 + cats.index(target)))
    assert w.labeling.category_id == target.id
    assert {w.store.annotation(i).category_id for i in group} == {target.id}
    assert canvas_categories(w) == {a.id: a.category_id for a in w.store.annotations(w.image_id)}
    assert f"({w.store.category_usage(target.id)})" in w.labeling.labels.list.currentItem().text()
    # the picked category labels new shapes too
    key(c, Qt.Key.Key_R)
    before = {a.id for a in w.store.annotations(w.image_id)}
    drag(c, [(3, 3), (12, 12)])
    (new,) = {a.id for a in w.store.annotations(w.image_id)} - before
    assert w.store.annotation(new).category_id == target.id
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    assert {w.store.annotation(i).category_id for i in group} == {box.annotation.category_id}
    key(c, Qt.Key.Key_9)  # no 9th category: nothing changes
    assert "No category 9" in w.statusBar().currentMessage()


def test_tags_toggle_undo_add_and_follow_the_image(window: MainWindow, qtbot) -> None:
    w = window
    tags_panel = w.labeling.tags
    crowded = next(t for t in w.store.tags() if t.name == "crowded")
    box = tags_panel.boxes[crowded.id]
    had = crowded.id in w.store.image_tags(w.image_id)
    assert box.isChecked() == had
    tick(tags_panel, box)
    assert (crowded.id in w.store.image_tags(w.image_id)) == (not had) == box.isChecked()
    tick(tags_panel, tags_panel.boxes[w.store.tags()[0].id])  # multi-label
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert (crowded.id in w.store.image_tags(w.image_id)) == had == box.isChecked()
    key(w.canvas, Qt.Key.Key_Y, CTRL)
    assert (crowded.id in w.store.image_tags(w.image_id)) == (not had) == box.isChecked()
    QTest.keyClicks(tags_panel.new_tag, "blurry")
    QTest.keyClick(tags_panel.new_tag, Qt.Key.Key_Return)
    blurry = next(t for t in w.store.tags() if t.name == "blurry")
    assert blurry.id in w.store.image_tags(w.image_id) and tags_panel.boxes[blurry.id].isChecked()
    first = w.image_id
    w.canvas.setFocus()
    key(w.canvas, Qt.Key.Key_D)  # next image: its own tags
    assert w.image_id != first
    assert {t for t, b in tags_panel.boxes.items() if b.isChecked()} == w.store.image_tags(w.image_id)


def test_add_rename_recolor_categories(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    w, panel = window, window.labeling.labels
    orig = w.store.categories()
    n = len(orig)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("star", True))
    QTest.mouseClick(panel.buttons["Add"], Qt.MouseButton.LeftButton)
    star = w.store.categories()[-1]
    assert star.name == "star" and len(w.store.categories()) == n + 1 and panel.list.count() == n + 1
    assert w.labeling.category_id == star.id
    assert not panel.add_category("star")  # duplicate: refused visibly, nothing added
    assert "already exists" in w.labeling.ui.banner.message() and len(w.store.categories()) == n + 1
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("pentagon", True))
    QTest.mouseClick(panel.buttons["Rename"], Qt.MouseButton.LeftButton)
    assert w.store.category(star.id).name == "pentagon"
    panel.show_current(w.store.categories()[0].id)
    first = w.store.categories()[0]
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor("#123456"))
    QTest.mouseClick(panel.buttons["Color"], Qt.MouseButton.LeftButton)
    assert w.store.category(first.id).color == "#123456"
    painted = [i for i in w.annotations.items.values() if i.annotation.category_id == first.id]
    assert all(i.style.color == QColor("#123456") for i in painted)
    for _ in range(3):
        key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert w.store.categories() == orig  # the refused duplicate never reached the stack
    key(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier(CTRL | SHIFT))
    assert w.store.categories()[-1] == star  # redo restores it with the same id


def test_merge_and_delete_category_ask_and_undo_with_ids(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    w, panel = window, window.labeling.labels
    start = snapshot(w.store)
    cats = w.store.categories()
    src, dst = cats[1], cats[0]
    n_src = w.store.category_usage(src.id)
    n_dst = w.store.category_usage(dst.id)
    panel.show_current(src.id)
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: (dst.name, True))
    QTest.mouseClick(panel.buttons["Merge"], Qt.MouseButton.LeftButton)
    assert [c.id for c in w.store.categories()] == [c.id for c in cats if c.id != src.id]
    assert w.store.category_usage(dst.id) == n_src + n_dst
    assert set(canvas_categories(w).values()) <= {c.id for c in w.store.categories()}

    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton) -> object:
        return lambda _parent, _title, text, *a, **k: (asked.append(text), reply)[1]

    panel.show_current(dst.id)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    QTest.mouseClick(panel.buttons["Delete"], Qt.MouseButton.LeftButton)
    assert f"{n_src + n_dst} annotations" in asked[-1] and w.store.category_usage(dst.id) == n_src + n_dst
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    QTest.mouseClick(panel.buttons["Delete"], Qt.MouseButton.LeftButton)
    assert dst.id not in {c.id for c in w.store.categories()}
    assert all(a.category_id not in (src.id, dst.id) for a in w.store.annotations())
    assert set(canvas_categories(w).values()) <= {c.id for c in w.store.categories()}
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    key(w.canvas, Qt.Key.Key_Z, CTRL)
    assert snapshot(w.store) == start
    assert canvas_categories(w) == {a.id: a.category_id for a in w.store.annotations(w.image_id)}
    assert np.array_equal([panel.list.item(i).data(Qt.ItemDataRole.UserRole + 1) for i in range(panel.list.count())],
                          [c.id for c in cats])
