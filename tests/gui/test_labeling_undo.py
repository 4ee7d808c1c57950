"""Undo/redo keys, the History view, undo across images, no save prompts, and the shortcut list."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMessageBox

from engine.project.store import Store
from gui.canvas.testing import click, drag, key
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def state(store: Store) -> tuple:
    return (tuple((a.id, a.category_id, str(a.geometry.to_json())) for a in store.annotations()),
            tuple(sorted(store.all_image_tags().items())))


def draw_box_and_polygon(w: MainWindow) -> None:
    c = w.canvas
    key(c, Qt.Key.Key_R)
    drag(c, [(4, 4), (20, 16)])
    key(c, Qt.Key.Key_P)
    for p in [(30, 5), (50, 5), (40, 25)]:
        click(c, *p)
    key(c, Qt.Key.Key_Return)


def test_undo_redo_keys_and_history_view(window: MainWindow) -> None:
    w, c = window, window.canvas
    start = state(w.store)
    draw_box_and_polygon(w)
    after = state(w.store)
    assert len(after[0]) == len(start[0]) + 2 and w.labeling.stack.count() == 2
    assert w.labeling.ui.undo_action.text() == "&Undo Add polygon"
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    assert state(w.store) == start and len(w.annotations.items) == len(w.store.annotations(w.image_id))
    key(c, Qt.Key.Key_Z, Qt.KeyboardModifier(CTRL | SHIFT))
    key(c, Qt.Key.Key_Y, CTRL)
    assert state(w.store) == after
    view = w.labeling.ui.undo_view
    assert view.model().rowCount() == 3  # "<project opened>" + two edits
    history = next(a for a in w.labeling.ui.edit_menu.actions() if a.text() == "&History")
    history.trigger()  # Edit > History
    QApplication.processEvents()
    assert view.isVisible()
    rect = view.visualRect(view.model().index(0, 0))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert w.labeling.stack.index() == 0 and state(w.store) == start
    rect = view.visualRect(view.model().index(2, 0))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert state(w.store) == after
    assert {a.id for a in w.store.annotations(w.image_id)} == set(w.annotations.items)


def test_undo_of_an_edit_on_another_image_shows_that_image(window: MainWindow) -> None:
    w, c = window, window.canvas
    first = w.image_id
    n = len(w.store.annotations(first))
    key(c, Qt.Key.Key_R)
    drag(c, [(4, 4), (20, 16)])
    key(c, Qt.Key.Key_D)
    assert w.image_id != first
    key(c, Qt.Key.Key_Z, CTRL)
    assert w.image_id == first and len(w.store.annotations(first)) == n == len(w.annotations.items)


def test_no_save_prompt_on_close_or_project_switch(window: MainWindow, demo_copy: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    w = window

    def no_prompt(*_a: object, **_k: object) -> None:
        raise AssertionError("a save prompt was shown")

    for name in ("question", "warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, no_prompt)
    monkeypatch.setattr(QDialog, "exec", no_prompt)
    draw_box_and_polygon(w)
    edited = state(w.store)
    other = tmp_path / "other"
    Store.create(other).close()
    assert w.open_project(other)  # switching project: no prompt, fresh history
    assert w.labeling.stack.count() == 0 and w.labeling.category_id is None
    key(w.canvas, Qt.Key.Key_R)
    drag(w.canvas, [(4, 4), (20, 16)])  # no image in the new project: nothing happens
    assert w.store.annotations() == []
    assert w.open_project(demo_copy)
    assert state(w.store) == edited
    draw_box_and_polygon(w)
    edited = state(w.store)
    assert w.close()
    with Store(demo_copy) as s:
        assert state(s) == edited
    assert QFileDialog  # File dialogs are only opened from menus, never on close


def test_shortcuts_dialog_lists_every_key_and_ctrl_wheel_zooms(window: MainWindow) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_F1)
    dlg = w.labeling.ui.shortcuts_dialog
    assert dlg.isVisible()
    keys = {k.strip() for keys, _ in w.labeling.ui.shortcut_rows() for k in keys.split(",")}
    for expected in ["R", "W", "P", "B", "E", "V", "Esc", "Del", "A", "D", "F", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y",
                     "[", "]", "1", "9", "Ctrl+A", "Backspace"]:
        assert expected in keys, expected
    assert any("Ctrl+Wheel" in k for k in keys) and any("Space" in k for k in keys)
    dlg.close()
    before = c.zoom()
    pos = c.viewport().rect().center()
    ev = QWheelEvent(QPointF(pos), QPointF(c.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, CTRL, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(c.viewport(), ev)
    assert c.zoom() > before * 1.3
