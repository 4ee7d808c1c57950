"""``ReviewKeys``: the review keys and the chip click on the canvas, as an event filter (no window shortcuts).

Enter accepts the current suggestion, Shift+Enter every shown one at or above the threshold, Del or
Backspace rejects the current one; a left click on a suggestion's score chip accepts it. They never take a
key from labeling: a tool gets Enter/Backspace first (closing a polygon, deleting its last or the active
vertex), Del/Backspace stay labeling's while shapes are selected, and with no suggestion on the image every
key goes on untouched. For Del the filter accepts the ``ShortcutOverride``, so the window-wide "Delete
selected shapes" action does not fire instead. The filter sits on the canvas (it has the focus) and on its
viewport (where the test driver and the benches send their events).
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent

from gui.assist.overlay import SuggestionLayer
from gui.canvas.view import CanvasView

ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
REJECT = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)


class ReviewTarget(Protocol):
    layer: SuggestionLayer

    def has_current(self) -> bool: ...
    def accept_current(self) -> None: ...
    def accept_above(self) -> None: ...
    def reject_current(self) -> None: ...
    def accept_ids(self, ids: list[int]) -> None: ...


class ReviewKeys(QObject):
    def __init__(self, canvas: CanvasView, target: ReviewTarget) -> None:
        super().__init__(canvas)
        self.canvas, self.target = canvas, target
        self._swallow_release = False
        self._viewport = canvas.viewport()
        canvas.installEventFilter(self)
        self._viewport.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        t = event.type()
        if t in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and isinstance(event, QKeyEvent):
            return self._key(event, t == QEvent.Type.ShortcutOverride)
        if t == QEvent.Type.MouseButtonPress and obj is self._viewport and isinstance(event, QMouseEvent):
            return self._press(event)
        if t == QEvent.Type.MouseButtonRelease and self._swallow_release and obj is self._viewport:
            self._swallow_release = False
            return True
        return False

    def _key(self, event: QKeyEvent, override: bool) -> bool:
        key, mods = event.key(), event.modifiers()
        shift = mods == Qt.KeyboardModifier.ShiftModifier
        if key not in ENTER + REJECT or not (mods == Qt.KeyboardModifier.NoModifier or (shift and key in ENTER)):
            return False
        if not self.target.has_current():
            return False
        if key in REJECT and self.canvas.scene().selectedItems():
            return False  # labeling's: delete the selected shapes (or the active vertex)
        if override:
            event.accept()  # the key comes to the canvas as a key press, not to a window shortcut
            return True
        tool = self.canvas.tool
        if key != Qt.Key.Key_Delete and tool is not None and tool.key_press(event):
            return True  # a tool's own use of the key (close the polygon, drop a vertex)
        if key in REJECT:
            self.target.reject_current()
        elif shift:
            self.target.accept_above()
        else:
            self.target.accept_current()
        return True

    def _press(self, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False
        sid = self.target.layer.chip_at(event.position(), self.canvas.viewportTransform())
        if sid is None:
            return False
        self._swallow_release = True
        self.target.accept_ids([sid])
        return True
