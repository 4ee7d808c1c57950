"""The loss-explorer feature: mounts ``LossExplorerDock`` as the "Loss explorer" dock.

``ExplorerFeature(session, host, bridge)``: the dock marks the current run's loss settings
(``marker.current_marker``: the latest run's config, else the saved Train settings) and re-reads them when
the project opens or changes (session signals), when a training run finishes (the bridge's broadcast) and
when the dock comes on screen (the Train settings may have changed meanwhile). Reading them is one small
store query; the curves are a few hundred numpy points.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from engine.events import Event, RunFinished
from engine.project.store import Store, StoreError
from gui.bridge import EngineBridge
from gui.explorer.dock import LossExplorerDock
from gui.explorer.marker import current_marker
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled

TITLE = "Loss explorer"


class ExplorerFeature(QObject):
    def __init__(self, session: Session, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session = session
        self.panel = LossExplorerDock(host.widget)
        first = next(iter(host.docks(Area.RightDockWidgetArea)), None)
        self.dock = host.add_dock(TITLE, scrolled(self.panel), hidden=True)
        if first is not None:
            first.raise_()
        self.dock.visibilityChanged.connect(self._on_visibility)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.store_changed.connect(self.refresh)
        bridge.broadcast.connect(self._on_events)
        if session.store is not None:
            self._on_project_opened(session.store)

    def refresh(self) -> None:
        """Re-read the current run's settings and mark them."""
        try:
            marker = current_marker(self.session.store)
        except StoreError:  # closed meanwhile
            marker = None
        self.panel.set_marker(marker)

    def _on_project_opened(self, _store: Store) -> None:
        self.refresh()
        self.panel.adopt_marker()

    def _on_project_closed(self) -> None:
        self.panel.set_marker(None)

    def _on_visibility(self, visible: bool) -> None:
        if visible and self.session.store is not None:
            self.refresh()

    def _on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.refresh()
