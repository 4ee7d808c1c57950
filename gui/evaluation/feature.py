"""The Evaluation feature: the Evaluation dock (bottom area beside Plots, opened from View > Evaluation)
and its canvas overlay.

``EvaluationFeature(session, canvas, host, bridge)`` follows the session's project, refreshes the
run list when a run finishes (the bridge's broadcast), and answers a row of the error browser by
asking the session for the image (``request_image``: the image list selects it and the canvas shows
it) and drawing the row's ground truth and prediction in ONE overlay layer (``BoxLayer``, image
pixels). The overlay goes when another image is shown or the project closes.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer

from engine.eval.errors import ErrorRecord
from engine.events import Event, RunFinished
from engine.project.store import Store
from gui.bridge import EngineBridge
from gui.canvas.overlays import BoxLayer
from gui.canvas.view import Z_OVERLAYS, CanvasView
from gui.evaluation.panel import EvaluationPanel
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled

OVERLAY_Z = Z_OVERLAYS + 30  # above the X-ray layers
GT, TP, FP, FN = 0, 1, 2, 3  # overlay colour groups
PALETTE = ("#39d353", "#4e9af1", "#ff4040", "#ffb000")
DOCK_HEIGHT = 360
DOCK_WIDTH_SHARE = 0.7  # of the window, beside Plots


class EvaluationFeature(QObject):
    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.canvas, self.host = session, canvas, host
        self.panel = EvaluationPanel(bridge, host.widget)
        # hidden until View > Evaluation opens it, beside Plots in the bottom area: hidden and untabbed, it
        # changes neither the window's minimum size nor its tab bars (a saved layout restores it)
        self.dock = host.add_dock("Evaluation", scrolled(self.panel), Area.BottomDockWidgetArea, tab=False)
        self.dock.hide()
        self.dock.toggleViewAction().triggered.connect(self._on_dock_opened)
        self._sized = False
        self.overlay = BoxLayer("evaluation", PALETTE[0], OVERLAY_Z, width=2)
        self.overlay.set_palette(PALETTE)
        self.overlay.label_limit = 20
        canvas.scene().addItem(self.overlay)
        self.overlay_image: int | None = None
        self.record: ErrorRecord | None = None
        self.panel.errors.record_activated.connect(self._on_record_activated)
        self.panel.errors.overlay_toggled.connect(self._on_overlay_toggled)
        self.panel.status_message.connect(self._on_status)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_changed.connect(self._on_image_changed)
        bridge.broadcast.connect(self._on_broadcast)
        if session.store is not None:
            self._on_project_opened(session.store)

    def show(self) -> None:
        """Bring the Evaluation dock to the front."""
        self.dock.show()
        self.dock.raise_()
        self._on_dock_opened()

    # -- session -----------------------------------------------------------------------------------------
    def _on_project_opened(self, store: Store) -> None:
        self.panel.set_store(store)

    def _on_project_closed(self) -> None:
        self.clear_overlay()
        self.panel.set_store(None)

    def _on_image_changed(self, image_id: int | None) -> None:
        if image_id != self.overlay_image:
            self.clear_overlay()

    def _on_broadcast(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.panel.refresh_runs()

    def _on_status(self, text: str) -> None:
        self.session.show_status(text)

    def _on_dock_opened(self, visible: bool = True) -> None:
        """The first time the user opens it (not a restored layout): tall and wide enough for tables and plots."""
        if visible and not self._sized:
            self._sized = True
            QTimer.singleShot(0, self._size_dock)  # once the dock is laid out (resizing a hidden dock does nothing)

    def _size_dock(self) -> None:
        width = self.host.widget.width()
        self.host.resize_dock(self.dock, DOCK_HEIGHT, Qt.Orientation.Vertical)
        self.host.resize_dock(self.dock, int(width * DOCK_WIDTH_SHARE), Qt.Orientation.Horizontal)
        beside = [d for d in self.host.docks(Area.BottomDockWidgetArea) if d is not self.dock and d.isVisible()]
        for d in beside:  # the docks beside it (Plots) give up the rest of the width
            self.host.resize_dock(d, int(width * (1 - DOCK_WIDTH_SHARE) / len(beside)), Qt.Orientation.Horizontal)

    # -- overlay -------------------------------------------------------------------------------------------
    def _on_record_activated(self, rec: ErrorRecord) -> None:
        self.record = rec
        self.overlay_image = rec.image_id
        self.show_record(rec)
        if self.session.image_id != rec.image_id:
            self.session.request_image(rec.image_id)

    def show_record(self, rec: ErrorRecord) -> None:
        """Draw the record's ground truth (green) and prediction (blue TP, red FP, orange with an FN)."""
        name = self.panel.errors.model.name
        boxes, groups, labels = [], [], []
        if rec.gt_box is not None:
            gt_label = rec.gt_label if rec.gt_label is not None else rec.label
            boxes.append(rec.gt_box)
            groups.append(GT)
            labels.append(f"GT {name(gt_label)}" + (f" · FN ({rec.cause.replace('_', ' ')})"
                                                     if rec.kind == "FN" and rec.cause else ""))
        if rec.box is not None:
            group = {"TP": TP, "FP": FP}.get(rec.kind, FN)
            text = f"{rec.kind} {name(rec.label)}" if rec.kind != "FN" else f"prediction {name(rec.label)}"
            if rec.score is not None:
                text += f" {rec.score:.2f}"
            if rec.kind == "FP" and rec.cause:
                text += f" ({rec.cause.replace('_', ' ')})"
            boxes.append(rec.box)
            groups.append(group)
            labels.append(text)
        self.overlay.set_boxes(boxes, groups, PALETTE, labels)
        self.overlay.setVisible(self.panel.errors.overlay_check.isChecked())

    def clear_overlay(self) -> None:
        self.overlay_image = None
        self.record = None
        self.overlay.set_boxes([])

    def _on_overlay_toggled(self, on: bool) -> None:
        self.overlay.setVisible(on)
