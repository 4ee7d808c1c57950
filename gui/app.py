"""QApplication and ``main``: ``anchorlab [PROJECT]`` opens the main window (demo project by default)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from engine.data.demo import default_demo_dir, ensure_demo
from engine.project.store import is_project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="anchorlab", description="Open the AnchorLab app on a project.")
    parser.add_argument("project", nargs="?", type=Path, help=f"project folder (default: demo at {default_demo_dir()})")
    args = parser.parse_args(argv)
    project = args.project
    if project is None:
        if not is_project(default_demo_dir()):
            print(f"Creating the demo project in {default_demo_dir()} (first start, a few seconds)...", flush=True)
        project = ensure_demo()
    elif not is_project(project):
        print(f"error: {project} is not an AnchorLab project (create one with 'anchorlab new {project}')",
              file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("AnchorLab")
    app.setOrganizationName("AnchorLab")
    from gui.canvas.image_loader import collect_garbage_on_gui_thread
    from gui.main_window import MainWindow

    collect_garbage_on_gui_thread()  # docs/adr/0004: never let a worker thread free Qt objects

    window = MainWindow(project)
    window.show()
    _close_on_sigterm(window)
    return app.exec()


def _close_on_sigterm(window: QWidget) -> None:
    """SIGTERM (logout, `kill`) closes the window the normal way: settings saved, jobs stopped.

    Python runs signal handlers only between bytecodes, so a timer wakes the interpreter up.
    """
    timer = QTimer(window)
    timer.timeout.connect(_noop)
    timer.start(200)
    signal.signal(signal.SIGTERM, lambda *_: window.close())


def _noop() -> None:
    pass
