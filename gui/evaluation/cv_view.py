"""Cross-validation and model selection: a form that starts ``engine.train.cv.cv_job`` through the
bridge, a progress bar, the comparison table and "Retrain best on all data".

The form: k (folds), seed, minutes per fold (0 = no limit), base training options (a JSON object of
``TrainConfig`` fields, pre-filled from the project's saved Train settings, store meta
``train_settings``) and the candidates, one JSON object of overrides per table row. Folds are
stratified and stored in the project by the job. The table shows each candidate's mean ± std of the
task's selection metric and every fold's value; the best candidate (by the metric's direction) is
marked. "Retrain best" submits an ordinary ``engine.train.job.train_job`` (base + best overrides,
the project's train/val splits) on the bridge's ``train`` lane, the lane the Train panel uses.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.config import ConfigError, TrainConfig
from engine.events import Event, Notice, Progress, RunFinished, RunStarted, StepLosses
from engine.jobs import Job
from engine.train.cv import cv_job
from engine.train.job import train_job
from gui.bridge import EngineBridge, JobHandle
from gui.evaluation.cv_table import fill_cv_table
from gui.evaluation.tables import InfoLabel, fmt, make_table

TRAIN_LANE = "train"
PER_RUN = ("project", "resume", "train_ids", "val_ids", "run_name")  # never part of a candidate's base
KNOWN = {f.name for f in fields(TrainConfig)}


class FormError(ValueError):
    """The form cannot start: ``str(e)`` says which field and why."""


def base_from_settings(raw: str | None) -> dict:
    """The base options from the project's saved Train settings (JSON): known fields that differ from the
    defaults, none of the per-run ones."""
    try:
        saved = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(saved, dict):
        return {}
    defaults = TrainConfig().to_dict()  # only what differs from the defaults: the same config, readable
    return {k: v for k, v in saved.items() if k in KNOWN and k not in PER_RUN and v != defaults.get(k)}


class CvPanel(QWidget):
    run_started = Signal(str)  # a status line: a CV or retraining job was started
    runs_changed = Signal()  # a CV fold or a retraining run finished: the run lists are stale

    def __init__(self, bridge: EngineBridge | None = None, parent: QWidget | None = None,
                 cv: Job = cv_job, train: Job = train_job) -> None:
        super().__init__(parent)
        self.bridge, self.cv, self.train = bridge, cv, train
        self.project: str | None = None
        self.handle: JobHandle | None = None
        self.retrain_handle: JobHandle | None = None
        self.result: dict | None = None
        self._base_used: dict = {}
        self._fold_runs = 0
        self._jobs_total = 1
        self._run_total_steps = 0

        self.folds = QSpinBox(self)
        self.folds.setRange(2, 20)
        self.folds.setValue(5)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setMaximumWidth(110)
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0, 24 * 60)
        self.minutes.setDecimals(1)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.base = QLineEdit(self)
        self.base.setPlaceholderText('{"model": "faster_rcnn", "backbone": "tiny", "epochs": 10}')
        self.base.setToolTip("Training options every candidate starts from (TrainConfig fields, JSON object);\n"
                             "filled from this project's Train settings")
        self.candidates = QTableWidget(0, 1, self)
        self.candidates.setHorizontalHeaderLabels(["candidate overrides (JSON object)"])
        self.candidates.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.candidates.verticalHeader().setDefaultSectionSize(20)
        self.candidates.setToolTip('One candidate per row, e.g. {"optimizer": "sgd", "lr": 0.01}; {} = the base')
        add, remove = QPushButton("+", self), QPushButton("−", self)
        add.setToolTip("Add a candidate")
        remove.setToolTip("Remove the selected candidate")
        add.clicked.connect(self._on_add)
        remove.clicked.connect(self._on_remove)
        for b in (add, remove):
            b.setFixedWidth(28)
        self.start_button = QPushButton("Start cross-validation", self)
        self.start_button.clicked.connect(self._on_start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        self.status = InfoLabel("", self)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        nums = QHBoxLayout()
        for label, w in (("k", self.folds), ("seed", self.seed), ("per fold", self.minutes)):
            nums.addWidget(QLabel(label, self))
            nums.addWidget(w)
        nums.addStretch(1)
        form.addRow("Folds:", nums)
        form.addRow("Base options:", self.base)
        cand_row = QHBoxLayout()
        cand_row.addWidget(self.candidates, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        cand_row.addLayout(buttons)
        form.addRow("Candidates:", cand_row)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(form, 1)
        ll.addLayout(run_row)
        ll.addWidget(self.status)

        self.table = make_table(("candidate", "config", "mean ± std"), self, sortable=False)
        self.retrain_button = QPushButton("Retrain best on all data", self)
        self.retrain_button.setToolTip("Train the best candidate (base + its overrides) on the train split,\n"
                                       "validated on val, as an ordinary run")
        self.retrain_button.clicked.connect(self._on_retrain)
        self.retrain_button.setEnabled(False)
        self.metric_label = InfoLabel("No cross-validation yet.", self)
        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.metric_label)
        rl.addWidget(self.table, 1)
        rb = QHBoxLayout()
        rb.addStretch(1)
        rb.addWidget(self.retrain_button)
        rl.addLayout(rb)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([400, 600])  # the comparison table gets the larger share
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)
        self.set_candidates([{}])

    # -- form ------------------------------------------------------------------------------------------
    def set_project(self, project: str | None, base: dict | None = None) -> None:
        """Follow a project: its base options (saved Train settings); results of another project go."""
        if project != self.project:
            for h in (self.handle, self.retrain_handle):  # its runs belong to the project that is going
                if h is not None:
                    h.cancel()
            self.result = None
            self._fill_results()
        self.project = project
        self.base.setText(json.dumps(base or {}))
        self.base.setCursorPosition(0)

    def set_candidates(self, configs: list[dict]) -> None:
        self.candidates.setRowCount(0)
        for c in configs:
            self._add_row(json.dumps(c))

    def _add_row(self, text: str) -> None:
        r = self.candidates.rowCount()
        self.candidates.insertRow(r)
        self.candidates.setItem(r, 0, QTableWidgetItem(text))

    def _on_add(self) -> None:
        self._add_row("{}")
        self.candidates.setCurrentCell(self.candidates.rowCount() - 1, 0)
        self.candidates.editItem(self.candidates.item(self.candidates.rowCount() - 1, 0))

    def _on_remove(self) -> None:
        r = self.candidates.currentRow()
        if r >= 0 and self.candidates.rowCount() > 1:
            self.candidates.removeRow(r)

    @staticmethod
    def _json_object(text: str, what: str) -> dict:
        try:
            d = json.loads(text or "{}")
        except ValueError as e:
            raise FormError(f"{what}: not JSON ({e})") from e
        if not isinstance(d, dict):
            raise FormError(f"{what}: expected a JSON object like {{\"lr\": 0.01}}")
        return d

    def config(self) -> dict:
        """The cv_job config of the form (raises FormError naming the field that is wrong)."""
        if not self.project:
            raise FormError("open a project first")
        base = self._json_object(self.base.text(), "base options")
        base = {k: v for k, v in base.items() if k not in ("project",)}
        cands = []
        for r in range(self.candidates.rowCount()):
            item = self.candidates.item(r, 0)
            cands.append(self._json_object(item.text() if item else "", f"candidate {r + 1}"))
        if not cands:
            cands = [{}]
        for i, c in enumerate(cands):
            try:
                TrainConfig.from_dict({**base, **c, "project": self.project}).validate()
            except (ConfigError, TypeError) as e:
                raise FormError(f"candidate {i + 1}: {e}") from e
        return {"project": self.project, "folds": self.folds.value(), "seed": self.seed.value(),
                "splits": ["train", "val"], "base": base, "configs": cands,
                "max_minutes_per_fold": self.minutes.value()}

    # -- cross-validation --------------------------------------------------------------------------------
    def _lane_free(self) -> bool:
        if self.bridge is None:
            self.status.setText("no engine bridge")
            return False
        if self.bridge.is_busy(TRAIN_LANE):
            self.status.setText("a training run is going: wait for it or stop it first")
            return False
        return True

    def start(self) -> JobHandle | None:
        """Start the CV job of the form; returns its handle (None when the form or the lane refuses)."""
        try:
            cfg = self.config()
        except FormError as e:
            self.status.setText(str(e))
            return None
        if not self._lane_free():
            return None
        assert self.bridge is not None
        self._base_used = dict(cfg["base"])
        self._jobs_total = max(1, len(cfg["configs"]) * cfg["folds"])
        self._fold_runs = 0
        self._run_total_steps = 0
        self.handle = h = self.bridge.submit(self.cv, cfg, TRAIN_LANE)
        h.event.connect(self._on_cv_event)
        h.finished.connect(self._on_cv_finished)
        h.failed.connect(self._on_cv_failed)
        self._set_running(True)
        self.progress.setValue(0)
        self.progress.setFormat(f"0 / {self._jobs_total} fold runs")
        self.status.setText(f"cross-validating {len(cfg['configs'])} candidate(s) over {cfg['folds']} folds…")
        self.run_started.emit(f"cross-validation started: {self._jobs_total} fold runs")
        return h

    def _on_start(self) -> None:
        self.start()

    def _on_cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.status.setText("cancelling after the current step…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.retrain_button.setEnabled(not running and self.result is not None)

    def _on_cv_event(self, e: Event) -> None:
        if isinstance(e, RunStarted):
            self._run_total_steps = int(e.total_steps)
        elif isinstance(e, StepLosses):
            part = e.step / self._run_total_steps if self._run_total_steps else 0.0
            self._show_progress(self._fold_runs + min(1.0, part))
        elif isinstance(e, RunFinished):
            self._fold_runs += 1
            self._show_progress(self._fold_runs)
            self.runs_changed.emit()
        elif isinstance(e, Progress) and e.message:
            self.status.setText(e.message)  # the CV's own: "config c/C, fold f/k"
        elif isinstance(e, Notice) and e.message and (e.level != "info" or e.message.startswith("config ")):
            self.status.setText(e.message)  # a fold's result, or a warning of a fold's training

    def _show_progress(self, done: float) -> None:
        self.progress.setValue(int(1000 * min(1.0, done / self._jobs_total)))
        self.progress.setFormat(f"{min(int(done), self._jobs_total)} / {self._jobs_total} fold runs")

    def _on_cv_finished(self, result: dict) -> None:
        self.handle = None
        if result.get("cancelled"):
            self._set_running(False)
            self.progress.setFormat("cancelled")
            self.status.setText("cross-validation cancelled")
            return
        self.result = result
        self.progress.setValue(1000)
        self.progress.setFormat(f"{self._jobs_total} / {self._jobs_total} fold runs")
        self._fill_results()
        self._set_running(False)
        best = result["configs"][result["best"]]
        self.status.setText(f"done: best candidate {result['best'] + 1}, {result['metric']} "
                            f"{fmt(best['mean'])} ± {fmt(best['std'])}")

    def _on_cv_failed(self, message: str) -> None:
        self.handle = None
        self._set_running(False)
        self.progress.setFormat("failed")
        self.status.setText(f"cross-validation failed: {message}")

    # -- results ---------------------------------------------------------------------------------------------
    def _fill_results(self) -> None:
        self.metric_label.setText(fill_cv_table(self.table, self.result))
        self.retrain_button.setEnabled(self.result is not None and self.handle is None)

    def best_config(self) -> dict | None:
        """The training config "Retrain best" submits (None before a CV result)."""
        if self.result is None or not self.project:
            return None
        best = self.result["configs"][self.result["best"]]["config"]
        cfg = {**{k: v for k, v in self._base_used.items() if k not in PER_RUN}, **best, "project": self.project}
        cfg["run_name"] = f"cv best (candidate {self.result['best'] + 1})"
        return cfg

    def retrain_best(self) -> JobHandle | None:
        cfg = self.best_config()
        if cfg is None:
            self.status.setText("run a cross-validation first")
            return None
        if not self._lane_free():
            return None
        assert self.bridge is not None
        self.retrain_handle = h = self.bridge.submit(self.train, cfg, TRAIN_LANE)
        h.event.connect(self._on_retrain_event)
        h.finished.connect(self._on_retrain_finished)
        h.failed.connect(self._on_retrain_failed)
        self.retrain_button.setEnabled(False)
        self.start_button.setEnabled(False)
        best = self.result["configs"][self.result["best"]]["config"] if self.result else {}
        self.status.setText(f"retraining the best candidate on all data: {json.dumps(best)}")
        self.run_started.emit("retraining the best cross-validation candidate")
        return h

    def _on_retrain(self) -> None:
        self.retrain_best()

    def _on_retrain_event(self, e: Event) -> None:
        if isinstance(e, RunStarted):
            self._run_total_steps = int(e.total_steps)
            self.status.setText(f"retraining: run {e.run_id} started")
        elif isinstance(e, StepLosses) and self._run_total_steps:
            self.progress.setValue(int(1000 * min(1.0, e.step / self._run_total_steps)))
            self.progress.setFormat(f"retrain: step {e.step} / {self._run_total_steps}")

    def _on_retrain_finished(self, result: dict) -> None:
        self.retrain_handle = None
        self.start_button.setEnabled(True)
        self.retrain_button.setEnabled(self.result is not None)
        if result.get("cancelled"):
            self.status.setText("retraining cancelled")
            return
        metric = self.result["metric"] if self.result else "map50"
        value = (result.get("metrics") or {}).get(metric, float("nan"))
        self.progress.setValue(1000)
        self.progress.setFormat("retrain: done")
        self.status.setText(f"retrained: run {result.get('run_id')} {result.get('status', '')}, "
                            f"{metric} {fmt(value if value is not None else math.nan)}")
        self.runs_changed.emit()

    def _on_retrain_failed(self, message: str) -> None:
        self.retrain_handle = None
        self.start_button.setEnabled(True)
        self.retrain_button.setEnabled(self.result is not None)
        self.status.setText(f"retraining failed: {message}")
