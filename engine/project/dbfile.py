"""Opening a project's SQLite file safely: refuse what is not a healthy AnchorLab database, never write into it.

``open_database`` checks, before anything is written (WAL mode and migrations write): that the file is
not empty, starts with the SQLite header, passes ``PRAGMA quick_check``, holds AnchorLab's ``meta``
table and a schema version this AnchorLab can use. Every refusal is a ``ProjectOpenError`` with one
line naming the file and the reason (the CLI prints it, the GUI shows it in a dialog). A database that
``create`` made and could not finish (disk full) is removed again, so no 0-byte project is left behind.
``describe_write_error`` turns SQLite's result codes into the real cause (``No space left on device``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

from engine.project.schema import SchemaVersionError, migrate

SQLITE_HEADER = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")


class StoreError(RuntimeError):
    """A store operation failed; nothing was written."""


class ProjectOpenError(StoreError):
    """The project database cannot be used (empty, not a project, damaged, or from a newer AnchorLab).

    Nothing was written to it. ``str(e)`` is one line for the user; ``path`` is the database file.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot open project database {path}: {reason}")
        self.path = path
        self.reason = reason


def _check_file(db: Path) -> None:
    """Refuse an empty file or one that is not SQLite, by reading its first bytes only."""
    try:
        with open(db, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise ProjectOpenError(db, f"cannot read it ({e.strerror or e})") from e
    if not head:
        wal = db.with_name(db.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            return  # a brand-new database whose first pages are still in the WAL
        raise ProjectOpenError(db, "the file is empty (0 bytes), not an AnchorLab project; "
                                   "restore it from a backup or remove it")
    if head != SQLITE_HEADER:
        raise ProjectOpenError(db, "not an AnchorLab project database (the file is not SQLite)")


def _check_database(conn: sqlite3.Connection, db: Path, create: bool) -> None:
    """Read-only health checks of an existing file: quick_check, AnchorLab's tables, schema version."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise ProjectOpenError(db, f"the database is damaged ({e}); restore it from a backup") from e
    problems = [str(r[0]) for r in rows if r and r[0] != "ok"]
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ProjectOpenError(db, f"the database is damaged ({problems[0][:120]}{more}); "
                                   "restore it from a backup; AnchorLab will not write into it")
    if "meta" not in tables and (tables or not create):
        raise ProjectOpenError(db, "an SQLite file, but not an AnchorLab project (no 'meta' table)")
    try:
        migrate_check(conn)
    except SchemaVersionError as e:
        raise ProjectOpenError(db, str(e)) from e


def migrate_check(conn: sqlite3.Connection) -> None:
    """Raise SchemaVersionError for a version that is not a number or newer than this AnchorLab."""
    from engine.project.schema import SCHEMA_VERSION, version_of

    v = version_of(conn)
    if v > SCHEMA_VERSION:
        raise SchemaVersionError(f"project schema v{v} is newer than this AnchorLab (v{SCHEMA_VERSION}); "
                                 "update AnchorLab to open it")


def open_database(db: Path, create: bool, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to ``db`` (WAL, foreign keys, migrated), or ProjectOpenError / StoreError."""
    existed = db.exists()
    if not existed and not create:
        raise StoreError(f"no AnchorLab project at {db.parent} (missing {db.name})")
    if existed:
        _check_file(db)
    made_dir = not db.parent.exists()
    conn: sqlite3.Connection | None = None
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db, isolation_level=None, timeout=timeout)
        if existed:
            _check_database(conn, db, create)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
        return conn
    except BaseException as e:
        if conn is not None:
            conn.close()
        if not existed:  # never leave a half-made (0-byte) project behind
            _remove_new(db, made_dir)
        if isinstance(e, SchemaVersionError):
            raise ProjectOpenError(db, str(e)) from e
        if isinstance(e, sqlite3.Error):
            raise write_error(e, db, "cannot create" if not existed else "cannot open") from e
        if isinstance(e, OSError):
            raise StoreError(f"cannot create project database {db}: {e.strerror or e}") from e
        raise


def _remove_new(db: Path, made_dir: bool) -> None:
    for p in (db, *(db.with_name(db.name + s) for s in SIDE_FILES)):
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)
    if made_dir:
        with contextlib.suppress(OSError):
            db.parent.rmdir()


class DiskFullError(StoreError):
    """A write failed for lack of space (or an I/O error): nothing was saved, and the next write would fail too."""


class ProjectLockedError(StoreError):
    """Another program holds the project's write lock: nothing was saved, and the next write would wait too."""


def write_error(e: sqlite3.Error, db: Path, what: str = "write failed") -> StoreError:
    """The StoreError to raise for a failed write: ``DiskFullError`` for a full disk or an I/O error,
    ``ProjectLockedError`` when another program holds the lock."""
    name = getattr(e, "sqlite_errorname", "") or ""
    cls = DiskFullError if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR") else \
        ProjectLockedError if name in ("SQLITE_BUSY", "SQLITE_LOCKED") else StoreError
    return cls(describe_write_error(e, db, what))


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def describe_write_error(e: sqlite3.Error, db: Path, what: str = "write failed") -> str:
    """One line with the real cause of a failed write (SQLite's result code), naming the file."""
    name = getattr(e, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and _disk_full(db.parent)):
        return f"No space left on device: {db} ({what}; nothing was saved)"
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error writing {db} ({what}; nothing was saved; is the disk full or failing?)"
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return f"the project database {db} is damaged ({e}); nothing was saved"
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return f"the project is locked by another program ({db}); nothing was saved"
    if name == "SQLITE_READONLY":
        return f"the project database {db} is read-only; nothing was saved"
    return f"{what}, nothing saved: {e}"


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` (slow: reads every page and index); [] when the database is healthy."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as e:
        return [str(e)]
    return [str(r[0]) for r in rows if r and r[0] != "ok"]


def attributes_json(attributes: dict) -> str:
    """Attributes as strict JSON: NaN/Infinity are refused (they would make every JSON export invalid)."""
    try:
        return json.dumps(attributes, allow_nan=False)
    except ValueError as e:
        raise StoreError(f"attributes must be plain JSON values (no NaN or Infinity): {attributes!r:.80}") from e
    except TypeError as e:
        raise StoreError(f"attributes must be plain JSON values: {e}") from e
