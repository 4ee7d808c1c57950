"""``ReviewSuggestions``: one accept / reject / edit-then-accept of suggestions as ONE undoable edit.

A ``QUndoCommand`` pushed on the session's shared undo stack (Ctrl+Z and the History view treat it like
any labeling edit). It wraps an operation of ``engine.assist.review`` (``apply(store)`` / ``revert(store)``,
each one store transaction). The feature calls ``execute`` which applies first and pushes the command only
once the write is committed (the push's first ``redo`` then only announces), so a refused write never
shows as done. Each step announces itself: ``session.notify_annotations_edited`` (the annotation views
re-read the image), ``notify_tags`` for tag suggestions, and ``on_step`` (the Assist dock re-reads the
pending suggestions and the per-run counts).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.assist.review import AcceptSuggestions, RejectSuggestions
from engine.project.store import Store, StoreError
from gui.session import Session

Operation = AcceptSuggestions | RejectSuggestions


class ReviewSuggestions(QUndoCommand):
    """Apply ``op`` (suggestions of ONE image) on redo, revert it on undo."""

    def __init__(self, session: Session, image_id: int, op: Operation, text: str, tags: bool = False,
                 on_step: Callable[[int], None] | None = None) -> None:
        super().__init__(text)
        if session.store is None:
            raise StoreError("no project is open")
        self.session = session
        self.store: Store = session.store
        self.image_id = int(image_id)
        self.op = op
        self.tags = tags
        self.on_step = on_step
        self._announce_only = False
        self.error = ""

    def execute(self, stack: QUndoStack) -> bool:
        """Apply now; push on ``stack`` only if the store committed. False (and ``error``) if refused."""
        try:
            self.op.apply(self.store)
        except Exception as e:  # the transaction rolled back: nothing to undo, nothing shown as done
            self.error = f"{self.text()} was not saved: {e}"
            self.session.show_status(self.error, 0)
            return False
        self._announce_only = True
        stack.push(self)
        return True

    def redo(self) -> None:
        if self._announce_only:
            self._announce_only = False
            self._announce(step=False)
            return
        self._step(self.op.apply, "Redo")

    def undo(self) -> None:
        self._step(self.op.revert, "Undo")

    def _step(self, fn: Callable[[Store], object], what: str) -> None:
        if self.session.store is not self.store:
            self.error = f"{what} {self.text()}: the project was closed"
            self.session.show_status(self.error)
            return
        try:
            fn(self.store)
        except Exception as e:  # rolled back: the store is as before this step
            self.error = f"{what} {self.text()} failed: {e}"
            self.session.show_status(self.error, 0)
            return
        self.error = ""
        self._announce(step=True)

    def _announce(self, step: bool) -> None:
        if step and self.session.image_id != self.image_id:
            self.session.request_image(self.image_id)  # show the image the undo/redo changed
        if self.tags:
            self.session.notify_tags({self.image_id})
        self.session.notify_annotations_edited({self.image_id})
        if self.on_step is not None:
            self.on_step(self.image_id)
