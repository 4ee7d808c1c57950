"""QApplication and ``main``: ``anchorlab [PROJECT]`` opens the main window (demo project by default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

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
    from gui.main_window import MainWindow

    window = MainWindow(project)
    window.show()
    return app.exec()
