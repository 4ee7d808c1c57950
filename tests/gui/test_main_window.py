"""Main window on the demo project: navigation, zoom at the cursor, pan, status bar, bad images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.project.store import Store
from gui.main_window import MainWindow


def _wheel(view, pos: QPoint, steps: int) -> None:
    ev = QWheelEvent(QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)


def test_opens_first_image_with_its_annotations(window: MainWindow, demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        first = s.images()[0]
        n = len(s.annotations(first.id))
    assert window.image_id == first.id
    assert window.canvas.image_size() == (first.width, first.height)
    assert len(window.annotations.items) == n > 0
    assert window.size_label.text() == f"{first.width} × {first.height} px"


def test_a_and_d_navigate(window: MainWindow, qtbot) -> None:
    ids = [r.id for r in window.images.model.rows]
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_D)
    QTest.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.image_id == ids[2]
    QTest.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.image_id == ids[1]
    QTest.keyClick(window.canvas, Qt.Key.Key_A)
    QTest.keyClick(window.canvas, Qt.Key.Key_A)  # clamps at the first image
    assert window.image_id == ids[0]


def test_wheel_zooms_around_cursor_and_status_shows_pixel(window: MainWindow, qtbot) -> None:
    view = window.canvas
    w, h = view.image_size()
    target = QPointF(w * 0.3, h * 0.6)
    pos = view.mapFromScene(target)
    before_zoom = view.zoom()
    _wheel(view, pos, 3)
    assert view.zoom() == pytest.approx(before_zoom * 1.2**3, rel=1e-6)
    after = view.mapToScene(pos)
    assert abs(after.x() - target.x()) < 1.5 / view.zoom() + 0.5
    assert abs(after.y() - target.y()) < 1.5 / view.zoom() + 0.5
    QTest.mouseMove(view.viewport(), pos)
    qtbot.waitUntil(lambda: window.cursor_label.text() != "")
    p = view.mapToScene(pos)
    assert window.cursor_label.text() == f"x {int(p.x())}  y {int(p.y())}"
    assert window.zoom_label.text() == f"{view.zoom() * 100:.0f} %"


def test_middle_drag_pans_and_coordinates_follow(window: MainWindow, qtbot) -> None:
    view = window.canvas
    _wheel(view, view.viewport().rect().center(), 6)  # zoom in so there is room to pan
    start = view.viewport().rect().center()
    scene_before = view.mapToScene(start)
    QTest.mousePress(view.viewport(), Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, start)
    end = start + QPoint(-120, -80)
    QTest.mouseMove(view.viewport(), end)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, end)
    # the scene point that was under `start` is now under `end`
    moved = view.mapToScene(end)
    assert abs(moved.x() - scene_before.x()) < 2 / view.zoom() + 0.5
    assert abs(moved.y() - scene_before.y()) < 2 / view.zoom() + 0.5
    QTest.mouseMove(view.viewport(), end)
    p = view.mapToScene(end)
    assert window.cursor_label.text() == f"x {int(p.x())}  y {int(p.y())}"


def test_fit_key_restores_whole_image(window: MainWindow) -> None:
    view = window.canvas
    _wheel(view, view.viewport().rect().center(), 5)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_F)
    w, h = view.image_size()
    rect = view.mapToScene(view.viewport().rect()).boundingRect()
    assert rect.width() >= w - 1 and rect.height() >= h - 1
    assert rect.width() <= w * 1.6 or rect.height() <= h * 1.6


def test_unreadable_image_shows_message_not_crash(window: MainWindow, demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        im = s.images()[3]
    (demo_copy / im.path).write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    window.images.select_image(im.id)
    assert "Cannot show this image" in window.canvas.message()
    assert im.path.rsplit("/", 1)[-1] in window.canvas.message()
    window.images.step(1)  # and the app keeps working
    assert window.canvas.image_size()[0] > 0


def test_geometry_and_recent_projects_are_remembered(qtbot, demo_copy: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "s.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.resize(700, 500)
    w.show()
    qtbot.waitExposed(w)
    w.close()
    w2 = MainWindow(demo_copy)
    qtbot.addWidget(w2)
    assert (w2.width(), w2.height()) == (700, 500)
    from gui.widgets.settings import recent_projects

    assert recent_projects()[0] == str(demo_copy.resolve())
