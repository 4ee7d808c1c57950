"""Issue 12 (folders, add-images, desktop entry) and issue 20 items 7-8 (a locked project refuses an edit at
once; an image whose header claims 60,000 x 60,000 px is reported and skipped, the canvas and the selection
agree), through the entry points a user uses."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine.project.store import DB_NAME, Store, is_project
from gui.canvas.testing import drag, key
from gui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


def huge_png(path: Path, w: int = 60000, h: int = 60000) -> None:
    """A tiny PNG file whose header claims ``w`` x ``h`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def _images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(folder / f"img{i}.png")
    return folder


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from gui.entry import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=120)


def test_add_images_cli_with_split_recursive_and_a_huge_header(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    Store.create(proj).close()
    data = _images(tmp_path / "imgs")
    _images(data / "sub", 2)
    huge_png(data / "huge.png")
    r = _cli("add-images", "--project", str(proj), str(data), "--split", "val")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["added"] == 3 and out["unreadable"] == 1 and "huge.png" in out["problems"][0]
    r = _cli("add-images", "--project", str(proj), str(data), "--recursive")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["added"] == 2 and out["skipped"] == 3
    with Store(proj) as s:
        splits = sorted(i.split for i in s.images())
    assert splits == ["train", "train", "val", "val", "val"]
    r = _cli("add-images", "--project", str(tmp_path / "nope"), str(data))
    assert r.returncode != 0 and "error:" in r.stderr and "not an AnchorLab project" in r.stderr


def test_desktop_entry_prints_and_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from gui.entry import main
    assert main(["desktop-entry"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[Desktop Entry]") and "Exec=" in text and "Icon=" in text and "Type=Application" in text
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert main(["desktop-entry", "--install"]) == 0
    installed = (tmp_path / "share" / "applications" / "anchorlab.desktop").read_text()
    assert "Icon=anchorlab" in installed
    assert (tmp_path / "share" / "icons" / "hicolor" / "scalable" / "apps" / "anchorlab.svg").is_file()


@pytest.mark.parametrize("where", ["here", "sibling"])
def test_opening_a_plain_folder_offers_a_project_and_adds_its_images(
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from PySide6.QtWidgets import QApplication

    import gui.app as app_mod
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "s.ini"))
    monkeypatch.setattr(QApplication, "exec", lambda *a: 0)
    folder = _images(tmp_path / "photos")
    asked = []

    def ask(f: Path, sibling: Path) -> Path:
        asked.append((f, sibling))
        return f if where == "here" else sibling

    assert app_mod.main([str(folder)], ask=ask) == 0
    w = app_mod.main.window
    qtbot.addWidget(w)
    root = folder if where == "here" else tmp_path / "photos-anchorlab"
    assert asked == [(folder.resolve(), (tmp_path / "photos-anchorlab").resolve())] and is_project(root)
    qtbot.waitUntil(lambda: w.images.model.total() == 3, timeout=20000)
    assert not w.windowIcon().isNull()
    w.close()


def test_cancelling_the_folder_question_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gui.app as app_mod
    folder = _images(tmp_path / "photos")
    assert app_mod.main([str(folder)], ask=lambda f, s: None) == 1
    assert not is_project(folder) and not (tmp_path / "photos-anchorlab").exists()


def test_a_huge_header_in_the_gui_is_skipped_and_canvas_and_selection_agree(window: MainWindow, qtbot,
                                                                            tmp_path: Path) -> None:
    w = window
    data = _images(tmp_path / "more", 2)
    huge_png(data / "zz_huge.png")
    adder = w.images_feature.add_folder(str(data))
    with qtbot.waitSignal(adder.finished, timeout=30000) as sig:
        pass
    assert sig.args[0]["added"] == 2 and sig.args[0]["unreadable"] == 1  # the batch is not dropped
    # an image row whose file claims 60,000^2 (added by another tool): selecting it shows a message,
    # the session follows the selection, and nothing can be drawn on it
    huge_png(w.store.root / "bomb.png")
    bomb = w.store.add_image("bomb.png", 60000, 60000)
    w.images.reload(w.store)
    w.images.select_image(bomb)
    assert w.image_id == bomb and w.images.current_image() == bomb
    assert "Cannot show" in w.canvas.message() and not w.annotations.items
    before = len(w.store.annotations(bomb))
    key(w.canvas, Qt.Key.Key_R)
    drag(w.canvas, [(5, 5), (60, 40)])
    assert len(w.store.annotations(bomb)) == before == 0


def test_a_locked_project_refuses_an_edit_at_once_and_says_so(window: MainWindow, qtbot) -> None:
    w, c = window, window.canvas
    before = len(w.store.annotations(w.image_id))
    other = sqlite3.connect(w.store.root / DB_NAME, isolation_level=None, timeout=5)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        done = threading.Event()
        key(c, Qt.Key.Key_R)
        drag(c, [(3, 3), (40, 30)])
        done.set()
        assert "locked by another program" in w.labeling.ui.banner.label.text()
        assert len(w.store.annotations(w.image_id)) == before
        assert not w.labeling.stack.canUndo()
    finally:
        other.execute("ROLLBACK")
        other.close()
    drag(c, [(3, 3), (40, 30)])
    assert len(w.store.annotations(w.image_id)) == before + 1
