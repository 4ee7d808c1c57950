"""The session: the open project's store and the current image, with signals. Features take THIS.

The main window creates one ``Session`` and hands it (with the canvas and a dock host) to every
feature; no feature sees the window. Order of a project switch: ``project_closed`` (old store still
readable), the old store closes, ``project_opened(store)``, then the image list picks an image.

- ``open(path)`` / ``close()``: switch the store (``StoreError`` if the folder is no project).
- ``set_image(image_id)``: called by whoever put an image on the canvas; emits ``image_changed``.
- ``request_image(image_id)``: any feature asks to show an image (an undo on another image, a
  badly covered GT box); the image list feature answers by selecting it.
- ``annotations_changed(image_ids)``: annotations of these images changed (counts in the list).
- ``tags_changed(image_ids)``: image tags of these images changed (or a tag was renamed/deleted).
- ``store_changed``: the store changed outside the undo stack (an import): re-read everything.
- ``undo_stack`` / ``set_undo_stack(stack)``: the window's one edit history (the labeling feature owns it);
  another feature pushes its own ``QUndoCommand``s on it, and each step of such a command calls
  ``notify_annotations_edited(image_ids)`` -> ``annotations_edited``: views showing those images re-read them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine.project.store import Store

# seconds a GUI write waits for another program's lock: an edit is refused at once ("the project is locked
# by another program"), never a frozen window (jobs keep SQLite's 30 s: they run off the GUI thread)
GUI_BUSY_TIMEOUT_S = 0.25


class Session(QObject):
    project_opened = Signal(object)  # Store
    project_closed = Signal()
    image_changed = Signal(object)  # int | None
    image_requested = Signal(int)
    annotations_changed = Signal(object)  # set[int] of image ids
    tags_changed = Signal(object)  # set[int] of image ids (empty: the tag list itself changed)
    store_changed = Signal()
    meta_changed = Signal(str)  # project meta key
    tag_scores = Signal(object, object)  # image id, {tag id: (score, threshold)}
    status_message = Signal(str, int)  # text, timeout in ms (0 = until replaced)
    annotations_edited = Signal(object)  # set[int] of image ids: a command of another feature changed them

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store: Store | None = None
        self.image_id: int | None = None
        self._undo_stack: QUndoStack | None = None

    # -- project --------------------------------------------------------------------------------
    def open(self, path: str | Path) -> Store:
        """Open the project at ``path`` (raises ``StoreError`` and keeps the current one if it cannot)."""
        store = Store(path, busy_timeout=GUI_BUSY_TIMEOUT_S)
        self.close()
        self.store = store
        self.project_opened.emit(store)
        return store

    def close(self) -> None:
        if self.store is None:
            return
        self.project_closed.emit()
        self.set_image(None)
        self.store.close()
        self.store = None

    @property
    def root(self) -> Path | None:
        return self.store.root if self.store is not None else None

    # -- image ----------------------------------------------------------------------------------
    def set_image(self, image_id: int | None) -> None:
        """The image now on the canvas (None: none)."""
        self.image_id = image_id
        self.image_changed.emit(image_id)

    def request_image(self, image_id: int) -> None:
        self.image_requested.emit(int(image_id))

    # -- notifications --------------------------------------------------------------------------
    def notify_annotations(self, image_ids: set[int]) -> None:
        if image_ids:
            self.annotations_changed.emit(set(image_ids))

    def notify_tags(self, image_ids: set[int]) -> None:
        self.tags_changed.emit(set(image_ids))

    def notify_store_changed(self) -> None:
        self.store_changed.emit()

    def notify_meta(self, key: str) -> None:
        self.meta_changed.emit(key)

    def show_tag_scores(self, image_id: int | None, scores: dict[int, tuple[float, float]]) -> None:
        self.tag_scores.emit(image_id, dict(scores))

    def show_status(self, text: str, timeout_ms: int = 5000) -> None:
        self.status_message.emit(text, timeout_ms)

    # -- the shared edit history ----------------------------------------------------------------
    @property
    def undo_stack(self) -> QUndoStack | None:
        """The window's undo stack (None until the feature that owns it registers it)."""
        return self._undo_stack

    def set_undo_stack(self, stack: QUndoStack | None) -> None:
        self._undo_stack = stack

    def notify_annotations_edited(self, image_ids: set[int]) -> None:
        """A command pushed by another feature changed these images' annotations (done, undone or redone)."""
        if image_ids:
            self.annotations_edited.emit(set(image_ids))
            self.notify_annotations(image_ids)
