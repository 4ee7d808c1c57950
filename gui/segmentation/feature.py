"""The Segmentation feature: mounts ``SegmentationDock`` as the "Segmentation" dock.

``SegmentationFeature(session, canvas, host, bridge)``: the dock follows the session's project and image,
draws its layers in the canvas scene, computes only while it is on screen, and refreshes its run list
when a training run finishes (the bridge's broadcast) or the store changes.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from engine.events import Event, RunFinished
from engine.project.store import Store
from gui.bridge import EngineBridge
from gui.canvas.view import CanvasView
from gui.segmentation.dock import SegmentationDock
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled

TITLE = "Segmentation"


class SegmentationFeature(QObject):
    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session = session
        self.panel = SegmentationDock(session, bridge, host.widget)
        self.panel.connect_canvas(canvas)
        first = next(iter(host.docks(Area.RightDockWidgetArea)), None)
        self.dock = host.add_dock(TITLE, scrolled(self.panel), hidden=True)
        if first is not None:
            first.raise_()
        self.dock.visibilityChanged.connect(self._on_visibility)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_changed.connect(self._on_image_changed)
        session.store_changed.connect(self._on_store_changed)
        bridge.broadcast.connect(self._on_events)
        if session.store is not None:
            self._on_project_opened(session.store)

    def _on_visibility(self, visible: bool) -> None:
        self.panel.set_active(visible and self.dock.isVisible())

    def _on_project_opened(self, _store: Store) -> None:
        self.panel.refresh_runs()

    def _on_project_closed(self) -> None:
        self.panel.on_project_closed()

    def _on_image_changed(self, image_id: int | None) -> None:
        self.panel.on_image_changed(image_id)

    def _on_store_changed(self) -> None:
        self.panel.refresh_runs()

    def _on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.panel.refresh_runs()
