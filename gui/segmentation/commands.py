"""``AcceptMasks``: the undoable edit that stores a shown segmentation as mask annotations.

A ``QUndoCommand`` (pushed on the session's shared undo stack, so Ctrl+Z and the History view treat it like
any edit): ``apply()`` adds the masks and removes the run's earlier, never-edited masks of that image in
ONE store transaction (so accepting again after tuning the CRF replaces rather than piles up); ``revert()``
undoes both in one transaction. It writes the store before anything shows it: the dock calls ``apply()``
first and pushes the command only once the write is committed (the push's first ``redo`` then only
announces). Each step announces itself through the session (``notify_annotations_edited``), which the
window wires to the views that show annotations.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from engine.project.shapes import Annotation
from engine.project.store import Store, StoreError
from gui.session import Session


class AcceptMasks(QUndoCommand):
    """Add ``anns`` (masks of one image) and delete ``replace_ids`` in one transaction; undo reverses both."""

    def __init__(self, session: Session, image_id: int, anns: list[Annotation], replace_ids: list[int],
                 text: str = "Accept segmentation as masks") -> None:
        super().__init__(text)
        if session.store is None:
            raise StoreError("no project is open")
        self.session = session
        self.store: Store = session.store
        self.image_id = int(image_id)
        self.anns = list(anns)
        self.replace_ids = [int(i) for i in replace_ids]
        self.removed: list[Annotation] = []
        self.ids: list[int] = []
        self._announce_only = False
        self.error = ""

    def apply(self) -> None:
        with self.store.transaction():
            self.removed = self.store.delete_annotations(self.replace_ids)
            self.ids = self.store.add_annotations(self.anns)
            if any(a.id is None for a in self.anns):  # first time: keep ids and timestamps for redo
                self.anns = [self.store.annotation(i) for i in self.ids]

    def revert(self) -> None:
        with self.store.transaction():
            self.store.delete_annotations(self.ids)
            self.store.add_annotations(self.removed)

    def push_applied(self) -> None:
        """The next ``redo`` (the stack's push) only announces: ``apply`` already ran."""
        self._announce_only = True

    def redo(self) -> None:
        if self._announce_only:
            self._announce_only = False
        else:
            self._step(self.apply, "Redo")
            return
        self._announce(step=False)

    def undo(self) -> None:
        self._step(self.revert, "Undo")

    def _step(self, fn: Callable[[], None], what: str) -> None:
        if self.session.store is not self.store:
            self.error = f"{what} {self.text()}: the project was closed"
            self.session.show_status(self.error)
            return
        try:
            fn()
        except Exception as e:  # the transaction rolled back: the store is unchanged
            self.error = f"{what} {self.text()} failed: {e}"
            self.session.show_status(self.error)
            return
        self.error = ""
        self._announce(step=True)

    def _announce(self, step: bool) -> None:
        if step and self.session.image_id != self.image_id:
            self.session.request_image(self.image_id)  # show the image the undo/redo changed
        self.session.notify_annotations_edited({self.image_id})
