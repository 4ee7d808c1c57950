"""``SegmentationDock``: a segmentation run's prediction on the current image, before and after the dense CRF.

- **Model**: runs of a segmentation task (``deeplab``) with a checkpoint, newest first.
- **CRF**: backend (``fast`` always works; ``exact`` needs pydensecrf: disabled, with how to install it;
  default ``exact`` on a CPU-only machine that has it, where it is the quicker one) and
  the six ``CrfParams`` as sliders + spin boxes. Every change is debounced (``DEBOUNCE_MS``) into one job on
  the bridge's ``tasks`` lane (``jobs.segment_view_job``); the engine keeps the model and the image's
  probabilities, so such a job re-runs only the CRF (its result says ``predicted: False``). A newer request
  cancels the one still running; late events of older jobs are dropped.
- **View**: *Before CRF* / *After CRF* / *Split* (a toggle group) and the split slider: left of the line
  shows the network's argmax, right of it the CRF's. Opacity of the classes; *Uncertainty* adds a layer
  (entropy / log C, split the same way).
- **Accept as mask**: the shown result (before CRF in *Before* mode, else after) becomes mask annotations of
  the image, one per connected class region, provenance ``model:<run>``, through ONE ``AcceptMasks``
  command on the session's undo stack (Ctrl+Z removes them).

Computes only while the dock is on screen (``set_active``); the canvas layers hide with it.
"""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.crf import CrfParams, crf_available
from engine.crf.exact import INSTALL_HINT
from engine.events import ArraysReady, Event
from engine.project.records import RunRecord
from engine.project.shapes import Annotation
from engine.tasks.registry import get_task
from gui.bridge import EngineBridge
from gui.dock_feature import ImageJobPanel
from gui.segmentation.commands import AcceptMasks
from gui.segmentation.jobs import segment_view_job
from gui.segmentation.overlay import Z_UNCERTAINTY, SplitLayer
from gui.segmentation.params import PARAMS, ParamRow
from gui.session import Session

LANE = "tasks"
DEBOUNCE_MS = 200
SPLIT_STEPS = 1000
BACKENDS = (("fast", "fast (torch)"), ("exact", "exact (pydensecrf)"))
MODES = (("before", "Before CRF"), ("after", "After CRF"), ("split", "Split"))


def segmentation_runs(runs: list[RunRecord]) -> list[RunRecord]:
    """Runs with a checkpoint whose model is a segmentation task."""
    out = []
    for r in runs:
        if not r.checkpoint:
            continue
        try:
            if get_task(r.model).kind == "segmentation":
                out.append(r)
        except Exception:  # an unknown model name: not ours to show
            continue
    return out


def default_backend() -> str:
    """``exact`` on a CPU-only machine when pydensecrf is there (the faster one on a CPU), else ``fast``."""
    return "exact" if crf_available() and not torch.cuda.is_available() else "fast"


