"""A store that refuses writes: every edit is refused VISIBLY, the canvas shows the store, nothing is lost.

Failures are real SQLite errors: ``PRAGMA query_only=ON`` on the window's connection, the window's
connection reopened read-only (``mode=ro``, what a read-only file gives), and a TEMP trigger that
aborts one kind of write (a failure in the middle of a multi-step undo from the History view).
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.project.store import DB_NAME, Store
from gui.canvas.items import BoxItem
from gui.canvas.testing import click, drag, key
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


def state(store: Store) -> tuple:
    return (tuple((a.id, a.category_id, str(a.geometry.to_json())) for a in store.annotations()),
            tuple(store.categories()), tuple(sorted(store.all_image_tags().items())))


def canvas_matches_store(w: MainWindow) -> bool:
    stored = {a.id: a for a in w.store.annotations(w.image_id)}
    if set(stored) != set(w.annotations.items):
        return False
    return all(np.allclose(i.xyxy(), stored[k].geometry.xyxy) for k, i in w.annotations.items.items()
               if isinstance(i, BoxItem))


def make_read_only(w: MainWindow, how: str) -> None:
    if how == "query_only":
        w.store.conn.execute("PRAGMA query_only=ON")
    else:  # the same file through a read-only connection
        w.store.conn.close()
        uri = f"file:{w.store.root / DB_NAME}?mode=ro"
        w.store.conn = sqlite3.connect(uri, uri=True, isolation_level=None)


def make_writable(w: MainWindow, how: str) -> None:
    if how == "query_only":
        w.store.conn.execute("PRAGMA query_only=OFF")
    else:
        w.store.conn.close()
        w.store.conn = sqlite3.connect(w.store.root / DB_NAME, isolation_level=None)


def assert_refused(w: MainWindow, before: tuple, stack_count: int) -> None:
    assert "not saved" in w.labeling.ui.banner.message().lower() or "undo" in w.labeling.ui.banner.message().lower()
    assert "NOT SAVED" in w.statusBar().currentMessage()
    assert w.labeling.stack.count() == stack_count
    assert state(w.store) == before
    assert canvas_matches_store(w)
    w.labeling.ui.banner.hide()


@pytest.mark.parametrize("how", ["query_only", "read_only_connection"])
def test_every_edit_is_refused_visibly_and_nothing_is_lost(window: MainWindow, how: str) -> None:
    w, c = window, window.canvas
    key(c, Qt.Key.Key_R)
    drag(c, [(4, 4), (24, 18)])  # one committed edit that must survive
    committed = state(w.store)
    make_read_only(w, how)
    n = w.labeling.stack.count()
    assert n == 1

    drag(c, [(30, 30), (50, 44)])  # a new box
    assert_refused(w, committed, n)
    key(c, Qt.Key.Key_V)
    box = next(i for i in w.annotations.items.values() if isinstance(i, BoxItem))
    x1, y1, x2, y2 = box.annotation.geometry.xyxy
    click(c, (x1 + x2) / 2, (y1 + y2) / 2)
    drag(c, [((x1 + x2) / 2, (y1 + y2) / 2), ((x1 + x2) / 2 + 9, (y1 + y2) / 2 + 7)])  # move: reverted
    assert_refused(w, committed, n)
    # the selection (the box's whole object, issue 12) survives the revert
    assert w.annotations.selected_ids() == w.annotations.object_ids(int(box.data(0)))
    key(c, Qt.Key.Key_Delete)
    assert_refused(w, committed, n)
    key(c, Qt.Key.Key_B)
    drag(c, [(60, 60), (80, 60)])  # a brush stroke
    assert_refused(w, committed, n)
    tags = w.labeling.tags
    tag_id, tag_box = next(iter(tags.boxes.items()))
    was = tag_box.isChecked()
    w.labeling.ui.tags_dock.raise_()
    QApplication.processEvents()
    tags.scroll.ensureWidgetVisible(tag_box)
    QTest.mouseClick(tag_box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(8, 9))
    assert tag_box.isChecked() == was  # un-ticked again: the store said no
    assert_refused(w, committed, n)
    w.labeling.labels.show_current(w.store.categories()[0].id)
    assert not w.labeling.labels.delete_current(confirm=False)
    assert_refused(w, committed, n)

    key(c, Qt.Key.Key_Z, CTRL)  # undo cannot write either: the stack stays where the store is
    assert w.labeling.stack.index() == 1
    assert_refused(w, committed, n)

    make_writable(w, how)  # the disk is back: the same window goes on working
    key(c, Qt.Key.Key_Z, CTRL)
    assert w.labeling.stack.index() == 0 and len(state(w.store)[0]) == len(committed[0]) - 1
    key(c, Qt.Key.Key_Y, CTRL)
    assert state(w.store) == committed and canvas_matches_store(w)
    assert tag_id in {t.id for t in w.store.tags()}


def test_failure_in_the_middle_of_a_history_jump_stops_where_the_store_is(window: MainWindow) -> None:
    w, c = window, window.canvas
    start = state(w.store)
    key(c, Qt.Key.Key_R)
    drag(c, [(4, 4), (24, 18)])
    after_box = state(w.store)
    tags = w.labeling.tags
    tag_id = next(iter(tags.boxes))
    tags.toggle(tag_id, tag_id not in w.store.image_tags(w.image_id))
    after_tag = state(w.store)
    key(c, Qt.Key.Key_P)
    for p in [(30, 5), (50, 5), (40, 25)]:
        click(c, *p)
    key(c, Qt.Key.Key_Return)
    end = state(w.store)
    assert w.labeling.stack.count() == 3
    for op in ("INSERT", "DELETE"):  # only tag writes fail, as if that page of the disk were bad
        w.store.conn.execute(f"CREATE TEMP TRIGGER no_tags_{op} BEFORE {op} ON image_tags "
                             "BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END")
    view = w.labeling.ui.undo_view
    w.labeling.ui.history_dock.raise_()
    QApplication.processEvents()
    rect = view.visualRect(view.model().index(0, 0))  # jump to the start: undo polygon, tag, box
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert w.labeling.stack.index() == 2  # the polygon was undone, the tag could not be: stop there
    assert state(w.store) == after_tag
    assert "simulated I/O error" in w.labeling.ui.banner.message()
    assert canvas_matches_store(w)
    for op in ("INSERT", "DELETE"):
        w.store.conn.execute(f"DROP TRIGGER no_tags_{op}")
    key(c, Qt.Key.Key_Z, CTRL)
    key(c, Qt.Key.Key_Z, CTRL)
    assert state(w.store) == start
    for expected in (after_box, after_tag, end):
        key(c, Qt.Key.Key_Y, CTRL)
        assert state(w.store) == expected
