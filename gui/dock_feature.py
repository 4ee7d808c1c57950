"""Docks that look at the image on screen with a trained run (the Inside-the-CNN and Segmentation features).

``ImageJobPanel``: the base of such a panel: ONE engine job per (image, run, settings), debounced, run
only while the dock is on screen (``set_active``), a newer request cancelling the older job, late events
of old jobs ignored, and the run list (runs with a checkpoint, newest first) kept across refreshes.
``ImageRunDockFeature`` mounts the panel as a hidden right-hand dock and wires it to the session: it
follows the project and image and re-reads the runs when a training run finishes (the bridge's
broadcast) or the store changes. Opening the dock does not steal the tab the user was on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.events import Event, RunFinished
from engine.project.records import RunRecord
from engine.project.store import Store
from gui.bridge import EngineBridge, JobHandle
from gui.canvas.view import CanvasView
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled


class ImageRunPanel(Protocol):
    def connect_canvas(self, canvas: CanvasView) -> None: ...
    def set_active(self, on: bool) -> None: ...
    def refresh_runs(self) -> None: ...
    def on_image_changed(self, image_id: int | None) -> None: ...
    def on_project_closed(self) -> None: ...


class ImageJobPanel(QWidget):
    """Base panel: subclasses set ``job`` (an engine job function), build ``runs`` (a QComboBox) and
    ``status`` (a QLabel), and implement ``config`` (None: nothing to compute), ``_on_job_event`` and
    ``_on_job_failed``; ``_on_job_finished`` and ``busy_text`` are optional."""

    job: Callable
    lane = "tasks"
    no_run_text = "train a model first"
    runs: QComboBox
    status: QLabel

    def __init__(self, session: Session, bridge: EngineBridge | None, debounce_ms: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.bridge = session, bridge
        self.handle: JobHandle | None = None  # the newest job
        self.submitted = 0  # jobs submitted (tests, status)
        self.active = False
        self._dirty = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.submit)

    def _build_run_row(self, root: QVBoxLayout, tooltip: str) -> None:
        """The "Model: [runs] [↻]" row and the status line under it (``runs``, ``status``)."""
        row = QHBoxLayout()
        self.runs = QComboBox(self)
        self.runs.setToolTip(tooltip)
        self.runs.currentIndexChanged.connect(self._on_run_changed)
        refresh = QPushButton("↻", self)
        refresh.setToolTip("Reload the list of runs")
        refresh.setFixedWidth(28)
        refresh.clicked.connect(self.refresh_runs)
        row.addWidget(QLabel("Model:", self))
        row.addWidget(self.runs, 1)
        row.addWidget(refresh)
        root.addLayout(row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        root.addWidget(self.status)

    def _on_run_changed(self, _index: int) -> None:
        raise NotImplementedError

    def refresh_runs(self) -> None:
        raise NotImplementedError

    def project(self) -> str | None:
        store = self.session.store
        return str(store.root) if store is not None else None

    def run_id(self) -> int | None:
        d = self.runs.currentData()
        return None if d is None else int(d)

    def fill_runs(self, runs: Iterable[RunRecord], empty_text: str) -> int | None:
        """Fill the run list with ``runs`` (given oldest first; shown newest first), keeping the chosen run
        when it is still there; returns the run chosen before (compare with ``run_id()``)."""
        keep = self.run_id()
        self.runs.blockSignals(True)
        self.runs.clear()
        for r in reversed(list(runs)):
            self.runs.addItem(f"run {r.id} · {r.name or r.model} · {r.status}", r.id)
        if not self.runs.count():
            self.runs.addItem(empty_text, None)
        idx = self.runs.findData(keep) if keep is not None else -1
        self.runs.setCurrentIndex(max(0, idx))
        self.runs.blockSignals(False)
        return keep

    def schedule(self) -> None:
        """Recompute after a short pause (image flips, slider drags and quick clicks cost one job)."""
        self._dirty = True
        self._timer.start()

    def config(self) -> dict | None:
        raise NotImplementedError

    def busy_text(self) -> str:
        return "computing…"

    def submit(self) -> JobHandle | None:
        """Submit ``job`` for ``config()`` now (None when the dock is hidden or there is nothing to do)."""
        self._timer.stop()
        if not self.active:
            self._dirty = True
            return None
        cfg = self.config()
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
        self._dirty = False
        if cfg is None or self.bridge is None:
            self.handle = None
            self.status.setText("open an image" if self.run_id() is not None else self.no_run_text)
            return None
        text = self.busy_text()
        self.handle = h = self.bridge.submit(type(self).job, cfg, lane=self.lane)
        self.submitted += 1
        h.event.connect(self._on_job_event)
        h.finished.connect(self._on_job_finished)
        h.failed.connect(self._on_job_failed)
        self.status.setText(text)
        return h

    def _on_job_event(self, e: Event) -> None:
        raise NotImplementedError

    def _on_job_finished(self, result: dict) -> None:
        """A job ended (``result`` is the job's return value); nothing by default."""

    def _on_job_failed(self, message: str) -> None:
        raise NotImplementedError


class ImageRunDockFeature(QObject):
    """``panel`` (a QWidget implementing ``ImageRunPanel``) in a hidden dock titled ``title``."""

    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge,
                 panel: QWidget, title: str) -> None:
        super().__init__(session)
        self.session = session
        self.panel = panel
        panel.connect_canvas(canvas)
        first = next(iter(host.docks(Area.RightDockWidgetArea)), None)
        self.dock = host.add_dock(title, scrolled(panel), hidden=True)
        if first is not None:
            first.raise_()
        self.dock.visibilityChanged.connect(self._on_visibility)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(panel.on_project_closed)
        session.image_changed.connect(panel.on_image_changed)
        session.store_changed.connect(panel.refresh_runs)
        bridge.broadcast.connect(self._on_events)
        if session.store is not None:
            self._on_project_opened(session.store)

    def _on_visibility(self, visible: bool) -> None:
        self.panel.set_active(visible and self.dock.isVisible())

    def _on_project_opened(self, _store: Store) -> None:
        self.panel.refresh_runs()

    def _on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.panel.refresh_runs()
