"""SQLite schema of a project and its forward migrations.

``MIGRATIONS[v]`` upgrades a database at version ``v`` to ``v + 1``. A new database runs them all,
so the newest schema is always the one the migrations build.
"""

from __future__ import annotations

import sqlite3

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

MIGRATIONS: dict[int, str] = {0: V1, 1: V2, 2: V3}
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
            for stmt in MIGRATIONS[v].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(target),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise
    return target
