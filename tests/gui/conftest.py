"""GUI test fixtures."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _gc_on_gui_thread() -> Iterator[None]:
    """No automatic GC during a GUI test: a worker thread must never free Qt objects (docs/adr/0004).

    Garbage is collected on the main thread when the test ends.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture()
def window(qtbot, demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    """The real main window on a writable copy of the small demo project, shown and focused."""
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.canvas.setFocus()
    return w