class SegmentationDock(ImageJobPanel):
    """The dock's panel (module docstring). ``result_shown(meta)`` after each drawn result."""

    result_shown = Signal(dict)
    job = segment_view_job
    lane = LANE
    no_run_text = "train a segmentation model (DeepLab) first: this dock shows its prediction"

    def __init__(self, session: Session, bridge: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(session, bridge, DEBOUNCE_MS, parent)
        self.summaries: list[dict] = []  # the results of the jobs that finished (``predicted`` says if the net ran)
        self.arrays: dict | None = None
        self.meta: dict = {}
        self.params = CrfParams().to_dict()
        self.prediction = SplitLayer("segmentation_prediction")
        self.uncertainty = SplitLayer("segmentation_uncertainty", Z_UNCERTAINTY, draw_line=False)
        self._build()
        self._apply_view()

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self._build_run_row(root, "A segmentation run's checkpoint (its best, else last, weights)")

        view = QGroupBox("View", self)
        vl = QFormLayout(view)
        modes = QHBoxLayout()
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QPushButton] = {}
        for key, text in MODES:
            b = QPushButton(text, view)
            b.setCheckable(True)
            b.setToolTip({"before": "The network's prediction (argmax of its probabilities)",
                          "after": "The prediction after the dense CRF",
                          "split": "Before CRF left of the line, after CRF right of it"}[key])
            self.mode_group.addButton(b)
            self.mode_buttons[key] = b
            modes.addWidget(b)
        self.mode_buttons["split"].setChecked(True)
        self.mode_group.buttonToggled.connect(self._on_mode_toggled)
        vl.addRow(modes)
        self.split_slider = QSlider(Qt.Orientation.Horizontal, view)
        self.split_slider.setRange(0, SPLIT_STEPS)
        self.split_slider.setValue(SPLIT_STEPS // 2)
        self.split_slider.setToolTip("Where the split line is: before CRF on its left, after CRF on its right")
        self.split_slider.valueChanged.connect(self._on_split)
        vl.addRow("Split:", self.split_slider)
        self.opacity = QSlider(Qt.Orientation.Horizontal, view)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.valueChanged.connect(self._on_opacity)
        vl.addRow("Opacity:", self.opacity)
        self.show_uncertainty = QCheckBox("per-pixel uncertainty (entropy / log C)", view)
        self.show_uncertainty.setToolTip("Yellow to red where the probabilities are spread over classes")
        self.show_uncertainty.toggled.connect(self._on_show_uncertainty)
        vl.addRow(self.show_uncertainty)
        root.addWidget(view)

        crf = QGroupBox("Dense CRF", self)
        form = QFormLayout(crf)
        self.backend = QComboBox(crf)
        for key, text in BACKENDS:
            self.backend.addItem(text, key)
        self.backend_note = QLabel("", crf)
        self.backend_note.setWordWrap(True)
        if not crf_available():
            self.backend.model().item(1).setEnabled(False)
            self.backend_note.setText(f"<i>exact is unavailable: {INSTALL_HINT}. fast works without it.</i>")
        self.backend_note.setVisible(bool(self.backend_note.text()))
        self.backend.setCurrentIndex(self.backend.findData(default_backend()))
        self.backend.currentIndexChanged.connect(self._on_backend_changed)
        form.addRow("Backend:", self.backend)
        form.addRow(self.backend_note)
        self.rows: dict[str, ParamRow] = {}
        for spec in PARAMS:
            r = ParamRow(spec, float(self.params[spec.name]), crf)
            r.value_changed.connect(self._on_param_changed)
            self.rows[spec.name] = r
            form.addRow(spec.label + ":", r)
        reset = QPushButton("DeepLab defaults", crf)
        reset.setToolTip("w1 4, θα 60, θβ 5, w2 3, θγ 3, 10 iterations")
        reset.clicked.connect(self._on_reset_params)
        form.addRow(reset)
        root.addWidget(crf)

        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.info)
        self.accept_button = QPushButton("Accept as mask", self)
        self.accept_button.setToolTip("Store the shown result as mask annotations of this image (one per class "
                                      "region, provenance model:<run>); replaces this run's unedited masks "
                                      "here. Undo with Ctrl+Z.")
        self.accept_button.clicked.connect(self.accept)
        root.addWidget(self.accept_button)
        root.addStretch(1)

    # -- wiring ---------------------------------------------------------------------------------
    def connect_canvas(self, canvas: object) -> None:
        """Draw the layers in the canvas scene (scene coordinates = image pixels)."""
        scene = canvas.scene()
        for layer in (self.prediction, self.uncertainty):
            if layer.scene() is not scene:
                scene.addItem(layer)

    def set_active(self, on: bool) -> None:
        """The dock is on screen (computes, shows its layers) or not (computes nothing, hides them)."""
        self.active = bool(on)
        self._apply_view()
        if self.active and self._dirty:
            self.schedule()

    def backend_name(self) -> str:
        return str(self.backend.currentData())

    def mode(self) -> str:
        return next(k for k, b in self.mode_buttons.items() if b.isChecked())

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def accept_source(self) -> str:
        """The result "Accept as mask" stores: ``before`` in Before mode, else ``after``."""
        return "before" if self.mode() == "before" else "after"

    def refresh_runs(self) -> None:
        """Segmentation runs with a checkpoint, newest first; keeps the choice if it can."""
        store = self.session.store
        keep = self.fill_runs(segmentation_runs(store.runs()) if store is not None else [], "no segmentation run yet")
        if self.run_id() != keep:
            self._clear_result()
            self.schedule()

    # -- requests -------------------------------------------------------------------------------
    def config(self) -> dict | None:
        project, image, run = self.project(), self.session.image_id, self.run_id()
        if not project or image is None or run is None or self.session.store is None:
            return None
        colors = {c.id: c.color for c in self.session.store.categories()}
        return {"project": project, "image": int(image), "run": run, "crf": self.backend_name(),
                "crf_params": dict(self.params), "device": "auto", "colors": colors}

    def busy_text(self) -> str:
        return "running the network and the CRF…" if self.arrays is None else "running the CRF…"

    def _on_job_event(self, e: Event) -> None:
        if self.handle is None or e.job != self.handle.id:
            return  # an older job's late event
        if isinstance(e, ArraysReady) and e.kind == "segmentation":
            self.show_result(e.arrays, e.meta)

    def _on_job_finished(self, result: dict) -> None:
        if not result.get("cancelled"):
            self.summaries.append(dict(result))

    def _on_job_failed(self, message: str) -> None:
        if self.sender() is not self.handle:
            return
        self.status.setText(f"failed: {message}")
        self.session.show_status(f"Segmentation: {message}")

    # -- result ---------------------------------------------------------------------------------
    def show_result(self, arrays: dict, meta: dict) -> None:
        """Draw a result (arrays and meta: ``engine.inference.segment`` + ``jobs.segment_view_job``)."""
        if meta.get("image_id") != self.session.image_id:
            return
        self.arrays, self.meta = arrays, dict(meta)
        self.prediction.set_images(arrays["rgba_before"], arrays["rgba_after"])
        self.uncertainty.set_images(arrays["rgba_uncertainty_before"], arrays["rgba_uncertainty_after"])
        self._apply_view()
        regions = meta.get("regions") or {}
        net = "network cached" if not meta.get("predicted") else f"network {meta.get('predict_ms', 0):.0f} ms"
        self.status.setText(f"{meta.get('task', '')} run {meta.get('run_id', '?')} · image {meta.get('image_id')}")
        colors = {c.id: c.color for c in self.session.store.categories()} if self.session.store is not None else {}
        legend = " ".join(f"<span style='color:{colors.get(cid, '#888888')}'>■</span> {name}"
                          for name, cid in zip(meta.get("label_names") or [], meta.get("label_categories") or [])
                          if cid is not None)
        self.info.setText(
            f"{legend}<br>{net} · CRF <b>{meta.get('crf')}</b> {meta.get('crf_ms', 0):.0f} ms · the CRF changed "
            f"{100 * float(meta.get('changed_fraction', 0.0)):.2f} % of the pixels · regions: "
            f"{len(regions.get('before', []))} before, {len(regions.get('after', []))} after")
        self.result_shown.emit(self.meta)

    def _clear_result(self) -> None:
        self.arrays, self.meta = None, {}
        self.prediction.clear()
        self.uncertainty.clear()
        self.info.setText("")
        self._apply_view()

    def _apply_view(self) -> None:
        mode = self.mode()
        for layer in (self.prediction, self.uncertainty):
            layer.set_mode(mode)
            layer.set_split(self.split_slider.value() / SPLIT_STEPS)
        self.split_slider.setEnabled(mode == "split")
        self.prediction.setOpacity(self.opacity.value() / 100.0)
        self.prediction.setVisible(self.active)
        self.uncertainty.setVisible(self.active and self.show_uncertainty.isChecked())
        n = len((self.meta.get("regions") or {}).get(self.accept_source(), [])) if self.meta else 0
        which = "before CRF" if self.accept_source() == "before" else "after CRF"
        self.accept_button.setText(f"Accept as mask ({which}: {n} region{'s' if n != 1 else ''})")
        self.accept_button.setEnabled(self.arrays is not None and n > 0)

    # -- accept ---------------------------------------------------------------------------------
    def accept(self) -> int:
        """Store the shown result as mask annotations in one undoable command; returns how many were added."""
        store, image_id = self.session.store, self.session.image_id
        if store is None or image_id is None or not self.meta or self.meta.get("image_id") != image_id:
            return 0
        provenance = str(self.meta["provenance"])
        known = {c.id for c in store.categories()}
        regions = [r for r in self.meta["regions"][self.accept_source()] if r["category_id"] in known]
        anns = [Annotation(image_id, int(r["category_id"]), r["geometry"], provenance, score=float(r["score"]))
                for r in regions]
        old = [int(a.id) for a in store.annotations(image_id)
               if a.provenance == provenance and a.kind == "mask" and a.edited_at is None and a.id is not None]
        if not anns and not old:
            self.session.show_status("Segmentation: no class region to accept")
            return 0
        which = "before CRF" if self.accept_source() == "before" else "after CRF"
        cmd = AcceptMasks(self.session, image_id, anns, old, f"Accept segmentation ({which}, {len(anns)} masks)")
        try:
            cmd.apply()  # the store first: nothing shows an edit that was not saved
        except Exception as e:
            self.session.show_status(f"Segmentation: the masks were not saved: {e}")
            return 0
        stack = self.session.undo_stack
        if stack is not None:
            cmd.push_applied()
            stack.push(cmd)
        else:
            self.session.notify_annotations_edited({image_id})
        self.session.show_status(f"Accepted {len(anns)} masks ({which}) as {provenance}"
                                 + (f", replacing {len(old)}" if old else ""))
        return len(anns)

    # -- user actions ---------------------------------------------------------------------------
    def on_image_changed(self, _image_id: int | None) -> None:
        self._clear_result()  # the old image's result would lie about the new one
        self.schedule()

    def on_project_closed(self) -> None:
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
        self.handle = None
        self._clear_result()
        self.status.setText("")

    def _on_run_changed(self, _index: int) -> None:
        self._clear_result()
        self.schedule()

    def _on_backend_changed(self, _index: int) -> None:
        self.schedule()

    def _on_param_changed(self, name: str, value: float) -> None:
        self.params[name] = int(round(value)) if name == "iterations" else float(value)
        self.schedule()

    def _on_reset_params(self) -> None:
        self.params = CrfParams().to_dict()
        for name, row in self.rows.items():
            row.set_value(float(self.params[name]))
        self.schedule()

    def _on_mode_toggled(self, _button: object, checked: bool) -> None:
        if checked:
            self._apply_view()

    def _on_split(self, _value: int) -> None:
        self._apply_view()

    def _on_opacity(self, _value: int) -> None:
        self._apply_view()

    def _on_show_uncertainty(self, _on: bool) -> None:
        self._apply_view()
