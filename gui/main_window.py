"""The main window: assembles the canvas, docks, menus and status bar. No logic of its own."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from engine.project.store import Store, StoreError, is_project
from gui.bridge import EngineBridge
from gui.canvas.annotation_layer import AnnotationLayer
from gui.canvas.image_loader import ImageLoader
from gui.canvas.view import CanvasView
from gui.labeling import LabelingController
from gui.panels.images import ImageListPanel, add_images_from_folder
from gui.panels.interop_dialog import run_interop
from gui.settings import add_recent_project, recent_projects, settings
from gui.training import install_training
from gui.xray_dock import install_xray


class MainWindow(QMainWindow):
    def __init__(self, project: str | Path) -> None:
        super().__init__()
        self.setWindowTitle("AnchorLab")
        self.store: Store | None = None
        self.image_id: int | None = None
        self.bridge = EngineBridge(self)
        self.canvas = CanvasView(self)
        self.setCentralWidget(self.canvas)
        self.annotations = AnnotationLayer(self.canvas.scene())
        self.images = ImageListPanel(self)
        self.images.image_selected.connect(self._on_image_selected)
        self.images_dock = self._dock("Images", self.images, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._build_status_bar()
        self._build_menus()
        self.training = install_training(self)
        self.labeling = LabelingController(self)  # tools, undo stack, Labels/Tags/History docks
        self.xray = install_xray(self)  # X-ray and Anchor design docks
        self.labeling.ui.labels_dock.raise_()
        self._restore_geometry()
        self.open_project(project)

    # -- assembly -----------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.size_label, self.zoom_label, self.cursor_label = QLabel(), QLabel(), QLabel()
        for w in (self.size_label, self.zoom_label, self.cursor_label):
            self.statusBar().addPermanentWidget(w)
        self.canvas.cursor_moved.connect(self._on_cursor_moved)
        self.canvas.zoom_changed.connect(self._on_zoom_changed)
        self.canvas.image_size_changed.connect(self._on_image_size_changed)

    def _action(self, text: str, slot: object, shortcut: str | QKeySequence | None = None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self._action("&Open project…", self._on_open_project, QKeySequence.StandardKey.Open))
        file_menu.addAction(self._action("&New project…", self._on_new_project, QKeySequence.StandardKey.New))
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu)
        self.file_menu = file_menu
        file_menu.addAction(self._action("&Add images from folder…", lambda: add_images_from_folder(
            self, self.store, self.bridge, self.images)))
        file_menu.addAction(self._action("&Import annotations…", lambda: self._on_interop("import"), "Ctrl+I"))
        file_menu.addAction(self._action("&Export annotations…", lambda: self._on_interop("export"), "Ctrl+E"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        self.edit_menu = self.menuBar().addMenu("&Edit")
        view = self.menuBar().addMenu("&View")
        self.view_menu = view
        view.addAction(self._action("&Fit to window", self.canvas.fit, "F"))
        view.addAction(self._action("Zoom &in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn))
        view.addAction(self._action("Zoom &out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut))
        view.addAction(self._action("&Previous image", lambda: self.images.step(-1), "A"))
        view.addAction(self._action("&Next image", lambda: self.images.step(1), "D"))
        view.addSeparator()
        view.addAction(self.images_dock.toggleViewAction())
        self.help_menu = self.menuBar().addMenu("&Help")

    # -- project ------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> bool:
        try:
            store = Store(path)
        except StoreError as e:
            QMessageBox.warning(self, "Cannot open project", str(e))
            return False
        if self.store is not None:
            self.store.close()
        self.store = store
        self.labeling.project_changed()
        self.xray.project_changed()
        self.setWindowTitle(f"AnchorLab — {store.root.name}")
        add_recent_project(str(store.root))
        self.images.load(store)
        self.annotations.clear()
        self.canvas.set_image(None)
        if self.images.model.rowCount():
            self.images.step(1)
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

    def _on_interop(self, kind: str) -> None:
        if self.store is not None:
            self._interop = run_interop(self, self.bridge, self.store.root, kind)
            if self._interop is not None and kind == "import":
                self._interop.finished.connect(self._on_import_finished)

    def _on_import_finished(self, result: dict) -> None:
        if self.store is not None and result:
            self.images.reload(self.store)
            self.labeling.refresh_panels()
            self.reload_annotations()

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

    # -- image --------------------------------------------------------------------------------
    def _on_image_selected(self, image_id: int) -> None:
        assert self.store is not None
        self.image_id = image_id
        self.annotations.clear()
        if ImageLoader.of(self.canvas).load(image_id, self.store.image_path(image_id)):  # decodes off the GUI thread
            self.reload_annotations()

    def reload_annotations(self) -> None:
        if self.store is None or self.image_id is None:
            return
        anns = self.store.annotations(self.image_id)
        self.annotations.show(anns, self.store.categories())
        self.images.model.set_annotations(self.image_id, anns)

    # -- status bar ---------------------------------------------------------------------------
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
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()
        self.bridge.shutdown()
        if self.store is not None:
            self.store.close()
            self.store = None
        super().closeEvent(event)
