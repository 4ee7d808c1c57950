"""The X-ray and Anchor design docks in the main window.

``install_xray(window)`` mounts ``XrayPanel`` (overlays drawn in the canvas scene) under a model
picker listing the project's runs, and ``AnchorDesignPanel``; both follow the open project and the
image shown on the canvas. The run list refreshes when a training run finishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.events import Event, RunFinished
from gui.panels.anchor_design import AnchorDesignPanel
from gui.panels.xray import XrayPanel

if TYPE_CHECKING:
    from gui.main_window import MainWindow

UNTRAINED = "untrained tiny model"


class XrayDock(QWidget):
    """Model picker + X-ray panel, wired to the window's canvas, image list and bridge."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
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
        self.panel = XrayPanel(bridge=window.bridge, parent=self)
        self.panel.connect_canvas(window.canvas)
        self.panel.status_message.connect(window.statusBar().showMessage)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.panel, 1)
        window.images.image_selected.connect(self._on_image_selected)
        window.bridge.events_ready.connect(self._on_events)

    def run_id(self) -> int | None:
        data = self.runs.currentData()
        return int(data) if data is not None else None

    def refresh_runs(self) -> None:
        store = self.window_.store
        keep = self.run_id()
        self.runs.blockSignals(True)
        self.runs.clear()
        self.runs.addItem(UNTRAINED, None)
        if store is not None:
            for r in reversed(store.runs()):
                if r["checkpoint"]:
                    label = f"run {r['id']} · {r['name'] or r['model']} · {r['status']}"
                    if "map50" in r["summary"]:
                        label += f" · mAP@.5 {r['summary']['map50']:.2f}"
                    self.runs.addItem(label, r["id"])
        idx = self.runs.findData(keep) if keep is not None else (1 if self.runs.count() > 1 else 0)
        self.runs.setCurrentIndex(max(0, idx))
        self.runs.blockSignals(False)
        self._sync_context()

    def _sync_context(self) -> None:
        store = self.window_.store
        self.panel.set_context(str(store.root) if store is not None else None, self.window_.image_id,
                               run_id=self.run_id())

    def _on_run_changed(self, _index: int) -> None:
        self._sync_context()

    def _on_image_selected(self, _image_id: int) -> None:
        self._sync_context()

    def _on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.refresh_runs()


class XrayController(QObject):
    """Keeps the X-ray and anchor-design docks on the window's current project."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self.xray = XrayDock(window)
        self.anchor_design = AnchorDesignPanel(bridge=window.bridge, parent=window)
        self.anchor_design.gt_selected.connect(self._on_gt_selected)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        others = [d for d in window.findChildren(QDockWidget) if window.dockWidgetArea(d) == right]
        self.xray_dock = window._dock("X-ray", _scrolled(self.xray), right)
        self.anchor_dock = window._dock("Anchor design", _scrolled(self.anchor_design), right)
        chain = [*others[:1], self.xray_dock, self.anchor_dock]  # one tab group on the right: fits 768 px screens
        for first, second in zip(chain, chain[1:]):
            window.tabifyDockWidget(first, second)
        if others:
            others[0].raise_()
        window.view_menu.addAction(self.xray_dock.toggleViewAction())
        window.view_menu.addAction(self.anchor_dock.toggleViewAction())

    def project_changed(self) -> None:
        store = self.window_.store
        self.xray.refresh_runs()
        self.anchor_design.set_project(str(store.root) if store is not None else None)

    def _on_gt_selected(self, image_id: int, box: list) -> None:
        """Show a badly covered GT box: open its image and zoom onto it."""
        self.window_.images.select_image(image_id)
        x1, y1, x2, y2 = (float(v) for v in box)
        pad = max(x2 - x1, y2 - y1, 16.0)
        self.window_.canvas.show_rect(QRectF(x1 - pad, y1 - pad, x2 - x1 + 2 * pad, y2 - y1 + 2 * pad))


def _scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def install_xray(window: MainWindow) -> XrayController:
    return XrayController(window)
