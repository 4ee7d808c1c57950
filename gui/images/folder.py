"""File > Add images from folder…: ``scan.add_folder_job`` on the bridge's task lane, progress in the
status bar, the image list reloaded when it ends."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine.events import Event, Notice, Progress
from engine.project.scan import add_folder_job
from engine.project.store import Store
from gui.bridge import EngineBridge, JobHandle
from gui.images.panel import ImageListPanel
from gui.session import Session


class FolderAdder(QObject):
    """One folder being added; ``finished(dict)`` carries the job's result ({} on failure)."""

    finished = Signal(dict)

    def __init__(self, session: Session, bridge: EngineBridge, panel: ImageListPanel, parent: QWidget) -> None:
        super().__init__(parent)
        self.session, self.bridge, self.panel, self.parent_widget = session, bridge, panel, parent
        self.store: Store | None = session.store
        self.handle: JobHandle | None = None
        self.result: dict = {}
        self.message = ""

    def start(self, folder: str | Path, **options: object) -> JobHandle:
        assert self.store is not None
        config = {"project": str(self.store.root), "folder": str(folder), **options}
        self.handle = h = self.bridge.submit(add_folder_job, config, lane="tasks")
        h.progress.connect(self._on_progress)
        h.event.connect(self._on_event)
        h.finished.connect(self._on_finished)
        h.failed.connect(self._on_failed)
        self.session.show_status(f"Adding images from {folder}…", 0)
        return h

    def _on_progress(self, e: Event) -> None:
        if isinstance(e, Progress):
            self.session.show_status(f"Adding images… {e.done:,} / {e.total:,}  {e.message}", 0)

    def _on_event(self, e: Event) -> None:
        if isinstance(e, Notice):
            self.message = e.message

    def _reload(self) -> None:
        if self.session.store is self.store and self.store is not None:
            self.panel.reload(self.store)

    def _on_finished(self, result: dict) -> None:
        self.result = result
        self._reload()
        text = f"Added {result.get('added', 0):,} images ({result.get('skipped', 0):,} already there)"
        self.session.show_status(f"{text}. {self.message}".strip(), 15000)
        self.finished.emit(result)
        self.deleteLater()

    def _on_failed(self, message: str) -> None:
        self.message = message
        self._reload()
        self.session.show_status("", 0)
        QMessageBox.warning(self.parent_widget, "Add images", f"Adding images failed: {message}")
        self.finished.emit({})
        self.deleteLater()


def add_images_from_folder(parent: QWidget, session: Session, bridge: EngineBridge, panel: ImageListPanel,
                           folder: str | Path | None = None) -> FolderAdder | None:
    """Ask for a folder (unless given) and add its images to the open project in the background."""
    store = session.store
    if store is None:
        return None
    if folder is None:
        folder = QFileDialog.getExistingDirectory(parent, "Add images from folder", str(store.root))
        if not folder:
            return None
    adder = FolderAdder(session, bridge, panel, parent)
    adder.start(folder)
    return adder
