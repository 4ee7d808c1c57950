"""The "Inside the CNN" dock: a checkpoint's layer tree, feature maps, Grad-CAM and BN statistics.

``InternalsDock(session, bridge)`` picks a run with a checkpoint and, for the session's current image,
submits ``jobs.inspect_job`` through the bridge ('tasks' lane) — debounced, and only while the dock is on
screen (``set_active``) — whenever the image, the run, the layer or the Grad-CAM target changes; a newer
request cancels the older one and late events of an older job are dropped. Its result fills:

- "Feature maps": the layer tree (output shape, stride, receptive field; choosing a row recomputes) and
  the channel grid (``feature_grid``); hovering a cell outlines on the canvas the input region it sees
  (receptive field, original pixels) and one stride step around its centre (``overlay.InternalsOverlays``);
- "Grad-CAM": the target (detections with their scores, classes, tags; default the engine's: top
  detection / most frequent class / highest tag), the map blended over the image with an opacity slider,
  and the explained box;
- "BatchNorm": ``bn_view.BNStatsView`` (a run's normalisation statistics over steps, a second run to compare).

Nothing here runs a model or reads metrics on the GUI thread.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.events import ArraysReady, Event
from gui.bridge import EngineBridge
from gui.dock_feature import ImageJobPanel
from gui.internals.arrays import cell_rf_box, cell_step_box, pair_text, shape_text
from gui.internals.bn_view import BNStatsView
from gui.internals.feature_grid import FeatureGridPanel
from gui.internals.jobs import inspect_job
from gui.internals.layer_tree import LayerTreeView
from gui.internals.overlay import RF_COLOR, STEP_COLOR, InternalsOverlays
from gui.session import Session

DEBOUNCE_MS = 250
LANE = "tasks"


def _num(v: object, digits: int = 1) -> str:
    return f"{float(v):.{digits}f}".rstrip("0").rstrip(".")


class InternalsDock(ImageJobPanel):
    """See the module docstring. ``arrays``/``meta``: the result on screen; ``handle``: the newest job."""

    result_shown = Signal(dict)  # meta of the result now drawn
    job = inspect_job
    lane = LANE
    no_run_text = "train a model first: the dock looks inside a trained run's checkpoint"

    def __init__(self, session: Session, bridge: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(session, bridge, DEBOUNCE_MS, parent)
        self.overlays = InternalsOverlays()
        self.arrays: dict | None = None
        self.meta: dict = {}
        self.layer: str | None = None  # None: the engine's default layer
        self.target: int | None = None  # None: the engine's default target
        self._build()
        self.overlays.set_shown(False)

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self._build_run_row(root, "The checkpoint looked into: a training run's best (else last) weights")
        self.tabs = QTabWidget(self)
        root.addWidget(self.tabs, 1)

        # feature maps: layer tree above the grid
        feat = QWidget(self)
        fl = QVBoxLayout(feat)
        fl.setContentsMargins(0, 4, 0, 0)
        self.layer_info = QLabel("", feat)
        self.layer_info.setWordWrap(True)
        self.layer_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        split = QSplitter(Qt.Orientation.Vertical, feat)
        self.tree = LayerTreeView(split)
        self.tree.layer_chosen.connect(self._on_layer_chosen)
        self.grid = FeatureGridPanel(split)
        self.grid.cell_hovered.connect(self._on_cell_hovered)
        self.grid.hover_left.connect(self._on_hover_left)
        split.addWidget(self.tree)
        split.addWidget(self.grid)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        fl.addWidget(self.layer_info)
        fl.addWidget(split, 1)
        legend = QLabel(f"Hover a cell: <span style='color:{RF_COLOR}'>■</span> receptive field, "
                        f"<span style='color:{STEP_COLOR}'>■</span> one stride step, on the image.", feat)
        legend.setWordWrap(True)
        fl.addWidget(legend)
        self.tabs.addTab(feat, "Feature maps")

        # Grad-CAM
        cam = QWidget(self)
        form = QFormLayout(cam)
        self.target_combo = QComboBox(cam)
        self.target_combo.setToolTip("What Grad-CAM explains: a detection (by score), a class, or a tag")
        self.target_combo.activated.connect(self._on_target_chosen)
        form.addRow("Target:", self.target_combo)
        self.cam_layer_combo = QComboBox(cam)
        self.cam_layer_combo.setToolTip("The layer whose activations and gradients make the map (same as Feature maps)")
        self.cam_layer_combo.activated.connect(self._on_cam_layer_chosen)
        form.addRow("Layer:", self.cam_layer_combo)
        self.show_cam = QCheckBox("show on the image", cam)
        self.show_cam.setChecked(True)
        self.show_cam.toggled.connect(self._on_show_cam)
        form.addRow("", self.show_cam)
        op = QHBoxLayout()
        self.opacity = QSlider(Qt.Orientation.Horizontal, cam)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.opacity_label = QLabel("50 %", cam)
        self.opacity_label.setMinimumWidth(40)
        op.addWidget(self.opacity, 1)
        op.addWidget(self.opacity_label)
        form.addRow("Opacity:", op)
        self.cam_info = QLabel("", cam)
        self.cam_info.setWordWrap(True)
        self.cam_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.cam_info)
        self.tabs.addTab(cam, "Grad-CAM")

        # BatchNorm statistics
        self.bn = BNStatsView(self.bridge, self)
        self.tabs.addTab(self.bn, "BatchNorm")

    # -- wiring ---------------------------------------------------------------------------------
    def connect_canvas(self, canvas: object) -> None:
        """Draw the overlays in the canvas scene (scene coordinates = image pixels)."""
        self.overlays.attach(canvas.scene())

    def set_active(self, on: bool) -> None:
        """The dock is on screen (computes, shows its overlays) or not (computes nothing, hides them)."""
        self.active = bool(on)
        self.overlays.set_shown(self.active)
        if self.active and self._dirty:
            self.schedule()

    def refresh_runs(self) -> None:
        """Runs with a checkpoint (Model) and every run (BatchNorm), newest first; keeps the choice if it can."""
        store = self.session.store
        runs = store.runs() if store is not None else []
        keep = self.fill_runs((r for r in runs if r.checkpoint), "no trained run yet")
        self.bn.set_runs(self.project(), runs)
        if self.run_id() != keep:
            self._reset_model()

    # -- requests -------------------------------------------------------------------------------
    def config(self) -> dict | None:
        project, image, run = self.project(), self.session.image_id, self.run_id()
        if not project or image is None or run is None:
            return None
        return {"project": project, "image": int(image), "run": run, "layer": self.layer, "target": self.target}

    def busy_text(self) -> str:
        return "computing feature maps and Grad-CAM…"

    def _on_job_event(self, e: Event) -> None:
        if self.handle is None or e.job != self.handle.id:
            return  # an older job's late event
        if isinstance(e, ArraysReady) and e.kind == "internals":
            self.show_result(e.arrays, e.meta)

    def _on_job_failed(self, message: str) -> None:
        if self.sender() is not self.handle:
            return
        self.status.setText(f"failed: {message}")
        self.session.show_status(f"Inside the CNN: {message}")

    # -- result ---------------------------------------------------------------------------------
    def show_result(self, arrays: dict, meta: dict) -> None:
        """Draw a result (arrays: docs/internals.md; meta: ``jobs.inspect_job``)."""
        if meta.get("image_id") != self.session.image_id:
            return
        same_layer = self.arrays is not None and str(self.arrays["layer"]) == str(arrays["layer"])
        self.arrays, self.meta = arrays, dict(meta)
        self.layer = str(arrays["layer"])
        self.tree.set_layers(arrays, meta.get("layer_shapes"))
        self._fill_cam_layers(arrays, meta.get("layer_shapes") or [])
        self.grid.set_feature(arrays["feature"], arrays["channel_order"], arrays["channel_mean"], keep_page=same_layer)
        self._show_layer_info()
        self._fill_targets()
        self._show_cam()
        self.overlays.set_cell(None)
        step = f" · step {meta['step']}" if meta.get("step") is not None else ""
        self.status.setText(f"{meta.get('task', '')} run {meta.get('run_id', '?')}{step} · image "
                            f"{meta.get('image_id')} · layer {self.layer}")
        self.result_shown.emit(self.meta)

    def _show_layer_info(self) -> None:
        a = self.arrays
        c, h, w = a["feature"].shape
        ih, iw = (int(v) for v in a["input_size"])
        H, W = (int(v) for v in a["image_size"])
        sx, sy = (float(v) for v in a["cell_step"])
        self.layer_info.setText(
            f"<b>{a['layer']}</b> · output {shape_text((c, h, w))} · stride {pair_text(a['stride'])} px · "
            f"receptive field {pair_text(a['receptive_field'])} px (model input {ih} × {iw}; image {H} × {W}: "
            f"one cell = {_num(sx)} × {_num(sy)} image px)")

    def _fill_cam_layers(self, arrays: dict, shapes: list) -> None:
        names = [str(n) for n, shape in zip(arrays["layers"].tolist(), shapes) if shape and len(shape) == 3]
        combo = self.cam_layer_combo
        if [combo.itemText(k) for k in range(combo.count())] != names:
            combo.clear()
            combo.addItems(names)
        combo.setCurrentIndex(combo.findText(str(arrays["layer"])))

    def _fill_targets(self) -> None:
        a, meta = self.arrays, self.meta
        self.target_combo.clear()
        for t in meta.get("targets") or []:
            kind = meta.get("kind")
            if kind == "detection":
                text = f"detection {t['index']}: {t['name']} · score {t['score']:.3f}"
            elif kind == "classification":
                text = f"tag {t['name']} · p {t['score']:.3f}"
            else:
                text = f"class {t['name']} · {100 * t['score']:.1f} % of pixels"
            self.target_combo.addItem(text, int(t["index"]))
        if "target_index" in a:
            self.target_combo.setCurrentIndex(max(0, self.target_combo.findData(int(a["target_index"]))))
        self.target_combo.setEnabled(self.target_combo.count() > 0)

    def _show_cam(self) -> None:
        a, meta = self.arrays, self.meta
        if a is None or "gradcam" not in a:
            self.overlays.heatmap.set_map(None)
            self.overlays.set_target(None)
            self.cam_info.setText("no Grad-CAM for this result")
            return
        self.overlays.heatmap.set_map(a["gradcam"] if self.show_cam.isChecked() else None)
        names = meta.get("label_names") or []
        label = int(a["target_label"])
        name = names[label] if 0 <= label < len(names) else ("nothing" if label < 0 else str(label))
        box = np.asarray(a["target_box"], np.float64)
        self.overlays.set_target(box if self.show_cam.isChecked() else None, name)
        score = float(a["target_score"])
        text = f"Explains <b>{name}</b>" + (f" (score {score:.3f})" if np.isfinite(score) else "")
        text += f" at layer <b>{a['layer']}</b>: deep layers give coarse, class-specific maps, early ones fine edges."
        if np.isfinite(box).all():
            text += " Box: " + ", ".join(_num(v) for v in box) + " (image px)."
        if meta.get("notice"):
            text += f"<br><i>{meta['notice']}</i>"
        self.cam_info.setText(text)

    # -- user actions ---------------------------------------------------------------------------
    def _reset_model(self) -> None:
        self.layer, self.target = None, None
        self.arrays, self.meta = None, {}
        self.tree.clear_layers()
        self.grid.set_feature(None)
        self.target_combo.clear()
        self.cam_layer_combo.clear()
        self.overlays.clear()
        self.layer_info.setText("")
        self.schedule()

    def on_image_changed(self, _image_id: int | None) -> None:
        self.target = None
        self.overlays.clear()  # the old image's maps would lie about the new one
        self.schedule()

    def on_project_closed(self) -> None:
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
        self.handle = None
        self.arrays, self.meta = None, {}
        self.layer, self.target = None, None
        self.overlays.clear()
        self.grid.set_feature(None)
        self.tree.clear_layers()
        self.target_combo.clear()
        self.cam_layer_combo.clear()
        self.layer_info.setText("")
        self.status.setText("")

    def _on_run_changed(self, _index: int) -> None:
        self._reset_model()

    def _on_layer_chosen(self, name: str) -> None:
        if name != self.layer:
            self.layer = name
            self.schedule()

    def _on_cam_layer_chosen(self, index: int) -> None:
        name = self.cam_layer_combo.itemText(index)
        if name:
            self.tree.select(name)
            self._on_layer_chosen(name)

    def _on_target_chosen(self, index: int) -> None:
        data = self.target_combo.itemData(index)
        if data is not None and (self.arrays is None or int(data) != int(self.arrays.get("target_index", -2))):
            self.target = int(data)
            self.schedule()

    def _on_show_cam(self, _on: bool) -> None:
        self._show_cam()

    def _on_opacity(self, value: int) -> None:
        self.overlays.heatmap.setOpacity(value / 100.0)
        self.opacity_label.setText(f"{value} %")

    def _on_cell_hovered(self, row: int, i: int, j: int) -> None:
        a = self.arrays
        if a is None:
            return
        rf, step = cell_rf_box(a, i, j), cell_step_box(a, i, j)
        H, W = (int(v) for v in a["image_size"])
        self.overlays.set_cell(rf, step, (W, H))
        ch = int(a["channel_order"][row]) if row < len(a["channel_order"]) else row
        value = float(a["feature"][row, i, j])
        self.grid.hover_label.setText(
            f"channel #{ch} (mean {float(a['channel_mean'][row]):.3g}) · cell row {i}, col {j} = {value:.3g} · "
            f"sees x {_num(rf[0])}…{_num(rf[2])}, y {_num(rf[1])}…{_num(rf[3])} (image px)"
            + (", past the image border" if rf[0] < 0 or rf[1] < 0 or rf[2] > W or rf[3] > H else ""))

    def _on_hover_left(self) -> None:
        self.overlays.set_cell(None)
        self.grid.hover_label.setText("")
