"""QApplication and ``main``: ``anchorlab [PROJECT | FOLDER]`` opens the main window (demo project by default).

A folder that is no project but holds images is offered as a new project: created in that folder or in a
sibling folder (``<name>-anchorlab``, the user chooses), and its images are added in the background.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from engine.data.demo import default_demo_dir, ensure_demo
from engine.project.scan import find_images
from engine.project.store import Store, StoreError, is_project
from resources import ICON_PNG, ICON_SVG

# ask(folder, sibling) -> the project folder chosen (folder or sibling), or None to cancel
Ask = Callable[[Path, Path], Path | None]


def sibling_project(folder: Path) -> Path:
    """Where a project for ``folder`` goes when the user keeps the image folder untouched."""
    folder = folder.resolve()
    return folder.parent / f"{folder.name}-anchorlab"


def ask_create_project(folder: Path, sibling: Path) -> Path | None:
    """A dialog: create the project in the image folder, in a sibling folder, or cancel."""
    box = QMessageBox()
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Create an AnchorLab project?")
    box.setText(f"{folder} is not an AnchorLab project.\n\nCreate one and add the images of this folder?")
    box.setInformativeText(f"'In a sibling folder' keeps the image folder untouched: the project goes to {sibling}.")
    here = box.addButton("Create here", QMessageBox.ButtonRole.AcceptRole)
    beside = box.addButton("In a sibling folder", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return folder if box.clickedButton() is here else sibling if box.clickedButton() is beside else None


def app_icon() -> QIcon:
    icon = QIcon(str(ICON_SVG))
    return icon if not icon.isNull() else QIcon(str(ICON_PNG))


def main(argv: list[str] | None = None, ask: Ask = ask_create_project) -> int:
    parser = argparse.ArgumentParser(prog="anchorlab", description="Open the AnchorLab app on a project "
                                     "(or on a folder of images, offering to make it a project).")
    parser.add_argument("project", nargs="?", type=Path, help=f"project folder (default: demo at {default_demo_dir()})")
    args = parser.parse_args(argv)
    project = args.project
    images_from: Path | None = None
    if project is None:
        if not is_project(default_demo_dir()):
            print(f"Creating the demo project in {default_demo_dir()} (first start, a few seconds)...", flush=True)
        project = ensure_demo()
    elif not is_project(project):
        if not project.is_dir() or not find_images(project):
            print(f"error: {project} is not an AnchorLab project nor a folder of images "
                  f"(create one with 'anchorlab new {project}')", file=sys.stderr)
            return 2
        images_from = project.resolve()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("AnchorLab")
    app.setOrganizationName("AnchorLab")
    app.setDesktopFileName("anchorlab")  # the taskbar matches the window to anchorlab.desktop
    app.setWindowIcon(app_icon())
    if images_from is not None:
        project = ask(images_from, sibling_project(images_from))
        if project is None:
            return 1
        try:
            if not is_project(project):
                Store.create(project).close()
        except StoreError as e:
            QMessageBox.warning(None, "Cannot create project", str(e))
            return 2
    from gui.main_window import MainWindow
    from gui.workers import collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread()  # docs/adr/0004: never let a worker thread free Qt objects

    window = MainWindow(project)
    window.setWindowIcon(app.windowIcon())
    window.show()
    if images_from is not None:
        window.images_feature.add_folder(str(images_from))
    _close_on_sigterm(window)
    main.window = window  # type: ignore[attr-defined]  # tests and scripts reach the window this way
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
