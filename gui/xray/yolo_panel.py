"""The X-ray panel's YOLO mode: layer toggles, class legend, NMS sliders and cell inspection.

``XrayPanel`` (gui/xray/panel.py) owns the Capture button, "follow training" and the canvas wiring; when
a capture's ``meta["task"]`` is ``"yolo_v1"`` it hides its Faster R-CNN controls, shows this widget and
hands it the arrays (``show_capture``), the cursor (``on_cursor_moved``) and clicks (``on_canvas_clicked``).
The layers live in ``YoloLayers`` (gui/xray/yolo_layers.py). Slider changes re-run NMS on the captured
pre-NMS pairs on the GUI thread: at most S·S·B·C boxes, a fraction of a millisecond, never in a paint.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGraphicsScene,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gui.widgets.forms import slider_row
from gui.xray.yolo_layers import YOLO_LAYERS, YoloLayers, legend_html

SCORE_STEPS = 1000  # score slider: thousandths (the default threshold is 0.005)


def _swatch(color: str) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(QColor(color))
    return QIcon(pm)


class YoloPanel(QWidget):
    """Controls of the YOLOv1 grid overlay (the layers themselves are scene items in ``self.layers``)."""

    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layers = YoloLayers()
        self._last_tip = ""
        self._build()

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        root.addWidget(self.summary)

        box = QGroupBox("YOLO grid layers")
        grid = QGridLayout(box)
        self.layer_checks: dict[str, QCheckBox] = {}
        self.count_labels: dict[str, QLabel] = {}
        for row, spec in enumerate(YOLO_LAYERS):
            check = QCheckBox(spec.title)
            check.setChecked(spec.visible)
            check.toggled.connect(self._on_layer_toggled)
            check.setProperty("layer", spec.name)
            grid.addWidget(check, row, 0)
            swatches = QHBoxLayout()
            for color, legend in zip(spec.colors, spec.legend or ("",)):
                sw = QLabel()
                sw.setPixmap(_swatch(color).pixmap(12, 12))
                swatches.addWidget(sw)
                if legend:
                    swatches.addWidget(QLabel(legend))
            swatches.addStretch(1)
            grid.addLayout(swatches, row, 1)
            self.count_labels[spec.name] = QLabel("")
            grid.addWidget(self.count_labels[spec.name], row, 2)
            self.layer_checks[spec.name] = check
        root.addWidget(box)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setToolTip("Class colours of the class-probability map (opacity = max probability)")
        root.addWidget(self.legend)

        nms = QGroupBox("Decode (re-runs class-aware NMS on the captured boxes)")
        form = QFormLayout(nms)
        self.sliders: dict[str, QSlider] = {}
        self.slider_labels: dict[str, QLabel] = {}
        for key, title, top in (("score_thresh", "score (prob × conf) >", SCORE_STEPS),
                                ("nms_iou", "NMS IoU", 100)):
            self.sliders[key], self.slider_labels[key] = slider_row(form, title, top, self._on_sliders_changed)
        root.addWidget(nms)

        self.details = QLabel("hover a cell to read its vector; click to pin it here")
        self.details.setWordWrap(True)
        self.details.setFont(QFont("monospace", 8))
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.details)
        root.addStretch(1)
        self._sync_slider_labels()

    # -- wiring -----------------------------------------------------------------------------------
    def attach_scene(self, scene: QGraphicsScene) -> None:
        self.layers.attach(scene)

    def active(self) -> bool:
        return self.layers.arrays is not None

    # -- capture display --------------------------------------------------------------------------
    def show_capture(self, arrays: Mapping[str, np.ndarray], meta: Mapping | None = None) -> str:
        """Draw a YOLOv1 capture; returns a one-line summary for the panel's status."""
        meta = dict(meta or {})
        self.layers.set_capture(arrays, meta)
        f = self.layers.filters
        for s in self.sliders.values():
            s.blockSignals(True)
        self.sliders["score_thresh"].setValue(round(f.score_thresh * SCORE_STEPS))
        self.sliders["nms_iou"].setValue(round(f.nms_iou * 100))
        for s in self.sliders.values():
            s.blockSignals(False)
        self._sync_slider_labels()
        self._update_counts()
        S, B, C = self.layers.grid()
        a = self.layers.arrays
        names = [self.layers.label_name(c + 1) for c in range(C)]
        self.legend.setText(legend_html(names, self.layers.class_colors()))
        n_obj = int(np.asarray(a["yolo_responsible"]).any(-1).sum())
        n_drop = len(a["yolo_dropped_gt"])
        in_s = int(a["input_size"][0])
        self.summary.setText(f"YOLOv1: {S}×{S} grid, B={B}, {C} classes, input {in_s}×{in_s}; "
                             f"{n_obj} object cells, {n_drop} GT dropped (cell shared)")
        self.details.setText("hover a cell to read its vector; click to pin it here")
        what = f"step {meta['step']}" if meta.get("step") is not None else meta.get("notice", "")
        return (f"image {meta.get('image_id', '?')}: YOLOv1 grid {S}×{S}, B={B}, "
                f"{len(a['detections_pre_nms'])} captured pairs {'(live) ' if meta.get('live') else ''}{what}")

    def clear(self) -> None:
        self.layers.clear()
        self._update_counts()
        self.summary.setText("")
        self.legend.setText("")

    def _on_layer_toggled(self, on: bool) -> None:
        name = self.sender().property("layer")
        self.layers.set_visible(str(name), on)

    def set_layer_visible(self, name: str, on: bool) -> None:
        self.layer_checks[name].setChecked(on)

    def _on_sliders_changed(self) -> None:
        f = self.layers.filters
        f.score_thresh = self.sliders["score_thresh"].value() / SCORE_STEPS
        f.nms_iou = self.sliders["nms_iou"].value() / 100
        self._sync_slider_labels()
        self.layers.refresh()
        self._update_counts()

    def _sync_slider_labels(self) -> None:
        self.slider_labels["score_thresh"].setText(f"{self.sliders['score_thresh'].value() / SCORE_STEPS:.3f}")
        self.slider_labels["nms_iou"].setText(f"{self.sliders['nms_iou'].value() / 100:.2f}")

    def _update_counts(self) -> None:
        counts = self.layers.counts()
        for name, lab in self.count_labels.items():
            lab.setText(str(counts.get(name, 0)) if self.active() and name != "hover_cell" else "")

    # -- canvas interaction ----------------------------------------------------------------------
    def hover_text(self, x: float, y: float) -> str:
        return self.layers.hover_text(x, y)

    def on_cursor_moved(self, x: float, y: float) -> None:
        """Outline the cell under the cursor; its vector in a tooltip and the status bar."""
        self.layers.set_hovered(self.layers.cell_at(x, y))
        text = self.layers.hover_text(x, y)
        if text != self._last_tip:
            self._last_tip = text
            if text:
                QToolTip.showText(QCursor.pos() + QPoint(12, 12), text)
            else:
                QToolTip.hideText()
            self.status_message.emit(text.replace("\n", " · "))

    def on_canvas_clicked(self, x: float, y: float, modifiers: int = 0) -> None:
        """Pin the clicked cell's vector in the details."""
        cell = self.layers.cell_at(x, y)
        if cell is not None:
            self.details.setText(self.layers.cell_text(*cell))
