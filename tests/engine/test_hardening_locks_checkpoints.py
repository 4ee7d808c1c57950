"""Issue 20 items 7 and 14 through the CLI: a locked project fails an import fast with one line and
nothing changed; checkpoint files that are not plain AnchorLab weights are refused with one line."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import time
from pathlib import Path

import torch

from engine.cli import main

PEERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "peers" / "labelme" / "bbox_detection"


def _rows(project: Path) -> list:
    with sqlite3.connect(project / "anchorlab.sqlite") as c:
        return c.execute("SELECT id, image_id, category_id, geometry FROM annotations ORDER BY id").fetchall()


def test_import_into_a_locked_project_fails_fast_with_one_line(demo_copy, tmp_path, capsys) -> None:
    src = tmp_path / "labelme"
    shutil.copytree(PEERS, src)
    before = _rows(demo_copy)
    other = sqlite3.connect(demo_copy / "anchorlab.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        t0 = time.monotonic()
        rc = main(["import", "--format", "labelme", str(src), "--project", str(demo_copy)])
        waited = time.monotonic() - t0
    finally:
        other.execute("ROLLBACK")
        other.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err[-1].startswith("error: ") and "locked by another program" in err[-1]
    assert sum(1 for line in err if line.startswith("error: ")) == 1
    assert waited < 25  # not 30 s per file (bounded loosely: no wall-clock precision claimed)
    assert _rows(demo_copy) == before


def _ckpt_error(project: Path, path: Path, capsys) -> str:
    assert main(["eval", "--project", str(project), "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error:")]) == 1
    return err[-1]


class Payload:
    def __reduce__(self):  # a pickle that would run code when loaded
        return (os.system, ("echo pwned > /tmp/anchorlab-pwned",))


def test_bad_checkpoints_are_refused_in_one_line(demo_copy, tmp_path, capsys) -> None:
    code = tmp_path / "code.pt"
    torch.save({"model": Payload()}, code)
    msg = _ckpt_error(demo_copy, code, capsys)
    assert "not a plain weights file" in msg and "AnchorLab never unpickles code" in msg
    assert "weights_only=False" not in msg and not Path("/tmp/anchorlab-pwned").exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Payload()))
    assert "AnchorLab never unpickles code" in _ckpt_error(demo_copy, raw, capsys)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in _ckpt_error(demo_copy, empty, capsys)
    text = tmp_path / "notes.pt"
    text.write_text("just some notes\n")
    assert "not a torch weights file" in _ckpt_error(demo_copy, text, capsys)
    bare = tmp_path / "bare.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bare)
    assert "is not an AnchorLab checkpoint (a bare state dict? use it with --weights)" in \
        _ckpt_error(demo_copy, bare, capsys)
    nospec = tmp_path / "nospec.pt"
    torch.save({"format": "anchorlab-checkpoint/2", "task": "faster_rcnn", "model": {}, "label_map": {}}, nospec)
    assert "has no 'spec': it cannot rebuild a model" in _ckpt_error(demo_copy, nospec, capsys)
