"""The X-ray panel: the Faster R-CNN pipeline of one image drawn over the canvas, layer by layer.

Mounting: ``panel = XrayPanel(bridge=bridge)``; ``panel.connect_canvas(canvas)`` adds the layer items to
``canvas.scene()`` (scene coordinates = image pixels) and connects ``canvas.clicked(x, y, modifiers)`` and
``canvas.cursor_moved(x, y)``; ``panel.set_context(project, image_id, run_id=..)`` whenever the shown image
or the chosen run changes. "Capture" submits ``engine.xray.job.xray_job`` on the bridge's 'tasks' lane;
its result arrives through the job's handle, live training snapshots (if "follow training" is on)
through the bridge's ``broadcast``, both as ``ArraysReady(kind="xray")`` read into an ``XrayCapture``.
Sliders re-run NMS on the captured pre-NMS boxes (no model run). A capture whose ``meta["task"]`` is
``"yolo_v1"`` switches the panel to its YOLO mode (``gui.xray.yolo_panel.YoloPanel``: the grid overlay).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QGraphicsScene,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from engine.events import ArraysReady, Event
from engine.xray.capture import XrayCapture
from engine.xray.job import xray_job
from gui.bridge import EngineBridge, JobHandle
from gui.widgets.forms import slider_row
from gui.xray.layers import LABEL_FILTERS, LAYERS, XrayLayers
from gui.xray.yolo_layers import is_yolo_capture
from gui.xray.yolo_panel import YoloPanel

CLICK_MODES = ("anchors at pixel", "RoI under cursor")


def _swatch(color: QColor) -> QIcon:
    pm = QPixmap(14, 14)
    pm.fill(color)
    return QIcon(pm)


class XrayPanel(QWidget):
    """Layer toggles with colours and legend, filters, NMS sliders, click/hover inspection."""

    capture_shown = Signal(dict)  # meta of the capture now drawn (image_id, run_id, step, live, ...)
    status_message = Signal(str)

    def __init__(self, scene: QGraphicsScene | None = None, bridge: EngineBridge | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layers = XrayLayers()
        self.bridge = bridge
        self.context: dict = {}
        self._job: JobHandle | None = None
        self._last_tip = ""
        self._build()
        if scene is not None:
            self.attach_scene(scene)
        if bridge is not None:
            bridge.broadcast.connect(self._on_events)

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        self.capture_button = QPushButton("Capture")
        self.capture_button.setToolTip("Run the chosen checkpoint on the shown image and capture its internals")
        self.capture_button.clicked.connect(self._on_capture_clicked)
        self.follow_live = QCheckBox("follow training")
        self.follow_live.setToolTip("Show the X-ray snapshots a training run captures every N steps")
        self.follow_live.setChecked(True)
        top.addWidget(self.capture_button)
        top.addWidget(self.follow_live)
        top.addStretch(1)
        root.addLayout(top)
        self.status = QLabel("no capture")
        self.status.setWordWrap(True)
        root.addWidget(self.status)

        box = QGroupBox("Layers")
        grid = QGridLayout(box)
        self.layer_checks: dict[str, QCheckBox] = {}
        self.color_buttons: dict[str, list[QToolButton]] = {}
        self.count_labels: dict[str, QLabel] = {}
        for row, spec in enumerate(LAYERS):
            check = QCheckBox(spec.title)
            check.setChecked(spec.visible)
            check.toggled.connect(lambda on, n=spec.name: self._on_layer_toggled(n, on))
            grid.addWidget(check, row, 0)
            swatches = QHBoxLayout()
            self.color_buttons[spec.name] = []
            for entry, (color, legend) in enumerate(zip(spec.colors, spec.legend or ("",))):
                b = QToolButton()
                b.setIcon(_swatch(QColor(color)))
                b.setToolTip(f"{legend or spec.title}: click to change the colour")
                b.clicked.connect(lambda _=False, n=spec.name, e=entry: self._on_pick_color(n, e))
                swatches.addWidget(b)
                if legend:
                    swatches.addWidget(QLabel(legend))
                self.color_buttons[spec.name].append(b)
            swatches.addStretch(1)
            grid.addLayout(swatches, row, 1)
            self.count_labels[spec.name] = QLabel("")
            grid.addWidget(self.count_labels[spec.name], row, 2)
            self.layer_checks[spec.name] = check
        root.addWidget(box)

        filters = QGroupBox("Filters")
        form = QFormLayout(filters)
        self.level_combo = QComboBox()
        self.level_combo.addItem("all levels", -1)
        self.level_combo.currentIndexChanged.connect(self._on_filters_changed)
        form.addRow("FPN level", self.level_combo)
        self.label_combo = QComboBox()
        for name in LABEL_FILTERS:
            self.label_combo.addItem(name, name)
        self.label_combo.currentIndexChanged.connect(self._on_filters_changed)
        form.addRow("anchor label", self.label_combo)
        self.click_mode = QComboBox()
        self.click_mode.addItems(CLICK_MODES)
        form.addRow("click shows", self.click_mode)
        self.sliders: dict[str, QSlider] = {}
        self.slider_labels: dict[str, QLabel] = {}
        for key, title in (("top_n", "top-N proposals"), ("prop_iou", "proposal NMS IoU"),
                           ("score_thresh", "detection score >"), ("det_iou", "detection NMS IoU")):
            self.sliders[key], self.slider_labels[key] = slider_row(form, title, 100, self._on_sliders_changed)
        root.addWidget(filters)

        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.details)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        root.addWidget(self.table, 1)
        self._frcnn_widgets = (box, filters, self.details, self.table)
        self.yolo = YoloPanel(self)  # YOLO mode: shown instead of the Faster R-CNN controls
        self.yolo.status_message.connect(self.status_message)
        self.yolo.hide()
        root.addWidget(self.yolo, 1)
        self._sync_slider_labels()

    # -- wiring -----------------------------------------------------------------------------------
    def attach_scene(self, scene: QGraphicsScene) -> None:
        """Draw the layers in ``scene`` (scene coordinates must be image pixels)."""
        self.layers.attach(scene)
        self.yolo.attach_scene(scene)

    def connect_canvas(self, canvas: object) -> None:
        """Attach to a CanvasView: its scene, ``clicked(x, y, modifiers)`` and ``cursor_moved(x, y)``."""
        self.attach_scene(canvas.scene())
        canvas.clicked.connect(self.on_canvas_clicked)
        canvas.cursor_moved.connect(self.on_cursor_moved)

    def set_context(self, project: str | None, image_id: int | None, checkpoint: str | None = None,
                    run_id: int | None = None) -> None:
        """What "Capture" captures: the project, the image shown on the canvas and a run or checkpoint."""
        self.context = {"project": project, "image": image_id, "checkpoint": checkpoint, "run": run_id}
        if self.layers.arrays is not None and self.layers.meta.get("image_id") != image_id:
            self.layers.clear()
            self.status.setText("no capture of this image yet")
        if self.yolo.active() and self.yolo.layers.meta.get("image_id") != image_id:
            self.yolo.clear()
            self.status.setText("no capture of this image yet")

    def request_capture(self, roi_index: int | None = None) -> str | None:
        """Submit the X-ray job for the current context; returns the job id (None without a bridge)."""
        if self.bridge is None or not self.context.get("project") or self.context.get("image") is None:
            self.status.setText("open a project and an image to capture")
            return None
        cfg = {**self.context, "roi_index": roi_index}
        self._job = h = self.bridge.submit(xray_job, cfg, lane="tasks")
        h.event.connect(self._on_capture_event)
        h.failed.connect(self._on_capture_failed)
        self.status.setText("capturing...")
        return h.id

    def _on_capture_clicked(self) -> None:
        self.request_capture()

    def _on_capture_event(self, e: Event) -> None:
        if isinstance(e, ArraysReady) and e.kind == "xray":
            if is_yolo_capture(e.meta, e.arrays):
                self.set_capture(dict(e.arrays), dict(e.meta))
            else:
                self.show_capture(XrayCapture.from_event(e))

    def _on_capture_failed(self, message: str) -> None:
        self.status.setText(f"capture failed: {message}")

    def _on_events(self, events: list[Event]) -> None:
        """Broadcast events: live X-ray snapshots of a training run."""
        for e in events:
            if not (isinstance(e, ArraysReady) and e.kind == "xray" and self.follow_live.isChecked()):
                continue
            yolo = is_yolo_capture(e.meta, e.arrays)
            cap = None if yolo else XrayCapture.from_event(e)
            live, image_id = bool(e.meta.get("live")), e.meta.get("image_id")
            shown = self.context.get("image")
            if not live:
                continue
            if shown is not None and (None if image_id is None else int(image_id)) != shown:
                self.status.setText(f"training snapshot (step {e.meta.get('step')}) is of image "
                                    f"{image_id}: open that image to follow it")
            elif yolo:
                self.set_capture(dict(e.arrays), dict(e.meta))
            else:
                self.show_capture(cap)

    # -- capture display --------------------------------------------------------------------------
    def show_capture(self, capture: XrayCapture) -> None:
        self.set_capture(capture.arrays, capture.meta)

    def set_capture(self, arrays: dict, meta: dict | None = None) -> None:
        """Draw a capture (arrays as documented in docs/xray.md)."""
        meta = dict(meta or {})
        if is_yolo_capture(meta, arrays):
            self._show_yolo(arrays, meta)
            return
        self._set_yolo_mode(False)
        level = self.level_combo.currentData()
        self.level_combo.blockSignals(True)
        self.level_combo.clear()
        self.level_combo.addItem("all levels", -1)
        for i, (_sy, sx) in enumerate(arrays["level_stride"]):
            self.level_combo.addItem(f"level {i} (stride {int(sx)})", i)
        self.level_combo.setCurrentIndex(max(0, self.level_combo.findData(level)))
        self.level_combo.blockSignals(False)
        self.layers.filters.level = int(self.level_combo.currentData())
        self.layers.set_capture(arrays, meta)
        f = self.layers.filters
        for s in self.sliders.values():
            s.blockSignals(True)
        self.sliders["top_n"].setRange(0, len(arrays["proposals"]))
        self.sliders["top_n"].setValue(f.top_n)
        self.sliders["prop_iou"].setValue(round(f.prop_iou * 100))
        self.sliders["score_thresh"].setValue(round(f.score_thresh * 100))
        self.sliders["det_iou"].setValue(round(f.det_iou * 100))
        for s in self.sliders.values():
            s.blockSignals(False)
        self._sync_slider_labels()
        self._update_counts()
        what = f"step {meta['step']}" if meta.get("step") is not None else meta.get("notice", "")
        self.status.setText(f"image {meta.get('image_id', '?')}: {len(arrays['anchors'])} anchors, "
                            f"{len(arrays['rois'])} RoIs, {len(arrays['detections'])} detections "
                            f"{'(live) ' if meta.get('live') else ''}{what}")
        self.details.setText("")
        self.table.setRowCount(0)
        self.capture_shown.emit(meta)

    def _set_yolo_mode(self, on: bool) -> None:
        """Show the YOLO controls (and clear the Faster R-CNN overlays) or the other way round."""
        if on:
            self.layers.clear()
        else:
            self.yolo.clear()
        for w in self._frcnn_widgets:
            w.setVisible(not on)
        self.yolo.setVisible(on)

    def _show_yolo(self, arrays: dict, meta: dict) -> None:
        self._set_yolo_mode(True)
        self.status.setText(self.yolo.show_capture(arrays, meta))
        self.capture_shown.emit(meta)

    def _on_layer_toggled(self, name: str, on: bool) -> None:
        self.layers.set_visible(name, on)

    def set_layer_color(self, name: str, color: QColor | str, entry: int = 0) -> None:
        self.layers.set_color(name, color, entry)
        self.color_buttons[name][entry].setIcon(_swatch(QColor(color)))

    def _on_pick_color(self, name: str, entry: int) -> None:
        color = QColorDialog.getColor(parent=self, title=f"colour of {name}")
        if color.isValid():
            self.set_layer_color(name, color, entry)

    def _on_filters_changed(self) -> None:
        f = self.layers.filters
        f.level = int(self.level_combo.currentData() if self.level_combo.currentData() is not None else -1)
        f.label = self.label_combo.currentData() or "all"
        self.layers.refresh()
        self._update_counts()

    def _on_sliders_changed(self) -> None:
        f = self.layers.filters
        f.top_n = self.sliders["top_n"].value()
        f.prop_iou = self.sliders["prop_iou"].value() / 100
        f.score_thresh = self.sliders["score_thresh"].value() / 100
        f.det_iou = self.sliders["det_iou"].value() / 100
        self._sync_slider_labels()
        self.layers.refresh()
        self._update_counts()

    def _sync_slider_labels(self) -> None:
        for key, s in self.sliders.items():
            self.slider_labels[key].setText(str(s.value()) if key == "top_n" else f"{s.value() / 100:.2f}")

    def _update_counts(self) -> None:
        counts = self.layers.counts()
        for name, lab in self.count_labels.items():
            lab.setText(str(counts.get(name, 0)))

    # -- canvas interaction ----------------------------------------------------------------------
    def on_canvas_clicked(self, x: float, y: float, modifiers: int = 0) -> None:
        """Image-pixel click: anchors centred there (every level, IoU with each GT) or the RoI's grid."""
        if self.yolo.active():
            self.yolo.on_canvas_clicked(x, y, modifiers)
            return
        if self.layers.arrays is None:
            return
        if self.click_mode.currentIndex() == 1:
            info = self.layers.click_roi(x, y)
            self.table.setRowCount(0)
            if info is None:
                self.details.setText(f"no sampled RoI at ({x:.0f}, {y:.0f})")
            else:
                oh, ow = info["output"]
                self.details.setText(
                    f"RoI {info['index']}: {info['class'] if info['label'] else 'background'}, IoU "
                    f"{info['iou']:.2f}; pooled from level {info['level']} (stride {info['stride']:g}) by RoI "
                    f"Align {oh}x{ow}, sampling ratio {info['sampling_ratio']}, aligned={info['aligned']}")
            self._update_counts()
            return
        rows = self.layers.click_anchors(x, y)
        n_gt = len(self.layers.arrays["gt_boxes"])
        heads = ["level", "size", "ratio", "label", "sampled", "objectness"] + [f"IoU gt{j}" for j in range(n_gt)]
        self.table.setColumnCount(len(heads))
        self.table.setHorizontalHeaderLabels(heads)
        self.table.setRowCount(len(rows))
        names = {1: "fg", 0: "bg", -1: "ignored"}
        for r, d in enumerate(rows):
            vals = [str(d["level"]), f"{d['size']:g}", f"{d['ratio']:g}", names[d["label"]],
                    "yes" if d["sampled"] else "", f"{d['objectness']:.3f}"] + [f"{v:.2f}" for v in d["iou"]]
            for c, v in enumerate(vals):
                self.table.setItem(r, c, QTableWidgetItem(v))
        self.details.setText(f"{len(rows)} anchors centred nearest ({x:.0f}, {y:.0f}) on "
                             f"{len({d['level'] for d in rows})} levels")
        self._update_counts()

    def hover_text(self, x: float, y: float) -> str:
        return self.yolo.hover_text(x, y) if self.yolo.active() else self.layers.hover_text(x, y)

    def on_cursor_moved(self, x: float, y: float) -> None:
        if self.yolo.active():
            self.yolo.on_cursor_moved(x, y)
            return
        text = self.layers.hover_text(x, y)
        if text != self._last_tip:
            self._last_tip = text
            if text:
                QToolTip.showText(QCursor.pos() + QPoint(12, 12), text)
            else:
                QToolTip.hideText()
            self.status_message.emit(text)
