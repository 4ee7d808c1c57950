"""Runs, their metrics, and the import log (duplicate detection) of a project: part of ``Store``.

``RecordsMixin`` is mixed into ``engine.project.store.Store``, which provides ``conn`` and
``transaction``; every write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.project.dbfile import StoreError

__all__ = ["RecordsMixin", "RunRecord"]

_RUN_COLUMNS = "id, name, model, config, status, checkpoint, summary, created_at"


@dataclass(frozen=True)
class RunRecord:
    """One training run as stored: its config and summary decoded from JSON, ``created_at`` in epoch
    seconds. ``checkpoint`` is the path of its best (else last) weights, empty until one is written."""

    id: int
    name: str
    model: str
    config: dict
    status: str
    checkpoint: str
    summary: dict
    created_at: float

    @classmethod
    def from_row(cls, r: tuple) -> RunRecord:
        return cls(id=int(r[0]), name=r[1], model=r[2], config=json.loads(r[3]), status=r[4], checkpoint=r[5],
                   summary=json.loads(r[6]), created_at=float(r[7]))


class RecordsMixin:
    """Run, metric and import-log methods of ``Store``."""

    if TYPE_CHECKING:  # provided by Store
        conn: sqlite3.Connection
        root: Path

        def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    # -- runs and metrics ---------------------------------------------------------------------
    def create_run(self, name: str, model: str, config: dict) -> int:
        now = time.time()
        with self.transaction() as c:
            cur = c.execute("INSERT INTO runs(name, model, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                            (name, model, json.dumps(config), now, now))
            return int(cur.lastrowid)

    def update_run(self, run_id: int, status: str | None = None, checkpoint: str | None = None,
                   summary: dict | None = None) -> None:
        with self.transaction() as c:
            for col, val in (("status", status), ("checkpoint", checkpoint),
                             ("summary", None if summary is None else json.dumps(summary))):
                if val is not None:
                    c.execute(f"UPDATE runs SET {col}=?, updated_at=? WHERE id=?", (val, time.time(), run_id))

    def runs(self) -> list[RunRecord]:
        rows = self.conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id").fetchall()
        return [RunRecord.from_row(r) for r in rows]

    def run(self, run_id: int) -> RunRecord:
        row = self.conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run_id}")
        return RunRecord.from_row(row)

    def run_checkpoint(self, run_id: int) -> Path:
        """The absolute path of run ``run_id``'s checkpoint (its best, else last, weights); StoreError when
        there is no such run or it has written none yet."""
        r = self.run(run_id)
        if not r.checkpoint:
            raise StoreError(f"run {run_id} has no checkpoint yet (status {r.status!r})")
        p = Path(r.checkpoint)
        return p if p.is_absolute() else self.root / p

    def add_metrics(self, run_id: int, rows: Iterable[tuple[int, int, str, str, float]]) -> None:
        """Append (step, epoch, split, name, value) rows."""
        with self.transaction() as c:
            c.executemany("INSERT INTO metrics(run_id, step, epoch, split, name, value) VALUES (?, ?, ?, ?, ?, ?)",
                          [(run_id, int(s), int(e), sp, n, float(v)) for s, e, sp, n, v in rows])

    def metrics(self, run_id: int) -> list[tuple[int, int, str, str, float]]:
        return self.conn.execute("SELECT step, epoch, split, name, value FROM metrics WHERE run_id=? "
                                 "ORDER BY rowid", (run_id,)).fetchall()

    # -- imports (duplicate detection) ----------------------------------------------------------
    def find_import(self, digest: str) -> str | None:
        r = self.conn.execute("SELECT source FROM imports WHERE digest=?", (digest,)).fetchone()
        return r[0] if r else None

    def record_import(self, source: str, digest: str, fmt: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO imports(source, digest, format, imported_at) VALUES (?, ?, ?, ?)",
                      (source, digest, fmt, time.time()))
