"""The X-ray feature: the X-ray and Anchor design docks.

``XrayFeature(session, canvas, host, bridge)`` mounts ``XrayPanel`` (overlays drawn in the canvas scene)
under a model picker listing the project's runs, and ``AnchorDesignPanel``; both follow the session's
project and image. The run list refreshes when a training run finishes (the bridge's broadcast).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.events import Event, RunFinished
from engine.project.store import Store
from gui.bridge import EngineBridge
from gui.canvas.view import CanvasView
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled
from gui.xray.anchor_design import AnchorDesignPanel
from gui.xray.panel import XrayPanel

UNTRAINED = "untrained tiny model"


class XrayDock(QWidget):
    """Model picker + X-ray panel, wired to the canvas, the session and the bridge."""

    def __init__(self, session: Session, canvas: CanvasView, bridge: EngineBridge,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runs = QComboBox(self)
        self.runs.setToolTip("Which checkpoint the X-ray captures: a training run's best weights")
        self.runs.currentIndexChanged.connect(self._on_run_changed)
        refresh = QPushButton("↻", self)
        refresh.setToolTip("Reload the list of runs")
        refresh.setFixedWidth(28)
        refresh.clicked.connect(self.refresh_runs)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model:", self))
        row.addWidget(self.runs, 1)
        row.addWidget(refresh)
        self.panel = XrayPanel(bridge=bridge, parent=self)
        self.panel.connect_canvas(canvas)
        self.panel.status_message.connect(session.show_status)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.panel, 1)
        session.image_changed.connect(self._on_image_changed)
        bridge.broadcast.connect(self._on_events)

    def run_id(self) -> int | None:
        data = self.runs.currentData()
        return int(data) if data is not None else None

    def refresh_runs(self) -> None:
        store = self.session.store
        keep = self.run_id()
        self.runs.blockSignals(True)
        self.runs.clear()
        self.runs.addItem(UNTRAINED, None)
        if store is not None:
            for r in reversed(store.runs()):
                if r.checkpoint:
                    label = f"run {r.id} · {r.name or r.model} · {r.status}"
                    summary = r.summary
                    if "map50" in summary:
                        label += f" · mAP@.5 {summary['map50']:.2f}"
                    self.runs.addItem(label, r.id)
        idx = self.runs.findData(keep) if keep is not None else (1 if self.runs.count() > 1 else 0)
        self.runs.setCurrentIndex(max(0, idx))
        self.runs.blockSignals(False)
        self._sync_context()

    def _sync_context(self) -> None:
        store = self.session.store
        self.panel.set_context(str(store.root) if store is not None else None, self.session.image_id,
                               run_id=self.run_id())

    def _on_run_changed(self, _index: int) -> None:
        self._sync_context()

    def _on_image_changed(self, _image_id: int | None) -> None:
        self._sync_context()

    def _on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.refresh_runs()


class XrayFeature(QObject):
    """Keeps the X-ray and anchor-design docks on the session's project."""

    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.canvas = session, canvas
        self.xray = XrayDock(session, canvas, bridge, host.widget)
        self.anchor_design = AnchorDesignPanel(bridge=bridge, parent=host.widget)
        self.anchor_design.gt_selected.connect(self._on_gt_selected)
        first = next(iter(host.docks(Area.RightDockWidgetArea)), None)
        self.xray_dock = host.add_dock("X-ray", scrolled(self.xray))  # one tab group on the right: fits 768 px
        self.anchor_dock = host.add_dock("Anchor design", scrolled(self.anchor_design), hidden=True)
        if first is not None:
            first.raise_()
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        if session.store is not None:
            self._on_project_opened(session.store)

    def _on_project_opened(self, store: Store) -> None:
        self.xray.refresh_runs()
        self.anchor_design.set_project(str(store.root))

    def _on_project_closed(self) -> None:
        self.anchor_design.set_project(None)

    def _on_gt_selected(self, image_id: int, box: list) -> None:
        """Show a badly covered GT box: open its image and zoom onto it."""
        self.session.request_image(image_id)
        x1, y1, x2, y2 = (float(v) for v in box)
        pad = max(x2 - x1, y2 - y1, 16.0)
        self.canvas.show_rect(QRectF(x1 - pad, y1 - pad, x2 - x1 + 2 * pad, y2 - y1 + 2 * pad))
