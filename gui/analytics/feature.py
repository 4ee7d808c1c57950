"""The Analytics feature: the "Analytics" dock (bottom area, opened from View > Analytics).

``AnalyticsFeature(session, host, bridge)`` re-runs ``jobs.analytics_job`` on the bridge's ``tasks``
lane when the dock is shown (after edits), a filter (split, class) or k changes
(debounced), or on Refresh; a newer request cancels the older one. Clicking an image of the selected points
asks the session for it (``request_image``). "Apply to training" writes the suggested Faster R-CNN
anchors into the project's Train settings through the store (``jobs.apply_anchors``) and tells the
session (``notify_meta``), so the Train panel re-reads them.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer

from engine.project.store import Store, StoreError
from gui.analytics.jobs import SETTINGS_KEY, analytics_job, apply_anchors, current_anchors, train_settings
from gui.analytics.panel import AnalyticsPanel
from gui.bridge import EngineBridge, JobHandle
from gui.session import Session
from gui.widgets.docks import Area, DockHost

TASKS_LANE = "tasks"
DEBOUNCE_MS = 250
DOCK_HEIGHT = 560
DOCK_WIDTH_SHARE = 0.7  # of the window, beside Plots


class AnalyticsFeature(QObject):
    def __init__(self, session: Session, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.host, self.bridge = session, host, bridge
        self.panel = AnalyticsPanel()
        self.dock = host.add_dock("Analytics", self.panel, Area.BottomDockWidgetArea, tab=False)
        self.dock.hide()
        self.dock.visibilityChanged.connect(self._on_visibility)
        self.handle: JobHandle | None = None
        self.stale = True
        self._sized = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self.panel.refresh_requested.connect(self._timer.start)
        self.panel.refresh_button.clicked.connect(self.refresh)
        self.panel.image_activated.connect(self._on_image_activated)
        self.panel.apply_requested.connect(self.apply_to_training)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.store_changed.connect(self._on_edited)  # an import
        if session.undo_stack is not None:  # an edit, undo or redo (showing an image is none)
            session.undo_stack.indexChanged.connect(self._on_edited)
        if session.store is not None:
            self._on_project_opened(session.store)

    def show(self) -> None:
        """Bring the Analytics dock to the front (it analyses the project if needed)."""
        self.dock.show()
        self.dock.raise_()

    # -- session ----------------------------------------------------------------------------------
    def _on_project_opened(self, store: Store) -> None:
        self.panel.set_categories([(c.id, c.name) for c in store.categories()])
        self.panel.clear("analysing…" if self.dock.isVisible() else "")
        self.stale = True
        if self.dock.isVisible():
            self.refresh()

    def _on_project_closed(self) -> None:
        self._cancel()
        self.panel.clear("open a project")

    def _on_edited(self, *_args: object) -> None:
        """Not re-run at once (a re-run would drop the selection after every edit): the panel marks its
        Refresh button, and a hidden dock re-runs when it is shown again."""
        if self.panel.result is not None and not self.stale:
            self.stale = True
            self.panel.set_stale(True)

    def _on_visibility(self, visible: bool) -> None:
        if visible and not self._sized:
            self._sized = True
            QTimer.singleShot(0, self._size_dock)
        if visible and self.stale:
            self.refresh()

    def _size_dock(self) -> None:
        """The first time it opens: tall and wide enough for the charts; the docks beside it give up width."""
        width = self.host.widget.width()
        self.host.resize_dock(self.dock, DOCK_HEIGHT, Qt.Orientation.Vertical)
        self.host.resize_dock(self.dock, int(width * DOCK_WIDTH_SHARE), Qt.Orientation.Horizontal)
        beside = [d for d in self.host.docks(Area.BottomDockWidgetArea) if d is not self.dock and d.isVisible()]
        for d in beside:
            self.host.resize_dock(d, int(width * (1 - DOCK_WIDTH_SHARE) / len(beside)), Qt.Orientation.Horizontal)

    # -- analysis ---------------------------------------------------------------------------------
    def _cancel(self) -> None:
        self._timer.stop()
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def refresh(self) -> None:
        """Re-run the analysis with the panel's filters (and the Train settings' current anchors)."""
        store = self.session.store
        if store is None:
            return
        self._cancel()
        self.stale = False
        self.panel.set_categories([(c.id, c.name) for c in store.categories()])
        config = {"project": str(store.root), **self.panel.config(), **current_anchors(store)}
        self.panel.status.setText("analysing…")
        self.handle = h = self.bridge.submit(analytics_job, config, TASKS_LANE)
        h.finished.connect(self._on_finished)
        h.failed.connect(self._on_failed)

    def _on_finished(self, result: dict) -> None:
        if self.sender() is not self.handle:
            return
        self.handle = None
        store = self.session.store
        if result.get("cancelled") or store is None:
            return
        names = {im.id: im.path for im in store.images()}
        self.panel.set_result(result, names)

    def _on_failed(self, message: str) -> None:
        if self.sender() is not self.handle:
            return
        self.handle = None
        self.panel.clear(message)

    # -- actions ----------------------------------------------------------------------------------
    def _on_image_activated(self, image_id: int) -> None:
        if self.session.image_id != image_id:
            self.session.request_image(image_id)

    def apply_to_training(self) -> bool:
        """Write the suggested Faster R-CNN anchors into the Train settings; False when there are none."""
        store, r = self.session.store, self.panel.result
        km = (r or {}).get("kmeans_anchors")
        if store is None or not km:
            return False
        fr = km["faster_rcnn"]
        try:
            saved = apply_anchors(store, fr["anchor_sizes"], fr["aspect_ratios"])
        except StoreError as e:
            self.session.show_status(f"NOT SAVED: the anchors were not written: {e}", 0)
            return False
        self.session.notify_meta(SETTINGS_KEY)
        model, backbone = saved.get("model", "faster_rcnn"), saved.get("backbone", "tiny")
        note = "" if (model, backbone) == ("faster_rcnn", "tiny") else \
            f" (they apply to faster_rcnn / tiny; the Train panel now has {model} / {backbone})"
        self.session.show_status(f"Train settings: anchor sizes {fr['anchor_sizes']}, ratios {fr['aspect_ratios']}"
                                 + note, 10000)
        self.refresh()  # "current anchors" are now these
        return True

    def settings(self) -> dict:
        store = self.session.store
        return train_settings(store) if store is not None else {}
