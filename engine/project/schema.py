"""SQLite schema of a project and its forward migrations.

``MIGRATIONS[v]`` upgrades a database at version ``v`` to ``v + 1``. A new database runs them all,
so the newest schema is always the one the migrations build.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    hash TEXT NOT NULL DEFAULT '',
    split TEXT NOT NULL DEFAULT 'train',
    added_at REAL NOT NULL
);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL
);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    kind TEXT NOT NULL CHECK (kind IN ('box', 'polygon', 'mask')),
    geometry TEXT NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    provenance TEXT NOT NULL DEFAULT 'manual',
    score REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX annotations_image ON annotations(image_id);
CREATE INDEX annotations_category ON annotations(category_id);
CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
CREATE TABLE image_tags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (image_id, tag_id)
);
"""

V2 = """
ALTER TABLE annotations ADD COLUMN group_id INTEGER;
ALTER TABLE annotations ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'created',
    checkpoint TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    split TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX metrics_run ON metrics(run_id, name);
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    format TEXT NOT NULL,
    imported_at REAL NOT NULL
);
CREATE INDEX imports_digest ON imports(digest);
"""

V3 = """
ALTER TABLE annotations ADD COLUMN edited_at REAL;
CREATE INDEX images_hash ON images(hash);
CREATE INDEX imports_source ON imports(source);
"""

# Model suggestions (issue 19) live in their own table, not in ``annotations``: every reader of
# ``annotations`` (training snapshots, exports, counts, filters, the canvas, raw SQL in formats/ and
# scan.py) keeps seeing exactly the accepted shapes without a filter to forget, and tag suggestions
# (no geometry; ``annotations.kind`` cannot hold them) fit too. Accepting copies the shape into
# ``annotations`` (provenance ``model:<run>``, score) and keeps the row as 'accepted' with
# ``edited`` and a link (``annotation_id``); rejected rows stay for the per-run quality counts.
# IF NOT EXISTS: re-running v4 is harmless (tests fake older versions by editing a current database).
V4 = """
CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('box', 'polygon', 'mask', 'tag')),
    category_id INTEGER REFERENCES categories(id) ON DELETE CASCADE,
    tag_id INTEGER REFERENCES tags(id) ON DELETE CASCADE,
    geometry TEXT NOT NULL DEFAULT '',
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,
    provenance TEXT NOT NULL,
    score REAL,
    state TEXT NOT NULL DEFAULT 'suggested' CHECK (state IN ('suggested', 'accepted', 'rejected')),
    edited INTEGER NOT NULL DEFAULT 0,
    annotation_id INTEGER REFERENCES annotations(id) ON DELETE SET NULL,
    tag_set INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    decided_at REAL,
    CHECK ((kind = 'tag') = (tag_id IS NOT NULL AND category_id IS NULL)),
    CHECK (kind = 'tag' OR category_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS suggestions_image ON suggestions(image_id, state);
CREATE INDEX IF NOT EXISTS suggestions_run ON suggestions(provenance, state);
CREATE INDEX IF NOT EXISTS suggestions_annotation ON suggestions(annotation_id)
"""

# Point and line shapes (issue 12): annotations.kind's CHECK gains 'point' and 'line'. SQLite cannot
# ALTER a CHECK, and a table rebuild would, with foreign keys on, rewrite or null the references other
# tables hold (suggestions.annotation_id). Widening a CHECK leaves every stored row valid and the file
# format unchanged, so this edits the table's SQL in place (SQLite's documented writable_schema
# procedure: same transaction, schema_version bumped). Masks need no migration: cropped masks (offset +
# cropped RLE) are a new geometry JSON form and legacy full-image RLEs stay readable.
OLD_KINDS = "CHECK (kind IN ('box', 'polygon', 'mask'))"
NEW_KINDS = "CHECK (kind IN ('box', 'polygon', 'mask', 'point', 'line'))"


def _v5_point_line(conn: sqlite3.Connection) -> None:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='annotations'").fetchone()[0]
    if NEW_KINDS in sql:
        return  # already widened
    if OLD_KINDS not in sql:
        raise sqlite3.DatabaseError("annotations table has an unexpected kind CHECK; cannot add point/line")
    version = int(conn.execute("PRAGMA schema_version").fetchone()[0])
    conn.execute("PRAGMA writable_schema=ON")
    try:
        conn.execute("UPDATE sqlite_master SET sql=? WHERE type='table' AND name='annotations'",
                     (sql.replace(OLD_KINDS, NEW_KINDS),))
        conn.execute(f"PRAGMA schema_version={version + 1}")
    finally:
        conn.execute("PRAGMA writable_schema=OFF")


MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {0: V1, 1: V2, 2: V3, 3: V4, 4: _v5_point_line}
SCHEMA_VERSION = max(MIGRATIONS) + 1


class SchemaVersionError(RuntimeError):
    """The database's schema version is not one this AnchorLab can use (newer, or not a number)."""


def version_of(conn: sqlite3.Connection) -> int:
    """The schema version stored in ``meta`` (0 for an empty database); SchemaVersionError if not a number."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if not row:
        return 0
    text = str(row[0]).strip()
    if not text.isdigit():
        raise SchemaVersionError(f"project schema version {row[0]!r:.40} is not a number")
    return int(text)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Run forward migrations up to ``target`` in one transaction; returns the new version.

    Raises SchemaVersionError for a database written by a newer AnchorLab (or a non-numeric version).
    """
    current = version_of(conn)
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(f"project schema v{current} is newer than this AnchorLab (v{SCHEMA_VERSION})")
    if current >= target:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        for v in range(current, target):
            step = MIGRATIONS[v]
            if callable(step):  # a migration SQL text cannot express (e.g. widening a CHECK)
                step(conn)
                continue
            for stmt in step.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(target),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise
    return target
