"""Drive the canvas with REAL mouse and key events (QTest), in image pixel coordinates.

Used by the GUI tests, the benches and the durability child process, so all of them go through
the same event path a user's hand does: viewport event -> CanvasView -> active tool -> command.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from gui.canvas.view import CanvasView

NO_MOD = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def vp(canvas: CanvasView, x: float, y: float) -> QPoint:
    """Viewport position of image pixel coordinate (x, y)."""
    return canvas.mapFromScene(QPointF(x, y))


def scene_of(canvas: CanvasView, pos: QPoint) -> tuple[float, float]:
    """Image pixel coordinate the canvas maps a viewport position to (what the tools receive)."""
    p = canvas.viewportTransform().inverted()[0].map(QPointF(pos))
    return p.x(), p.y()


def click(canvas: CanvasView, x: float, y: float, modifiers: Qt.KeyboardModifier = NO_MOD) -> None:
    pos = vp(canvas, x, y)
    QTest.mouseMove(canvas.viewport(), pos)
    QTest.mousePress(canvas.viewport(), LEFT, modifiers, pos)
    QTest.mouseRelease(canvas.viewport(), LEFT, modifiers, pos)


def double_click(canvas: CanvasView, x: float, y: float) -> None:
    QTest.mouseDClick(canvas.viewport(), LEFT, NO_MOD, vp(canvas, x, y))


def drag(canvas: CanvasView, points: Sequence[tuple[float, float]], modifiers: Qt.KeyboardModifier = NO_MOD,
         steps: int = 4) -> None:
    """Press at the first point, move through the others (``steps`` moves per segment), release at the last."""
    vpt = canvas.viewport()
    first = vp(canvas, *points[0])
    QTest.mouseMove(vpt, first)
    QTest.mousePress(vpt, LEFT, modifiers, first)
    prev = points[0]
    for pt in points[1:]:
        for k in range(1, steps + 1):
            t = k / steps
            QTest.mouseMove(vpt, vp(canvas, prev[0] + (pt[0] - prev[0]) * t, prev[1] + (pt[1] - prev[1]) * t))
        prev = pt
    QTest.mouseRelease(vpt, LEFT, modifiers, vp(canvas, *points[-1]))


def key(canvas: CanvasView, k: Qt.Key, modifiers: Qt.KeyboardModifier = NO_MOD) -> None:
    """A key click on the canvas viewport (window shortcuts fire as for a user's key press)."""
    QTest.keyClick(canvas.viewport(), k, modifiers)
