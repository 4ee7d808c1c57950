"""Accept, reject, edit-then-accept: undoable store operations on suggestions, for the GUI's undo commands.

Each operation is a small object with ``apply(store)`` and ``revert(store)``; a ``QUndoCommand``
calls ``apply`` in ``redo`` and ``revert`` in ``undo`` (each is one store transaction). Accepting
turns a shape into a normal annotation with provenance ``model:<run>`` and the model's score, or
switches an image tag on; reverting reopens the suggestion (the annotation is deleted, the tag
switched off again). A re-apply after a revert reuses the annotation ids of the first apply, so
later commands that name those annotations stay valid.

``sync_suggestions`` stores an assistant's live suggestions for the image on screen without
duplicates (a suggestion the labeler already accepted or rejected is not proposed again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from engine.project.shapes import Geometry
from engine.project.store import Store, Suggestion, SuggestionEdit

SAME_BOX_PX = 0.5  # live and stored suggestions whose boxes differ less than this are the same


@dataclass
class AcceptSuggestions:
    """Accept pending suggestions, some edited (``edits``: suggestion id -> SuggestionEdit)."""

    suggestion_ids: tuple[int, ...]
    edits: dict[int, SuggestionEdit] = field(default_factory=dict)
    edited: bool = False  # count every one as edited
    annotation_ids: dict[int, int] = field(default_factory=dict)  # filled by the first apply

    def apply(self, store: Store) -> list[int | None]:
        """Accept; returns the annotation id per suggestion (None for tags)."""
        ids = store.accept_suggestions(self.suggestion_ids, self.edited, self.edits, self.annotation_ids)
        self.annotation_ids = {s: a for s, a in zip(self.suggestion_ids, ids) if a is not None}
        return ids

    def revert(self, store: Store) -> None:
        store.reopen_suggestions(self.suggestion_ids)


@dataclass
class RejectSuggestions:
    """Reject pending suggestions (kept as 'rejected' for the per-run quality counts)."""

    suggestion_ids: tuple[int, ...]

    def apply(self, store: Store) -> None:
        store.reject_suggestions(self.suggestion_ids)

    def revert(self, store: Store) -> None:
        store.reopen_suggestions(self.suggestion_ids)


def accept(suggestion_ids: Iterable[int]) -> AcceptSuggestions:
    """Accept suggestions unchanged (Enter / click)."""
    return AcceptSuggestions(tuple(int(i) for i in suggestion_ids))


def edit_then_accept(suggestion_id: int, geometry: Geometry | None = None,
                     category_id: int | None = None) -> AcceptSuggestions:
    """Accept one suggestion with the shape (and/or category) the labeler changed it to."""
    return AcceptSuggestions((int(suggestion_id),), {int(suggestion_id): SuggestionEdit(geometry, category_id)})


def accept_above(store: Store, image_id: int, threshold: float, provenance: str | None = None) -> AcceptSuggestions:
    """Accept every pending suggestion of the image (of one run, if given) scoring at least ``threshold``."""
    return accept(s.id for s in store.suggestions(image_id, provenance=provenance)
                  if s.id is not None and s.score is not None and s.score >= threshold)


def reject(suggestion_ids: Iterable[int]) -> RejectSuggestions:
    return RejectSuggestions(tuple(int(i) for i in suggestion_ids))


def same_suggestion(a: Suggestion, b: Suggestion) -> bool:
    """The same proposal: same kind and category/tag, and boxes within ``SAME_BOX_PX``."""
    if a.kind != b.kind or a.category_id != b.category_id or a.tag_id != b.tag_id:
        return False
    if a.geometry is None or b.geometry is None:
        return True
    return bool(np.abs(a.geometry.bbox() - b.geometry.bbox()).max() < SAME_BOX_PX)


def sync_suggestions(store: Store, image_id: int, live: list[Suggestion], provenance: str) -> list[Suggestion]:
    """Store the live suggestions that match no stored row of this run on the image (pending, accepted
    or rejected); returns the image's pending suggestions of the run, with their ids."""
    with store.transaction():
        known = store.suggestions(image_id, state=None, provenance=provenance)
        new = [s for s in live if s.provenance == provenance and not any(same_suggestion(s, k) for k in known)]
        store.add_suggestions(image_id, new)
    return store.suggestions(image_id, provenance=provenance)
