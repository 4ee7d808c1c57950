"""``AcceptSuggestedTags``: one undoable step that switches on the tags a tagger suggests for one image.

Provenance is recorded the way the store records every model proposal: each tag becomes a tag
suggestion (``Store.add_suggestions``, provenance ``model:<run>``, the model's score) accepted at once
(``accept_suggestions`` switches the image tag on). A pending suggestion of the same run and tag is
reused instead of adding a second one. Undo reopens them (the tags go off again, the suggestions stay
pending, as an undone accept does anywhere); redo accepts the same rows again. The command is applied
before it is pushed on the session's shared undo stack (``Session.undo_stack``), so a refused write
never shows as done; every step announces the image through ``Session.notify_tags``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from engine.project.store import Store, Suggestion
from gui.session import Session


class AcceptSuggestedTags(QUndoCommand):
    def __init__(self, session: Session, image_id: int, provenance: str, scores: dict[int, float],
                 names: dict[int, str]) -> None:
        shown = ", ".join(names.get(t, str(t)) for t in scores)
        super().__init__(f"Accept suggested tags {shown}")
        self.session, self.image_id, self.provenance, self.scores = session, int(image_id), provenance, dict(scores)
        self.ids: list[int] = []
        self._skip_redo = False
        self.error: str | None = None

    @property
    def store(self) -> Store:
        store = self.session.store
        if store is None:
            raise RuntimeError("no project is open")
        return store

    def apply(self) -> None:
        """First application: store the suggestions (or reuse pending ones) and accept them."""
        store = self.store
        pending = {s.tag_id: int(s.id) for s in store.suggestions(self.image_id, "suggested", self.provenance)
                   if s.tag_id in self.scores and s.id is not None}
        new = [Suggestion(self.image_id, self.provenance, float(v), tag_id=int(t))
               for t, v in self.scores.items() if t not in pending]
        self.ids = list(pending.values()) + store.add_suggestions(self.image_id, new)
        store.accept_suggestions(self.ids)

    def push(self) -> bool:
        """Apply, then put it on the shared undo stack; False (nothing on the stack) when the store refused."""
        try:
            self.apply()
        except Exception as e:  # the store rolled back: keep the command off the stack
            self.error = str(e)
            return False
        stack = self.session.undo_stack
        if stack is not None:
            self._skip_redo = True
            stack.push(self)
        self.session.notify_tags({self.image_id})
        return True

    def redo(self) -> None:
        if self._skip_redo:  # the push: already applied
            self._skip_redo = False
            return
        self._step(lambda: self.store.accept_suggestions(self.ids), "Redo")

    def undo(self) -> None:
        self._step(lambda: self.store.reopen_suggestions(self.ids), "Undo")

    def _step(self, action: Callable[[], object], what: str) -> None:
        try:
            action()
        except Exception as e:  # the store rolled back: say so, the tags panel shows what is saved
            self.session.show_status(f"{what} {self.text()} failed: {e}", 0)
        self.session.notify_tags({self.image_id})
        if self.session.image_id != self.image_id:
            self.session.request_image(self.image_id)
