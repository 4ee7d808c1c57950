"""The Train panel: training options, Start / Pause / Resume / Stop, progress with ETA, messages.

The panel is a form over ``engine.config.TrainConfig``: ``config()`` returns the options as a
``TrainConfig.to_dict()``-shaped dict and ``set_config`` fills the form from one (unknown keys are
ignored, so settings saved by an older version still load). It starts nothing itself: buttons emit
``start_requested(dict)``, ``pause_requested``, ``resume_requested``, ``stop_requested`` and
``preview_requested(dict)``; ``gui.training.controller.TrainingController`` runs the job and feeds the panel
back through ``on_*`` methods.
"""

from __future__ import annotations

from dataclasses import fields

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import TrainConfig
from engine.project.store import SPLITS
from gui.training.options import SUMMARY_METRICS, backbones, early_stop_metrics, models

FieldWidget = QCheckBox | QComboBox | QDoubleSpinBox | QSpinBox | QLineEdit | QGroupBox
STATES = ("idle", "running", "paused", "stopping")


def format_eta(seconds: float) -> str:
    """'1:02:03', '4:05' or '0:07' for a duration in seconds ('—' when unknown)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class TrainPanel(QWidget):
    """Form + controls for one training run at a time."""

    start_requested = Signal(dict)
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    preview_requested = Signal(dict)
    settings_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, FieldWidget] = {}
        self._base = TrainConfig().to_dict()  # options the form has no widget for keep these values
        self._auto = dict(self._base)  # what an "auto" spin box (at its minimum) stands for
        self.state = "idle"
        self.total_steps = 0
        form = QWidget(self)
        col = QVBoxLayout(form)
        col.setContentsMargins(0, 0, 0, 0)
        for build in (self._model_box, self._optim_box, self._augment_box, self._stop_box, self._run_box):
            col.addWidget(build(form))
        col.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)

        self.start_button = QPushButton("Start", self)
        self.pause_button = QPushButton("Pause", self)
        self.resume_button = QPushButton("Resume", self)
        self.stop_button = QPushButton("Stop", self)
        self.start_button.clicked.connect(self._on_start)
        self.pause_button.clicked.connect(self._on_pause)
        self.resume_button.clicked.connect(self._on_resume)
        self.stop_button.clicked.connect(self._on_stop)
        buttons = QGridLayout()  # 2 x 2 keeps the dock narrow
        for i, b in enumerate((self.start_button, self.stop_button, self.pause_button, self.resume_button)):
            buttons.addWidget(b, i // 2, i % 2)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        self.messages = QPlainTextEdit(self)
        self.messages.setReadOnly(True)
        self.messages.setMaximumBlockCount(500)
        self.messages.setMaximumHeight(110)
        self.messages.setPlaceholderText("Messages from the training job appear here.")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(scroll, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status_label)
        lay.addWidget(self.messages)
        self.set_state("idle")

    # -- form building ------------------------------------------------------------------------
    def _bind(self, name: str, widget: FieldWidget, tip: str = "") -> FieldWidget:
        self.fields[name] = widget
        if tip:
            widget.setToolTip(tip)
        signal = {QCheckBox: "toggled", QComboBox: "currentIndexChanged", QDoubleSpinBox: "valueChanged",
                  QSpinBox: "valueChanged", QLineEdit: "textChanged", QGroupBox: "toggled"}[type(widget)]
        getattr(widget, signal).connect(self._on_field_changed)
        return widget

    def _combo(self, parent: QWidget, name: str, items: list[tuple[str, str]], tip: str = "") -> QComboBox:
        box = QComboBox(parent)
        for text, value in items:
            box.addItem(text, value)
        self._bind(name, box, tip)
        return box

    def _spin(self, parent: QWidget, name: str, lo: int, hi: int, tip: str = "", special: str = "") -> QSpinBox:
        box = QSpinBox(parent)
        box.setRange(lo, hi)
        if special:
            box.setSpecialValueText(special)
        self._bind(name, box, tip)
        return box

    def _dspin(self, parent: QWidget, name: str, lo: float, hi: float, decimals: int, step: float,
               tip: str = "") -> QDoubleSpinBox:
        box = QDoubleSpinBox(parent)
        box.setRange(lo, hi)
        box.setDecimals(decimals)
        box.setSingleStep(step)
        self._bind(name, box, tip)
        return box

    def _check(self, parent: QWidget, name: str, text: str, tip: str = "") -> QCheckBox:
        box = QCheckBox(text, parent)
        self._bind(name, box, tip)
        return box

    def _model_box(self, parent: QWidget) -> QGroupBox:
        g = QGroupBox("Model and data", parent)
        f = QFormLayout(g)
        f.addRow("Model", self._combo(g, "model", list(models()), "every registered model family "
                                      "(anchorlab models)"))
        f.addRow("Backbone", self._combo(g, "backbone", [(b, b) for b in backbones()],
                                          "tiny trains on a laptop CPU in minutes; the others want a GPU"))
        self.fields["model"].currentIndexChanged.connect(self._on_model_changed)
        f.addRow("", self._check(g, "pretrained", "Use local pretrained weights",
                                 "Use torchvision weights found on this machine; otherwise train from scratch"))
        f.addRow("BatchNorm", self._combo(g, "norm", [("auto (frozen with pretrained weights)", "auto"),
                                                      ("trainable", "bn"), ("frozen", "frozen"),
                                                      ("GroupNorm (tiny only)", "gn")]))
        splits = [(s, s) for s in SPLITS]
        f.addRow("Train split", self._combo(g, "train_split", splits))
        f.addRow("Val split", self._combo(g, "val_split", [*splits, ("none (no validation)", "")]))
        f.addRow("Device", self._combo(g, "device", [(d, d) for d in ("auto", "cuda", "mps", "cpu")],
                                       "auto picks CUDA, then MPS, then CPU"))
        return g

    def _optim_box(self, parent: QWidget) -> QGroupBox:
        g = QGroupBox("Optimisation", parent)
        f = QFormLayout(g)
        f.addRow("Epochs", self._spin(g, "epochs", 0, 100_000,
                                      "auto = as many as fit: unbounded under 'Stop after', else 10", "auto"))
        f.addRow("Batch size", self._spin(g, "batch_size", 1, 4096))
        f.addRow("Learning rate", self._dspin(g, "lr", 1e-6, 10.0, 6, 0.001))
        f.addRow("Optimizer", self._combo(g, "optimizer", [("SGD + momentum", "sgd"), ("AdamW", "adamw")]))
        f.addRow("Momentum", self._dspin(g, "momentum", 0.0, 0.999, 3, 0.01))
        f.addRow("Weight decay (L2)", self._dspin(g, "weight_decay", 0.0, 1.0, 6, 1e-4))
        f.addRow("L1", self._dspin(g, "l1", 0.0, 1.0, 7, 1e-6, "L1 penalty on the weights, plotted as loss_l1"))
        f.addRow("LR schedule", self._combo(g, "schedule", [("cosine", "cosine"), ("step", "step"),
                                                            ("constant", "constant")]))
        f.addRow("Step every (epochs)", self._spin(g, "step_epochs", 1, 100_000))
        f.addRow("Step factor", self._dspin(g, "step_gamma", 0.0, 1.0, 3, 0.05))
        f.addRow("Warm-up steps", self._spin(g, "warmup_steps", 0, 1_000_000))
        return g

    def _augment_box(self, parent: QWidget) -> QGroupBox:
        g = QGroupBox("Augmentation", parent)
        lay = QVBoxLayout(g)
        grid = QGridLayout()
        for i, (name, text) in enumerate((("augment_flip", "flip"), ("augment_scale", "scale jitter"),
                                          ("augment_crop", "crop"), ("augment_color", "colour jitter"))):
            grid.addWidget(self._check(g, name, text), i // 2, i % 2)
        lay.addLayout(grid)
        self.preview_button = QPushButton("Preview augmentations…", g)
        self.preview_button.clicked.connect(self._on_preview)
        lay.addWidget(self.preview_button)
        return g

    def _stop_box(self, parent: QWidget) -> QGroupBox:
        g = QGroupBox("Early stopping", parent)
        g.setCheckable(True)
        self._bind("early_stop", g)
        f = QFormLayout(g)
        f.addRow("Metric", self._combo(g, "early_stop_metric", self._metric_items("faster_rcnn"),
                                       "the model's metrics: higher is better; val_loss: lower is better"))
        f.addRow("Patience (evals)", self._spin(g, "early_stop_patience", 1, 10_000))
        f.addRow("Min delta", self._dspin(g, "early_stop_min_delta", 0.0, 10.0, 4, 0.001))
        return g

    def _run_box(self, parent: QWidget) -> QGroupBox:
        g = QGroupBox("Run", parent)
        f = QFormLayout(g)
        f.addRow("", self._check(g, "overfit_one_batch", "Overfit one batch (sanity check)",
                                 "Train on one fixed batch with augmentation off: the loss must fall to ~0"))
        f.addRow("Overfit steps", self._spin(g, "overfit_steps", 1, 100_000))
        f.addRow("Stop after (min)", self._dspin(g, "max_minutes", 0.0, 100_000.0, 1, 5.0,
                                                 "Stop cleanly after this many minutes (0 = no limit)"))
        f.addRow("Min size (px)", self._spin(g, "min_size", 0, 4096, "0 = from the data", "auto"))
        f.addRow("Max size (px)", self._spin(g, "max_size", 0, 8192, "0 = from the data", "auto"))
        f.addRow("Seed", self._spin(g, "seed", 0, 2**31 - 1))
        f.addRow("Follow live", self._spin(g, "xray_every", 0, 1_000_000,
                                           "X-ray the image on the canvas every N steps while training "
                                           "(the X-ray dock follows it); off = 0", "off"))
        f.addRow("BN stats every", self._spin(g, "bn_stats_every", 0, 1_000_000,
                                              "Record BatchNorm statistics every N steps (Inside the CNN dock)",
                                              "off"))
        self.resume_combo = self._combo(g, "resume", [("— (new run)", "")],
                                        "Continue a run from its last checkpoint (raise Epochs to train further)")
        f.addRow("Continue from", self.resume_combo)
        name = QLineEdit(g)
        name.setPlaceholderText("model-backbone")
        f.addRow("Run name", self._bind("run_name", name))
        return g

    def set_resume_choices(self, choices: list[tuple[str, str]]) -> None:
        """Runs that can be continued: [(label, last.pt path)]; keeps the selection if still offered."""
        box = self.resume_combo
        current = box.currentData()
        box.blockSignals(True)
        box.clear()
        box.addItem("— (new run)", "")
        for label, path in choices:
            box.addItem(label, path)
        box.setCurrentIndex(max(0, box.findData(current)))
        box.blockSignals(False)

    @staticmethod
    def _metric_items(model: str) -> list[tuple[str, str]]:
        return [(m or "the model's selection metric", m) for m in early_stop_metrics(model)]

    @staticmethod
    def _refill(box: QComboBox, items: list[tuple[str, str]]) -> None:
        """New items, keeping the current value when the new list has it."""
        current = box.currentData()
        box.blockSignals(True)
        box.clear()
        for text, value in items:
            box.addItem(text, value)
        box.setCurrentIndex(max(0, box.findData(current)))
        box.blockSignals(False)

    def _on_model_changed(self) -> None:
        """Backbones and metrics are the chosen model's (from the task registry)."""
        model = self.fields["model"].currentData()
        self._refill(self.fields["backbone"], [(b, b) for b in backbones(model)])
        self._refill(self.fields["early_stop_metric"], self._metric_items(model))

    # -- config <-> form ----------------------------------------------------------------------
    def config(self) -> dict:
        """The form as a ``TrainConfig.to_dict()`` dict (``project`` left as last set)."""
        out = dict(self._base)
        for name, w in self.fields.items():
            if isinstance(w, QCheckBox | QGroupBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif isinstance(w, QSpinBox) and w.specialValueText() and w.value() == w.minimum():
                out[name] = self._auto[name]  # "auto": the TrainConfig default (0 or None)
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                out[name] = w.value()
            else:
                out[name] = w.text().strip()
        return out

    def set_config(self, config: dict) -> None:
        """Fill the form from ``config``; unknown keys and values a widget cannot show are ignored."""
        known = {f.name for f in fields(TrainConfig)}
        base = TrainConfig().to_dict()
        base.update({k: v for k, v in config.items() if k in known})
        self._base = base
        model_box = self.fields["model"]
        model_box.blockSignals(True)
        model_box.setCurrentIndex(max(0, model_box.findData(base["model"])))
        model_box.blockSignals(False)
        self._on_model_changed()  # the model's backbones and metrics before their values are set
        for name, w in self.fields.items():
            value = base[name]
            w.blockSignals(True)
            try:
                if isinstance(w, QCheckBox | QGroupBox):
                    w.setChecked(bool(value))
                elif isinstance(w, QComboBox):
                    i = w.findData(value)
                    if i >= 0:
                        w.setCurrentIndex(i)
                elif isinstance(w, QSpinBox):
                    w.setValue(w.minimum() if value is None else int(value))
                elif isinstance(w, QDoubleSpinBox):
                    w.setValue(float(value))
                else:
                    w.setText(str(value))
            except (TypeError, ValueError):
                continue
            finally:
                w.blockSignals(False)
        self._sync_enabled()

    def _on_field_changed(self) -> None:
        self._sync_enabled()
        self.settings_changed.emit()

    def _sync_enabled(self) -> None:
        c = self.config()
        self.fields["step_epochs"].setEnabled(c["schedule"] == "step")
        self.fields["step_gamma"].setEnabled(c["schedule"] == "step")
        self.fields["momentum"].setEnabled(c["optimizer"] == "sgd")
        self.fields["overfit_steps"].setEnabled(c["overfit_one_batch"])
        for name in ("augment_flip", "augment_scale", "augment_crop", "augment_color"):
            self.fields[name].setEnabled(not c["overfit_one_batch"])

    # -- buttons ------------------------------------------------------------------------------
    def _on_start(self) -> None:
        self.start_requested.emit(self.config())

    def _on_pause(self) -> None:
        self.pause_requested.emit()

    def _on_resume(self) -> None:
        self.resume_requested.emit()

    def _on_stop(self) -> None:
        self.stop_requested.emit()

    def _on_preview(self) -> None:
        self.preview_requested.emit(self.config())

    def set_state(self, state: str) -> None:
        """idle | running | paused | stopping: enables the buttons that make sense."""
        if state not in STATES:
            raise ValueError(f"unknown train panel state {state!r}")
        self.state = state
        self.start_button.setEnabled(state == "idle")
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(state in ("running", "paused"))
        if state == "paused":
            self.progress.setFormat(self.progress.format().split(" · ")[0] + " · paused")
        elif state == "stopping":
            self.progress.setFormat("stopping…")

    # -- feedback from the controller ---------------------------------------------------------
    def on_run_started(self, run_id: int, total_steps: int, steps_per_epoch: int) -> None:
        self.total_steps = max(1, int(total_steps))
        self.progress.setRange(0, self.total_steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"run #{run_id} · starting")
        self.status_label.setText(f"run #{run_id}: {total_steps} steps, {steps_per_epoch} per epoch")

    def on_step(self, step: int, epoch: int, loss: float, images_per_s: float, eta_s: float) -> None:
        """Progress bar: step of total, ETA and throughput."""
        if step > self.progress.maximum():
            self.progress.setMaximum(step)
        self.progress.setValue(step)
        tail = " · paused" if self.state == "paused" else ""
        self.progress.setFormat(f"%v / %m steps · ETA {format_eta(eta_s)} · {images_per_s:.1f} img/s{tail}")
        self.status_label.setText(f"epoch {epoch + 1} · step {step} · loss {loss:.4f}")

    def on_epoch(self, epoch: int, metrics: dict[str, float], val_loss: float | None, is_best: bool) -> None:
        parts = [f"epoch {epoch + 1}"]
        if val_loss is not None:
            parts.append(f"val loss {val_loss:.4f}")
        parts += [f"{k} {metrics[k]:.3f}" for k in SUMMARY_METRICS if k in metrics]
        if is_best:
            parts.append("(best)")
        self.message(" · ".join(parts))

    def on_finished(self, status: str, metrics: dict[str, float], checkpoint: str, message: str) -> None:
        text = f"run {status}"
        if metrics:
            text += " · " + " · ".join(f"{k} {metrics[k]:.3f}" for k in SUMMARY_METRICS if k in metrics)
        if checkpoint:
            text += f" · checkpoint {checkpoint}"
        if message:
            text += f" · {message}"
        self.message(text, "error" if status == "failed" else "info")
        self.progress.setFormat(f"%v / %m steps · {status}")

    def message(self, text: str, level: str = "info") -> None:
        """Append a line to the message box ('warning' / 'error' lines are marked)."""
        prefix = {"warning": "⚠ ", "error": "✖ "}.get(level, "")
        self.messages.appendPlainText(prefix + text)
        if level == "error":
            self.status_label.setText(prefix + text)
