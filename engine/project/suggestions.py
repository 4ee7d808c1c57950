"""Model suggestions in the store: pending shapes and tags a model proposed, and what the labeler did with them.

Suggestions live in their own table (schema v4, see ``engine.project.schema``), never in
``annotations``: training snapshots, exports, counts, filters and the canvas read ``annotations`` and
so see only accepted shapes. A row's ``state`` is ``suggested`` (pending), ``accepted`` (copied into
``annotations`` with provenance ``model:<run>`` and its score; ``annotation_id`` links the copy,
``edited`` records an edit-then-accept) or ``rejected`` (kept for the per-run quality counts of
``assist_stats``). A tag suggestion (``tag_id``, no geometry) is accepted by switching the image tag
on (``tag_set`` remembers whether accepting switched it, so reopening switches it off again).

``SuggestionsMixin`` is part of ``Store`` (``engine.project.store``); every write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from engine.project.dbfile import StoreError
from engine.project.shapes import Annotation, Geometry, geometry_from_json

State = Literal["suggested", "accepted", "rejected"]
STATES: tuple[str, ...] = ("suggested", "accepted", "rejected")
_COLUMNS = ("id, image_id, kind, category_id, tag_id, geometry, provenance, score, state, edited, "
            "annotation_id, created_at, decided_at")


@dataclass(frozen=True)
class Suggestion:
    """One model proposal for one image: a shape (``geometry`` + ``category_id``) or a tag (``tag_id``).

    ``provenance`` is ``model:<run id>``; ``score`` the model's confidence in [0, 1]. ``id`` is None
    until stored; ``state``, ``edited``, ``annotation_id`` and ``decided_at`` are the store's.
    """

    image_id: int
    provenance: str
    score: float | None = None
    geometry: Geometry | None = None
    category_id: int | None = None
    tag_id: int | None = None
    state: str = "suggested"
    edited: bool = False
    annotation_id: int | None = None
    id: int | None = None
    created_at: float = 0.0
    decided_at: float | None = None

    @property
    def kind(self) -> str:
        """'box' | 'polygon' | 'mask' for shapes, 'tag' for image tags."""
        return "tag" if self.geometry is None else self.geometry.kind

    def as_annotation(self, geometry: Geometry | None = None, category_id: int | None = None) -> Annotation:
        """The annotation accepting this shape makes (optionally edited); not for tag suggestions."""
        if self.geometry is None or self.category_id is None:
            raise StoreError(f"suggestion {self.id} is a tag, not a shape")
        return Annotation(self.image_id, category_id if category_id is not None else self.category_id,
                          geometry if geometry is not None else self.geometry, self.provenance, score=self.score)

    def with_(self, **changes: Any) -> Suggestion:
        return replace(self, **changes)


@dataclass(frozen=True)
class SuggestionEdit:
    """An edit-then-accept: the shape the labeler ended with and/or another category."""

    geometry: Geometry | None = None
    category_id: int | None = None


def provenance_of(run: int | str) -> str:
    """``model:<run>`` for a run id; a string that already is a provenance is kept."""
    return run if isinstance(run, str) and ":" in run else f"model:{int(run)}"


class SuggestionsMixin:
    """Suggestion methods of ``Store`` (which provides ``conn`` and ``transaction``)."""

    if TYPE_CHECKING:  # provided by Store
        conn: sqlite3.Connection

        def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def add_annotations(self, anns: Iterable[Annotation]) -> list[int]: ...

    def add_suggestions(self, image_id: int, suggestions: Iterable[Suggestion]) -> list[int]:
        """Store pending suggestions for ``image_id`` (their own ``image_id`` is replaced); returns ids."""
        now = time.time()
        ids = []
        with self.transaction() as c:
            for s in suggestions:
                if not s.provenance.startswith("model:"):
                    raise StoreError(f"a suggestion's provenance must be model:<run>, got {s.provenance!r}")
                if (s.geometry is None) == (s.tag_id is None) or (s.geometry is not None and s.category_id is None):
                    raise StoreError("a suggestion is either a shape with a category or a tag")
                geom, box = "", (None, None, None, None)
                if s.geometry is not None:
                    geom, box = json.dumps(s.geometry.to_json()), tuple(float(v) for v in s.geometry.bbox())
                cur = c.execute(
                    "INSERT INTO suggestions(image_id, kind, category_id, tag_id, geometry, x1, y1, x2, y2, "
                    "provenance, score, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (int(image_id), s.kind, s.category_id, s.tag_id, geom, *box, s.provenance,
                     None if s.score is None else float(s.score), now))
                ids.append(int(cur.lastrowid))
        return ids

    def suggestions(self, image_id: int | None = None, state: str | None = "suggested",
                    provenance: str | None = None) -> list[Suggestion]:
        """Suggestions (default: pending ones) of one image or all, optionally of one run, by id."""
        where, args = [], []
        for col, val in (("image_id", image_id), ("state", state), ("provenance", provenance)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        return self._select_suggestions(" AND ".join(where), tuple(args))

    def suggestion(self, suggestion_id: int) -> Suggestion:
        rows = self._select_suggestions("id=?", (int(suggestion_id),))
        if not rows:
            raise StoreError(f"no suggestion with id {suggestion_id}")
        return rows[0]

    def pending_suggestion_counts(self) -> dict[int, int]:
        """image id -> number of pending suggestions (images without any are absent)."""
        return dict(self.conn.execute("SELECT image_id, COUNT(*) FROM suggestions WHERE state='suggested' "
                                      "GROUP BY image_id"))

    def accept_suggestions(self, ids: Iterable[int], edited: bool = False,
                           edits: Mapping[int, SuggestionEdit] | None = None,
                           annotation_ids: Mapping[int, int] | None = None) -> list[int | None]:
        """Accept pending suggestions: shapes become annotations (provenance ``model:<run>``, score kept),
        tags switch the image tag on. Returns the new annotation id per suggestion (None for tags).

        ``edits`` gives an edited shape/category per suggestion id (it counts as edited; ``edited=True``
        marks them all). ``annotation_ids`` reuses annotation ids (redo after undo keeps ids stable).
        """
        edits, annotation_ids = edits or {}, annotation_ids or {}
        now = time.time()
        out: list[int | None] = []
        with self.transaction() as c:
            for sid in ids:
                s = self._pending(sid)
                e = edits.get(s.id) or SuggestionEdit()
                was_edited = bool(edited or e.geometry is not None or e.category_id is not None)
                ann_id, tag_set = None, 0
                if s.tag_id is not None:
                    cur = c.execute("INSERT OR IGNORE INTO image_tags(image_id, tag_id) VALUES (?, ?)",
                                    (s.image_id, s.tag_id))
                    tag_set = cur.rowcount
                else:
                    ann = s.as_annotation(e.geometry, e.category_id).with_(id=annotation_ids.get(s.id))
                    ann_id = self.add_annotations([ann])[0]
                c.execute("UPDATE suggestions SET state='accepted', edited=?, annotation_id=?, tag_set=?, "
                          "decided_at=? WHERE id=?", (int(was_edited), ann_id, tag_set, now, s.id))
                out.append(ann_id)
        return out

    def reject_suggestions(self, ids: Iterable[int]) -> None:
        """Reject pending suggestions: kept (state 'rejected') for ``assist_stats``, invisible elsewhere."""
        now = time.time()
        with self.transaction() as c:
            for sid in ids:
                s = self._pending(sid)
                c.execute("UPDATE suggestions SET state='rejected', decided_at=? WHERE id=?", (now, s.id))

    def reopen_suggestions(self, ids: Iterable[int]) -> None:
        """Undo an accept or reject: back to pending; an accepted shape's annotation is deleted, a tag
        that accepting switched on is switched off again."""
        with self.transaction() as c:
            for sid in ids:
                row = c.execute("SELECT image_id, tag_id, annotation_id, tag_set FROM suggestions WHERE id=?",
                                (int(sid),)).fetchone()
                if row is None:
                    raise StoreError(f"no suggestion with id {sid}")
                image_id, tag_id, ann_id, tag_set = row
                c.execute("UPDATE suggestions SET state='suggested', edited=0, annotation_id=NULL, tag_set=0, "
                          "decided_at=NULL WHERE id=?", (int(sid),))
                if ann_id is not None:
                    c.execute("DELETE FROM annotations WHERE id=?", (ann_id,))
                if tag_set:
                    c.execute("DELETE FROM image_tags WHERE image_id=? AND tag_id=?", (image_id, tag_id))

    def delete_suggestions(self, image_ids: Iterable[int] | None = None, provenance: str | None = None,
                           states: Iterable[str] = ("suggested",)) -> int:
        """Delete suggestions (default: pending ones) of some images (None: all) and/or one run; returns count."""
        states = tuple(states)
        bad = [s for s in states if s not in STATES]
        if bad or not states:
            raise StoreError(f"unknown suggestion state {bad[0] if bad else None!r}; expected {', '.join(STATES)}")
        q = f"DELETE FROM suggestions WHERE state IN ({', '.join('?' * len(states))})"
        args: list = list(states)
        if provenance is not None:
            q += " AND provenance=?"
            args.append(provenance)
        with self.transaction() as c:
            if image_ids is None:
                return c.execute(q, args).rowcount
            return sum(c.execute(q + " AND image_id=?", (*args, int(i))).rowcount for i in image_ids)

    def assist_stats(self, run: int | str) -> dict[str, int]:
        """Quality signal of one run's suggestions: {accepted_unchanged, edited, rejected, pending}.

        ``edited`` counts edit-then-accept and accepted shapes corrected later (their ``edited_at``).
        """
        rows = self.conn.execute(
            "SELECT s.state, s.edited OR a.edited_at IS NOT NULL, COUNT(*) FROM suggestions s "
            "LEFT JOIN annotations a ON a.id = s.annotation_id WHERE s.provenance=? GROUP BY 1, 2",
            (provenance_of(run),)).fetchall()
        out = {"accepted_unchanged": 0, "edited": 0, "rejected": 0, "pending": 0}
        for state, edited, n in rows:
            key = {"suggested": "pending", "rejected": "rejected"}.get(state) or (
                "edited" if edited else "accepted_unchanged")
            out[key] += int(n)
        return out

    def assist_runs(self) -> list[str]:
        """Provenances (``model:<run>``) that have suggestions, in order of first suggestion."""
        return [r[0] for r in self.conn.execute("SELECT provenance FROM suggestions GROUP BY provenance "
                                                "ORDER BY MIN(id)")]

    def _pending(self, suggestion_id: int) -> Suggestion:
        s = self.suggestion(suggestion_id)
        if s.state != "suggested":
            raise StoreError(f"suggestion {suggestion_id} is already {s.state}")
        return s

    def _select_suggestions(self, where: str, args: tuple) -> list[Suggestion]:
        q = f"SELECT {_COLUMNS} FROM suggestions" + (f" WHERE {where}" if where else "") + " ORDER BY id"
        return list(_rows(self.conn.execute(q, args)))


def _rows(cursor: sqlite3.Cursor) -> Iterator[Suggestion]:
    for r in cursor:
        geometry = geometry_from_json(r[2], r[5]) if r[2] != "tag" else None
        yield Suggestion(image_id=r[1], provenance=r[6], score=r[7], geometry=geometry, category_id=r[3],
                         tag_id=r[4], state=r[8], edited=bool(r[9]), annotation_id=r[10], id=r[0],
                         created_at=r[11], decided_at=r[12])
