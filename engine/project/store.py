"""The project store: one SQLite file per project, the single source of truth.

A project is a folder holding ``anchorlab.sqlite``; image paths are stored relative to it.
Every public write is one transaction (nested calls join the outer one). One ``Store`` belongs
to one thread; a job in another thread opens its own ``Store`` on the same folder (WAL lets it
read while the GUI writes).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.project.dbfile import (  # noqa: F401  (ProjectOpenError, DiskFullError: re-exported)
    DiskFullError,
    ProjectOpenError,
    StoreError,
    attributes_json,
    open_database,
    write_error,
)
from engine.project.records import RecordsMixin, RunRecord  # noqa: F401  (RunRecord: re-exported)
from engine.project.shapes import Annotation, Geometry, geometry_from_json
from engine.project.suggestions import Suggestion, SuggestionEdit, SuggestionsMixin  # noqa: F401  (re-exported)

DB_NAME = "anchorlab.sqlite"
SPLITS = ("train", "val", "test", "unassigned")
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str  # relative to the project folder, '/' separated
    width: int
    height: int
    hash: str
    split: str


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    color: str  # '#rrggbb'


@dataclass(frozen=True)
class Tag:
    id: int
    name: str


class Store(SuggestionsMixin, RecordsMixin):
    """Typed access to one project's database (model suggestions: ``SuggestionsMixin``; runs, metrics and
    the import log: ``RecordsMixin``). Use as a context manager or call ``close``."""

    def __init__(self, root: str | Path, create: bool = False, busy_timeout: float | None = None) -> None:
        """Open (or with ``create`` make) the project; ProjectOpenError for a file that is not a healthy project.

        ``busy_timeout``: seconds a write waits for another program's lock (None: SQLite connection default
        of 30 s, what jobs use). The GUI passes a short one so a locked project refuses an edit at once.
        """
        self.root = Path(root).resolve()
        self.conn = open_database(self.root / DB_NAME, create) if busy_timeout is None else \
            open_database(self.root / DB_NAME, create, timeout=busy_timeout)
        self._depth = 0

    @classmethod
    def create(cls, root: str | Path) -> Store:
        return cls(root, create=True)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit; nested uses join the outermost. Errors roll back and raise StoreError."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise write_error(e, self.root / DB_NAME, "cannot write") from e
        self._depth = 1
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as e:
            if self.conn.in_transaction:  # SQLite rolls back by itself on a full disk or an I/O error
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise write_error(e, self.root / DB_NAME) from e
            raise
        finally:
            self._depth = 0

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- images -------------------------------------------------------------------------------
    def add_images(self, rows: Iterable[tuple[str, int, int, str, str]]) -> list[int]:
        """Add (path, width, height, hash, split) rows; returns their ids."""
        now = time.time()
        ids = []
        with self.transaction() as c:
            for path, w, h, digest, split in rows:
                _check_split(split)
                cur = c.execute("INSERT INTO images(path, width, height, hash, split, added_at) "
                                "VALUES (?, ?, ?, ?, ?, ?)", (path, int(w), int(h), digest, split, now))
                ids.append(int(cur.lastrowid))
        return ids

    def add_image(self, path: str, width: int, height: int, hash: str = "", split: str = "train") -> int:
        return self.add_images([(path, width, height, hash, split)])[0]

    def images(self, split: str | None = None) -> list[ImageRecord]:
        q = "SELECT id, path, width, height, hash, split FROM images"
        rows = self.conn.execute(q + " WHERE split=? ORDER BY id" if split else q + " ORDER BY id",
                                 (split,) if split else ()).fetchall()
        return [ImageRecord(*r) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        r = self.conn.execute("SELECT id, path, width, height, hash, split FROM images WHERE id=?",
                              (image_id,)).fetchone()
        if r is None:
            raise StoreError(f"no image with id {image_id}")
        return ImageRecord(*r)

    def image_by_path(self, path: str) -> ImageRecord | None:
        r = self.conn.execute("SELECT id, path, width, height, hash, split FROM images WHERE path=?",
                              (path,)).fetchone()
        return ImageRecord(*r) if r else None

    def image_path(self, image: ImageRecord | int) -> Path:
        """Absolute path of an image on disk."""
        rec = self.image(image) if isinstance(image, int) else image
        return self.root / rec.path

    def set_split(self, image_ids: Iterable[int], split: str) -> None:
        _check_split(split)
        with self.transaction() as c:
            c.executemany("UPDATE images SET split=? WHERE id=?", [(split, int(i)) for i in image_ids])

    def delete_images(self, image_ids: Iterable[int]) -> None:
        with self.transaction() as c:
            c.executemany("DELETE FROM images WHERE id=?", [(int(i),) for i in image_ids])

    # -- categories ---------------------------------------------------------------------------
    def add_category(self, name: str, color: str | None = None) -> Category:
        name = name.strip()
        if not name:
            raise StoreError("category name must not be empty")
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM categories WHERE name=?", (name,)).fetchone():
                raise StoreError(f"category {name!r} already exists")
            n = c.execute("SELECT COUNT(*) FROM categories").fetchone()[0]
            color = color or PALETTE[n % len(PALETTE)]
            cur = c.execute("INSERT INTO categories(name, color) VALUES (?, ?)", (name, color))
            return Category(int(cur.lastrowid), name, color)

    def ensure_category(self, name: str, color: str | None = None) -> Category:
        """The category called ``name``, created if missing."""
        for cat in self.categories():
            if cat.name == name:
                return cat
        return self.add_category(name, color)

    def restore_category(self, cat: Category) -> None:
        """Re-insert a deleted category with its old id (undo of delete)."""
        with self.transaction() as c:
            c.execute("INSERT INTO categories(id, name, color) VALUES (?, ?, ?)", (cat.id, cat.name, cat.color))

    def categories(self) -> list[Category]:
        return [Category(*r) for r in self.conn.execute("SELECT id, name, color FROM categories ORDER BY id")]

    def category(self, category_id: int) -> Category:
        r = self.conn.execute("SELECT id, name, color FROM categories WHERE id=?", (category_id,)).fetchone()
        if r is None:
            raise StoreError(f"no category with id {category_id}")
        return Category(*r)

    def update_category(self, category_id: int, name: str | None = None, color: str | None = None) -> None:
        with self.transaction() as c:
            if name is not None:
                c.execute("UPDATE categories SET name=? WHERE id=?", (name.strip(), category_id))
            if color is not None:
                c.execute("UPDATE categories SET color=? WHERE id=?", (color, category_id))

    def category_usage(self, category_id: int) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM annotations WHERE category_id=?",
                                 (category_id,)).fetchone()[0]

    def delete_category(self, category_id: int) -> list[Annotation]:
        """Delete a category and its annotations; returns the deleted annotations (for undo)."""
        with self.transaction() as c:
            anns = self._select("WHERE a.category_id=?", (category_id,))
            c.execute("DELETE FROM annotations WHERE category_id=?", (category_id,))
            c.execute("DELETE FROM categories WHERE id=?", (category_id,))
        return anns

    def merge_categories(self, source_id: int, target_id: int) -> list[int]:
        """Move every annotation of ``source`` to ``target`` and delete ``source``; returns moved ids."""
        with self.transaction() as c:
            ids = [r[0] for r in c.execute("SELECT id FROM annotations WHERE category_id=?", (source_id,))]
            c.execute("UPDATE annotations SET category_id=?, edited_at=? WHERE category_id=?",
                      (target_id, time.time(), source_id))
            c.execute("UPDATE suggestions SET category_id=? WHERE category_id=?", (target_id, source_id))
            c.execute("DELETE FROM categories WHERE id=?", (source_id,))
        return ids

    # -- annotations --------------------------------------------------------------------------
    def add_annotations(self, anns: Iterable[Annotation]) -> list[int]:
        """Insert annotations (an ``id`` set on one is kept, for undo); returns ids."""
        now = time.time()
        ids = []
        with self.transaction() as c:
            for a in anns:
                x1, y1, x2, y2 = (float(v) for v in a.bbox())
                cur = c.execute(
                    "INSERT INTO annotations(id, image_id, category_id, kind, geometry, x1, y1, x2, y2, "
                    "provenance, score, group_id, attributes, created_at, updated_at, edited_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (a.id, a.image_id, a.category_id, a.kind, json.dumps(a.geometry.to_json()),
                     x1, y1, x2, y2, a.provenance, a.score, a.group_id, attributes_json(a.attributes),
                     a.created_at or now, now, a.edited_at))
                ids.append(int(cur.lastrowid))
        return ids

    def add_annotation(self, ann: Annotation) -> int:
        return self.add_annotations([ann])[0]

    def update_annotation(self, ann_id: int, geometry: Geometry | None = None,
                          category_id: int | None = None, attributes: dict | None = None) -> None:
        """An in-app correction: also sets ``edited_at``, so a re-import with replace keeps it."""
        now = time.time()
        with self.transaction() as c:
            if geometry is not None:
                x1, y1, x2, y2 = (float(v) for v in geometry.bbox())
                cur = c.execute("UPDATE annotations SET kind=?, geometry=?, x1=?, y1=?, x2=?, y2=?, "
                                "updated_at=?, edited_at=? WHERE id=?",
                                (geometry.kind, json.dumps(geometry.to_json()), x1, y1, x2, y2, now, now, ann_id))
                if cur.rowcount != 1:
                    raise StoreError(f"no annotation with id {ann_id}")
            if category_id is not None:
                c.execute("UPDATE annotations SET category_id=?, updated_at=?, edited_at=? WHERE id=?",
                          (category_id, now, now, ann_id))
            if attributes is not None:
                c.execute("UPDATE annotations SET attributes=?, edited_at=? WHERE id=?",
                          (attributes_json(attributes), now, ann_id))

    def delete_annotations(self, ann_ids: Iterable[int]) -> list[Annotation]:
        """Delete and return the deleted annotations (re-add them to undo)."""
        ids = [int(i) for i in ann_ids]
        with self.transaction() as c:
            anns = [self.annotation(i) for i in ids]
            c.executemany("DELETE FROM annotations WHERE id=?", [(i,) for i in ids])
        return anns

    def annotation(self, ann_id: int) -> Annotation:
        rows = self._select("WHERE a.id=?", (ann_id,))
        if not rows:
            raise StoreError(f"no annotation with id {ann_id}")
        return rows[0]

    def annotations(self, image_id: int | None = None) -> list[Annotation]:
        if image_id is None:
            return self._select("", ())
        return self._select("WHERE a.image_id=?", (image_id,))

    def annotation_counts(self) -> dict[int, int]:
        """image id -> number of annotations (images without any are absent)."""
        return dict(self.conn.execute("SELECT image_id, COUNT(*) FROM annotations GROUP BY image_id"))

    def boxes(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: ((N, 4) float64 xyxy bboxes, (N,) int64 category ids) of one image's annotations."""
        rows = self.conn.execute("SELECT x1, y1, x2, y2, category_id FROM annotations WHERE image_id=? "
                                 "ORDER BY id", (image_id,)).fetchall()
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        return a[:, :4], a[:, 4].astype(np.int64)

    def set_groups(self, groups: dict[int, int | None]) -> None:
        """Set ``group_id`` of annotations (ann id -> group id, None = ungrouped); an in-app edit."""
        now = time.time()
        with self.transaction() as c:
            for ann_id, g in groups.items():
                cur = c.execute("UPDATE annotations SET group_id=?, updated_at=?, edited_at=? WHERE id=?",
                                (g, now, now, int(ann_id)))
                if cur.rowcount != 1:
                    raise StoreError(f"no annotation with id {ann_id}")

    def next_group_id(self) -> int:
        r = self.conn.execute("SELECT MAX(group_id) FROM annotations").fetchone()[0]
        return int(r or 0) + 1

    def _select(self, where: str, args: tuple) -> list[Annotation]:
        rows = self.conn.execute(
            "SELECT a.id, a.image_id, a.category_id, a.kind, a.geometry, a.provenance, a.score, a.group_id, "
            f"a.attributes, a.created_at, a.updated_at, a.edited_at FROM annotations a {where} ORDER BY a.id", args)
        return [Annotation(image_id=r[1], category_id=r[2], geometry=geometry_from_json(r[3], r[4]),
                           provenance=r[5], score=r[6], group_id=r[7], attributes=json.loads(r[8]),
                           id=r[0], created_at=r[9], updated_at=r[10], edited_at=r[11]) for r in rows]

    # -- image tags ---------------------------------------------------------------------------
    def add_tag(self, name: str) -> Tag:
        with self.transaction() as c:
            r = c.execute("SELECT id FROM tags WHERE name=?", (name,)).fetchone()
            if r:
                return Tag(r[0], name)
            return Tag(int(c.execute("INSERT INTO tags(name) VALUES (?)", (name,)).lastrowid), name)

    def rename_tag(self, tag_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise StoreError("tag name must not be empty")
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM tags WHERE name=? AND id<>?", (name, tag_id)).fetchone():
                raise StoreError(f"tag {name!r} already exists")
            if c.execute("UPDATE tags SET name=? WHERE id=?", (name, tag_id)).rowcount != 1:
                raise StoreError(f"no tag with id {tag_id}")

    def delete_tag(self, tag_id: int) -> tuple[Tag, list[int]]:
        """Delete a tag from the project and every image; returns it and the images that had it (for undo)."""
        with self.transaction() as c:
            r = c.execute("SELECT id, name FROM tags WHERE id=?", (tag_id,)).fetchone()
            if r is None:
                raise StoreError(f"no tag with id {tag_id}")
            images = [i for (i,) in c.execute("SELECT image_id FROM image_tags WHERE tag_id=? ORDER BY image_id",
                                              (tag_id,))]
            c.execute("DELETE FROM tags WHERE id=?", (tag_id,))
        return Tag(*r), images

    def restore_tag(self, tag: Tag, image_ids: Iterable[int]) -> None:
        """Re-insert a deleted tag with its id and put it back on ``image_ids`` (undo of delete)."""
        with self.transaction() as c:
            c.execute("INSERT INTO tags(id, name) VALUES (?, ?)", (tag.id, tag.name))
            c.executemany("INSERT OR IGNORE INTO image_tags(image_id, tag_id) VALUES (?, ?)",
                          [(int(i), tag.id) for i in image_ids])

    def tags(self) -> list[Tag]:
        return [Tag(*r) for r in self.conn.execute("SELECT id, name FROM tags ORDER BY id")]

    def set_image_tag(self, image_id: int, tag_id: int, on: bool) -> None:
        with self.transaction() as c:
            if on:
                c.execute("INSERT OR IGNORE INTO image_tags(image_id, tag_id) VALUES (?, ?)", (image_id, tag_id))
            else:
                c.execute("DELETE FROM image_tags WHERE image_id=? AND tag_id=?", (image_id, tag_id))

    def image_tags(self, image_id: int) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT tag_id FROM image_tags WHERE image_id=?", (image_id,))}

    def all_image_tags(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for i, t in self.conn.execute("SELECT image_id, tag_id FROM image_tags"):
            out.setdefault(i, set()).add(t)
        return out


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def is_project(path: str | Path) -> bool:
    return (Path(path) / DB_NAME).exists()
