"""The main window: creates the session, the bridge, the canvas and the features, and the status bar.

No logic of its own: every feature gets the session (open store + current image), the canvas and a
``DockHost`` (docks, menus, actions), never the window. Only ``gui.app`` imports this module.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox

from engine.project.store import Store, StoreError, is_project
from gui.analytics.feature import AnalyticsFeature
from gui.assist.feature import AssistFeature
from gui.bridge import EngineBridge
from gui.canvas.annotation_layer import AnnotationLayer
from gui.canvas.view import CanvasView
from gui.evaluation.feature import EvaluationFeature
from gui.explorer.feature import ExplorerFeature
from gui.images.feature import ImagesFeature
from gui.images.panel import ImageListPanel
from gui.internals.feature import InternalsFeature
from gui.interop.feature import InteropFeature
from gui.labeling.controller import LabelingController
from gui.segmentation.feature import SegmentationFeature
from gui.session import Session
from gui.tagging.feature import TagSuggestionsFeature
from gui.training.controller import TrainingController, install_training
from gui.widgets.docks import DockHost
from gui.widgets.settings import add_recent_project, recent_projects, settings
from gui.xray.dock import XrayFeature


class MainWindow(QMainWindow):
    def __init__(self, project: str | Path) -> None:
        super().__init__()
        self.setWindowTitle("AnchorLab")
        self.session = Session(self)
        self.bridge = EngineBridge(self)
        self.canvas = CanvasView(self)
        self.setCentralWidget(self.canvas)
        self.host = DockHost(self)
        self._build_status_bar()
        self._build_menus()
        # features: each takes the session (+ canvas, dock host, bridge as it needs), never the window
        self.images_feature = ImagesFeature(self.session, self.canvas, self.host, self.bridge)
        self.interop = InteropFeature(self.session, self.host, self.bridge)
        self.training: TrainingController = install_training(self.session, self.host, self.bridge)
        self.labeling = LabelingController(self.session, self.canvas, self.host)  # tools, undo, Labels/Tags/History
        self.session.set_undo_stack(self.labeling.stack)  # one history: other features push their edits on it
        self.session.annotations_edited.connect(self.labeling.reload)
        self.xray = XrayFeature(self.session, self.canvas, self.host, self.bridge)  # X-ray and Anchor design
        self.evaluation = EvaluationFeature(self.session, self.canvas, self.host, self.bridge)  # report, errors, CV
        self.internals = InternalsFeature(self.session, self.canvas, self.host, self.bridge)  # Inside the CNN
        self.explorer = ExplorerFeature(self.session, self.host, self.bridge)  # Loss explorer
        self.segmentation = SegmentationFeature(self.session, self.canvas, self.host, self.bridge)  # before/after CRF
        self.analytics = AnalyticsFeature(self.session, self.host, self.bridge)  # dataset stats, anchors
        self.tag_suggestions = TagSuggestionsFeature(self.session, self.host, self.bridge)  # tagger scores
        self.assist = AssistFeature(self.session, self.canvas, self.host, self.bridge)  # model-assisted labeling
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.host.action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        self.labeling.ui.labels_dock.raise_()
        self._restore_geometry()
        self.open_project(project)

    # -- read-only views for scripts and tests -------------------------------------------------
    @property
    def store(self) -> Store | None:
        return self.session.store

    @property
    def image_id(self) -> int | None:
        return self.session.image_id

    @property
    def images(self) -> ImageListPanel:
        return self.images_feature.panel

    @property
    def annotations(self) -> AnnotationLayer:
        return self.labeling.layer

    # -- assembly -----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        self.size_label, self.zoom_label, self.cursor_label = QLabel(), QLabel(), QLabel()
        for w in (self.size_label, self.zoom_label, self.cursor_label):
            self.statusBar().addPermanentWidget(w)
        self.canvas.cursor_moved.connect(self._on_cursor_moved)
        self.canvas.zoom_changed.connect(self._on_zoom_changed)
        self.canvas.image_size_changed.connect(self._on_image_size_changed)
        self.session.status_message.connect(self._on_status_message)

    def _build_menus(self) -> None:
        host = self.host
        self.file_menu = host.menu("&File")
        host.action("&Open project…", self._on_open_project, QKeySequence.StandardKey.Open, menu="&File")
        host.action("&New project…", self._on_new_project, QKeySequence.StandardKey.New, menu="&File")
        self.recent_menu = self.file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu)
        self.edit_menu = host.menu("&Edit")
        self.view_menu = host.menu("&View")
        host.action("&Fit to window", self.canvas.fit, "F", menu="&View")
        host.action("Zoom &in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn, menu="&View")
        host.action("Zoom &out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut, menu="&View")
        self.help_menu = host.menu("&Help")

    # -- project ------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> bool:
        try:
            store = self.session.open(path)
        except StoreError as e:
            QMessageBox.warning(self, "Cannot open project", str(e))
            return False
        self.setWindowTitle(f"AnchorLab — {store.root.name}")
        add_recent_project(str(store.root))
        self.images_feature.show_first()
        return True

    def _on_open_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open AnchorLab project")
        if path:
            self.open_project(path)

    def _on_new_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        if not path:
            return
        if is_project(path):
            QMessageBox.information(self, "New project", f"{path} already is a project; opening it.")
        else:
            Store.create(path).close()
        self.open_project(path)

    def _on_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in recent_projects():
            act = self.recent_menu.addAction(p)
            act.setData(p)
            act.triggered.connect(self._on_recent_triggered)

    def _on_recent_triggered(self) -> None:
        act = self.sender()
        if isinstance(act, QAction):
            self.open_project(str(act.data()))

    # -- status bar ---------------------------------------------------------------------------
    def _on_status_message(self, text: str, timeout_ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def _on_cursor_moved(self, x: float, y: float) -> None:
        w, h = self.canvas.image_size()
        inside = 0 <= x < w and 0 <= y < h
        self.cursor_label.setText(f"x {int(x)}  y {int(y)}" if inside else "")

    def _on_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def _on_image_size_changed(self, w: int, h: int) -> None:
        self.size_label.setText(f"{w} × {h} px" if w else "")

    # -- window state -------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        s = settings()
        geo, state = s.value("window/geometry"), s.value("window/state")
        if geo is not None:
            self.restoreGeometry(geo)
        else:  # first start: most of the screen, the canvas gets what the docks leave
            screen = self.screen().availableGeometry()
            self.resize(max(1024, int(screen.width() * 0.9)), max(700, int(screen.height() * 0.9)))
            right = self.host.docks(Qt.DockWidgetArea.RightDockWidgetArea)
            if right:  # the right-hand tab group: a panel's width, not half the window
                self.resizeDocks(right, [380] * len(right), Qt.Orientation.Horizontal)
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()
        self.bridge.shutdown()
        self.session.close()
        super().closeEvent(event)
