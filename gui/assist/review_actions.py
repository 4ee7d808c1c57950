"""Review actions of the Assist feature (the ``ReviewTarget`` the keys call): accept the current suggestion,
accept every one at or above the threshold, reject, accept as another category. Each is ONE
``ReviewSuggestions`` command on the session's shared undo stack."""

from __future__ import annotations

from PySide6.QtGui import QUndoStack

from engine.assist import review
from engine.project.store import Suggestion
from gui.assist.commands import Operation, ReviewSuggestions
from gui.assist.overlay import SuggestionLayer
from gui.assist.panel import AssistPanel
from gui.session import Session


class ReviewActions:
    """Mixed into ``AssistFeature`` (which has ``refresh``); uses its shown suggestions (``pending``,
    ``current``) and its panel."""

    session: Session
    panel: AssistPanel
    layer: SuggestionLayer
    pending: list[Suggestion]
    current: int | None
    _names: dict[int, str]
    stack: QUndoStack  # AssistFeature's property: the session's shared history

    def has_current(self) -> bool:
        return self.current is not None and self.session.image_id is not None and self.layer.isVisible()

    def _suggestion(self, suggestion_id: int | None) -> Suggestion | None:
        return next((s for s in self.pending if s.id == suggestion_id), None)

    def accept_current(self) -> None:
        """Enter: accept the current suggestion (with the "Accept as" category when one is chosen)."""
        s = self._suggestion(self.current)
        if s is None or s.id is None:
            self.session.show_status("No suggestion to accept")
            return
        cat = self.panel.accept_as.currentData()
        if cat is not None and s.geometry is not None and cat != s.category_id:
            self._execute(review.edit_then_accept(s.id, category_id=int(cat)),
                          f"Accept suggestion as {self._names.get(int(cat), cat)}", [s])
        else:
            self.accept_ids([s.id])

    def accept_ids(self, ids: list[int]) -> None:
        sugs = [s for s in self.pending if s.id in set(ids)]
        if sugs:
            self._execute(review.accept(s.id for s in sugs if s.id is not None),
                          "Accept suggestion" if len(sugs) == 1 else f"Accept {len(sugs)} suggestions", sugs)

    def accept_above(self) -> None:
        """Shift+Enter: accept every shown suggestion scoring at least the slider's threshold."""
        t = self.panel.accept_threshold()
        sugs = [s for s in self.pending if s.score is not None and s.score >= t]
        if not sugs:
            self.session.show_status(f"No suggestion scores {t:.2f} or more")
            return
        self._execute(review.accept(s.id for s in sugs if s.id is not None),
                      f"Accept {len(sugs)} suggestion{'s' if len(sugs) != 1 else ''} ≥ {t:.2f}", sugs)

    def reject_current(self) -> None:
        s = self._suggestion(self.current)
        if s is None or s.id is None:
            self.session.show_status("No suggestion to reject")
            return
        self._execute(review.reject([s.id]), "Reject suggestion", [s])

    def reject_all(self) -> None:
        if self.pending:
            self._execute(review.reject(s.id for s in self.pending if s.id is not None),
                          f"Reject {len(self.pending)} suggestions", list(self.pending))

    def _execute(self, op: Operation, text: str, sugs: list[Suggestion]) -> bool:
        image_id = self.session.image_id
        if image_id is None or self.session.store is None:
            return False
        cmd = ReviewSuggestions(self.session, image_id, op, text, tags=any(s.geometry is None for s in sugs),
                                on_step=self._on_reviewed)
        ok = cmd.execute(self.stack)
        if not ok:
            self.refresh()
        return ok

    def _on_reviewed(self, image_id: int) -> None:
        if image_id == self.session.image_id:
            self.refresh()
        self.refresh_stats()

    def refresh_stats(self) -> None:
        """The per-run counts: accepted unchanged / edited / rejected / pending."""
        store = self.session.store
        if store is None:
            self.panel.stats.setText("")
            return
        lines = []
        for prov in store.assist_runs():
            st = store.assist_stats(prov)
            lines.append(f"<b>{prov}</b>: {st['accepted_unchanged']} accepted unchanged · {st['edited']} edited · "
                         f"{st['rejected']} rejected · {st['pending']} pending")
        self.panel.stats.setText("<br>".join(lines) or "No suggestions yet")

    def stats(self, run: int | str) -> dict[str, int]:
        assert self.session.store is not None
        return self.session.store.assist_stats(run)
