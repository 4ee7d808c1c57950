"""The Images feature: the image list dock, A/D stepping, adding a folder, and showing the chosen image.

It puts the chosen image on the canvas (decoded off the GUI thread by ``ImageLoader``) and then tells
the session (``set_image``), so every feature that follows ``image_changed`` finds it on the canvas.
It answers ``image_requested`` by selecting the image (clearing a filter that hides it) and keeps the
list's object counts in step with ``annotations_changed``.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt

from engine.project.store import Store
from gui.bridge import EngineBridge
from gui.canvas.image_loader import ImageLoader
from gui.canvas.view import CanvasView
from gui.images.folder import FolderAdder, add_images_from_folder
from gui.images.panel import ImageListPanel
from gui.session import Session
from gui.widgets.docks import DockHost


class ImagesFeature(QObject):
    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.canvas, self.host, self.bridge = session, canvas, host, bridge
        self.loader = ImageLoader.of(canvas)
        self.panel = ImageListPanel(host.widget)
        self.dock = host.add_dock("Images", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea, tab=False)
        self.panel.image_selected.connect(self._on_image_selected)
        host.action("&Add images from folder…", self.add_folder, menu="&File")
        host.action("&Previous image", lambda: self.panel.step(-1), "A", menu="&View")
        host.action("&Next image", lambda: self.panel.step(1), "D", menu="&View")
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_requested.connect(self.panel.select_image)
        session.annotations_changed.connect(self._on_annotations_changed)
        session.tags_changed.connect(self._on_tags_changed)
        session.store_changed.connect(self._on_store_changed)

    def add_folder(self, folder: str | None = None) -> FolderAdder | None:
        return add_images_from_folder(self.host.widget, self.session, self.bridge, self.panel, folder)

    def show_first(self) -> None:
        """Select the first listed image (after a project opened)."""
        if self.panel.model.rowCount():
            self.panel.step(1)

    def _on_project_opened(self, store: Store) -> None:
        self.panel.load(store)
        self.canvas.set_image(None)

    def _on_project_closed(self) -> None:
        self.canvas.set_image(None)

    def _on_image_selected(self, image_id: int) -> None:
        store = self.session.store
        assert store is not None
        self.loader.load(image_id, store.image_path(image_id))  # decodes off the GUI thread
        self.session.set_image(image_id)

    def _on_annotations_changed(self, image_ids: set[int]) -> None:
        store = self.session.store
        if store is not None:
            for i in image_ids:
                self.panel.model.set_annotations(i, store.annotations(i))

    def _on_tags_changed(self, image_ids: set[int]) -> None:
        """A tag was toggled (or renamed/deleted): the list's tag columns and a tag filter follow at once."""
        store = self.session.store
        if store is None:
            return
        for i in image_ids:
            self.panel.refresh_image(store, i)
        self.panel.refresh_choices(store)
        if self.panel.model.filter.tag is not None:
            self.panel.reapply_filter()

    def _on_store_changed(self) -> None:
        if self.session.store is not None:
            self.panel.reload(self.session.store)
