"""The Evaluation dock's widget: which model and split, matching thresholds, and four tabs —
Report, Errors, Overfitting, Cross-validation.

"Evaluate" submits ``engine.inference.report.report_job`` (the model runs over the split) on the
bridge's ``tasks`` lane; its ``ReportResult`` fills the report and the error browser. Changing the
IoU or score threshold after a report re-submits the job for the same checkpoint and split (after a
short pause, the previous one cancelled): the confusion matrix, TP / FP / FN and the error list are
recomputed in the engine thread, never on the GUI thread. Choosing a run loads its curves through
``curves_job``. Exports: the current view as PNG (a grab of the widget), the tables as CSV and the full
report (report.json + CSV + PNG, ``write_report``) through ``export_job``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.events import Event, Progress
from engine.inference.report import ReportResult, report_job
from engine.jobs import Job
from engine.project.store import Store
from gui.bridge import EngineBridge, JobHandle
from gui.evaluation.cv_view import CvPanel, base_from_settings
from gui.evaluation.errors_view import ErrorBrowser
from gui.evaluation.jobs import curves_job, export_job
from gui.evaluation.overfit_view import OverfitView
from gui.evaluation.report_view import ReportView
from gui.evaluation.tables import InfoLabel

TASKS_LANE = "tasks"
EVAL_SPLITS = ("val", "test", "train")
SETTINGS_KEY = "train_settings"  # the Train panel's saved options: the CV form's base
DEBOUNCE_MS = 350


def run_choices(store: Store) -> list[tuple[str, int, str]]:
    """(label, run id, checkpoint path) for every checkpoint file of the project's runs, newest first."""
    out = []
    for r in reversed(store.runs()):
        summary = r.summary
        ckpts = dict(summary.get("checkpoints") or {})
        if r.checkpoint and "best" not in ckpts:
            ckpts["best"] = r.checkpoint
        metrics = summary.get("metrics") or {}
        best = summary.get("best") or {}
        score = ""
        if best.get("metric") and best.get("value") is not None:
            score = f" · {best['metric']} {float(best['value']):.3f}"
        elif "map50" in metrics:
            score = f" · map50 {float(metrics['map50']):.3f}"
        for kind in ("best", "last"):
            path = ckpts.get(kind)
            if path and Path(path).is_file():
                out.append((f"run {r.id} · {r.name or r.model} · {kind}.pt · {r.status}{score}", r.id, str(path)))
    return out


class EvaluationPanel(QWidget):
    status_message = Signal(str)

    def __init__(self, bridge: EngineBridge | None = None, parent: QWidget | None = None,
                 job: Job = report_job) -> None:
        super().__init__(parent)
        self.bridge, self.job = bridge, job
        self.project: str | None = None
        self.store: Store | None = None  # the session's (GUI thread) store
        self.result: ReportResult | None = None
        self.handle: JobHandle | None = None
        self.curves_handle: JobHandle | None = None
        self.export_handle: JobHandle | None = None
        self._choices: list[tuple[str, int, str]] = []
        self._requested: dict | None = None  # config of the report shown / being computed

        self.model_combo = QComboBox(self)
        self.model_combo.setToolTip("The checkpoint to evaluate: a run's best or last weights")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        refresh = QPushButton("↻", self)
        refresh.setFixedWidth(28)
        refresh.setToolTip("Reload the list of runs")
        refresh.clicked.connect(self._on_refresh)
        self.split_combo = QComboBox(self)
        for s in EVAL_SPLITS:
            self.split_combo.addItem(s)
        self.iou_spin = QDoubleSpinBox(self)
        self.iou_spin.setRange(0.05, 1.0)
        self.iou_spin.setSingleStep(0.05)
        self.iou_spin.setDecimals(2)
        self.iou_spin.setValue(0.5)
        self.iou_spin.setToolTip("A prediction matches an object at IoU ≥ this (confusion matrix, TP/FP/FN)")
        self.score_spin = QDoubleSpinBox(self)
        self.score_spin.setRange(0.0, 1.0)
        self.score_spin.setSingleStep(0.05)
        self.score_spin.setDecimals(2)
        self.score_spin.setValue(0.25)
        self.score_spin.setToolTip("Predictions scored below this are left out of the matrix and the error list\n"
                                   "(AP and the curves use every prediction)")
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_thresholds_settled)
        self.iou_spin.valueChanged.connect(self._on_threshold_changed)
        self.score_spin.valueChanged.connect(self._on_threshold_changed)
        self.evaluate_button = QPushButton("Evaluate", self)
        self.evaluate_button.setToolTip("Run the model over the split and build the report (engine thread)")
        self.evaluate_button.clicked.connect(self._on_evaluate)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setMaximumWidth(140)
        self.progress.setTextVisible(False)
        self.progress.hide()  # shown while a report is computed
        self.status = InfoLabel("", self)
        self.export_button = QToolButton(self)
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_actions: dict[str, QAction] = {
            "png": menu.addAction("Current view as PNG…", self._on_export_png),
            "csv": menu.addAction("Tables as CSV…", self._on_export_csv),
            "report": menu.addAction("Full report (JSON, CSV, PNG)…", self._on_export_report),
        }
        self.export_button.setMenu(menu)

        top = QHBoxLayout()
        top.addWidget(QLabel("Model:", self))
        top.addWidget(self.model_combo, 1)
        top.addWidget(refresh)
        top.addWidget(QLabel("Split:", self))
        top.addWidget(self.split_combo)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.export_button)
        second = QHBoxLayout()
        second.addWidget(QLabel("Matching: IoU ≥", self))
        second.addWidget(self.iou_spin)
        second.addWidget(QLabel("score ≥", self))
        second.addWidget(self.score_spin)
        second.addWidget(self.progress)
        second.addWidget(self.status, 1)

        self.report = ReportView(self)
        self.errors = ErrorBrowser(self)
        self.overfit = OverfitView(self)
        self.cv = CvPanel(bridge, self)
        self.cv.runs_changed.connect(self._on_refresh)
        self.cv.run_started.connect(self.status_message)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.report, "Report")
        self.tabs.addTab(self.errors, "Errors")
        self.tabs.addTab(self.overfit, "Overfitting")
        self.tabs.addTab(self.cv, "Cross-validation")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addLayout(second)
        lay.addWidget(self.tabs, 1)
        self._update_buttons()

    # -- project and runs -----------------------------------------------------------------------------------
    def set_store(self, store: Store | None) -> None:
        """Follow the session's project (None: closed)."""
        self.cancel()
        self.store = store
        self.project = str(store.root) if store is not None else None
        self.result = None
        self._requested = None
        self.report.set_result(None)
        self.errors.set_records([], [])
        self.overfit.set_curves(None)
        self.status.setText("")
        self.refresh_runs()
        self.cv.set_project(self.project, base_from_settings(store.get_meta(SETTINGS_KEY)) if store else None)

    def _on_refresh(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Re-list the runs with checkpoints (a short read of the runs table, as the X-ray model picker does)."""
        keep = self.selection()
        self._choices = run_choices(self.store) if self.store is not None else []
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for label, _run_id, path in self._choices:
            self.model_combo.addItem(label, path)
            self.model_combo.setItemData(self.model_combo.count() - 1, f"{path}", Qt.ItemDataRole.ToolTipRole)
        if not self._choices:
            self.model_combo.addItem("no trained run with a checkpoint yet", None)
        idx = self.model_combo.findData(keep[1]) if keep is not None else 0
        self.model_combo.setCurrentIndex(max(0, idx))
        self.model_combo.blockSignals(False)
        self._update_buttons()
        if self.selection() != keep:
            self._on_model_changed()

    def selection(self) -> tuple[int, str] | None:
        """(run id, checkpoint path) chosen in the model combo."""
        i = self.model_combo.currentIndex()
        if 0 <= i < len(self._choices):
            return self._choices[i][1], self._choices[i][2]
        return None

    def select_checkpoint(self, path: str) -> None:
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(str(path))))

    def _on_model_changed(self, _index: int = 0) -> None:
        sel = self.selection()
        self._update_buttons()
        if sel is None:
            self.overfit.set_curves(None)
            return
        self.load_curves(sel[0])

    def load_curves(self, run_id: int) -> JobHandle | None:
        """Read a run's curves off the GUI thread; they land in the Overfitting tab."""
        if self.bridge is None or self.project is None:
            return None
        if self.curves_handle is not None:
            self.curves_handle.cancel()
        self.curves_handle = h = self.bridge.submit(curves_job, {"project": self.project, "run_id": run_id},
                                                    TASKS_LANE)
        h.finished.connect(self._on_curves_finished)
        h.failed.connect(self._on_curves_failed)
        return h

    def _on_curves_finished(self, res: dict) -> None:
        if self.sender() is not self.curves_handle or res.get("cancelled"):
            return
        self.curves_handle = None
        self.overfit.set_curves(res["curves"])  # the newest request's (older ones are cancelled and ignored)

    def _on_curves_failed(self, message: str) -> None:
        if self.sender() is self.curves_handle:
            self.curves_handle = None
            self.overfit.set_curves(None)
            self.overfit.summary.setText(f"could not read the run's curves: {message}")

    # -- evaluation --------------------------------------------------------------------------------------------
    def config(self) -> dict | None:
        sel = self.selection()
        if sel is None or self.project is None:
            return None
        return {"project": self.project, "checkpoint": sel[1], "split": self.split_combo.currentText(),
                "iou": round(self.iou_spin.value(), 4), "score": round(self.score_spin.value(), 4)}

    def evaluate(self, config: dict | None = None) -> JobHandle | None:
        """Submit the report job (default: the panel's model, split and thresholds); returns its handle."""
        cfg = config or self.config()
        if cfg is None:
            self.status.setText("open a project with a trained run first")
            return None
        if self.bridge is None:
            return None
        if self.handle is not None:
            self.handle.cancel()
        self._requested = dict(cfg)
        self.handle = h = self.bridge.submit(self.job, cfg, TASKS_LANE)
        h.progress.connect(self._on_report_progress)
        h.finished.connect(self._on_report_finished)
        h.failed.connect(self._on_report_failed)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"evaluating {Path(cfg['checkpoint']).parent.name}/{Path(cfg['checkpoint']).name} on "
                            f"{cfg['split']} (IoU ≥ {cfg['iou']:g}, score ≥ {cfg['score']:g})…")
        self._update_buttons()
        return h

    def cancel(self) -> None:
        self._debounce.stop()
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.progress.setRange(0, 1)
        self._update_buttons()

    def _on_evaluate(self) -> None:
        self.evaluate()

    def _on_threshold_changed(self, _value: float) -> None:
        if self._requested is not None:  # a report is shown (or coming): recompute it at the new thresholds
            self._debounce.start()

    def _on_thresholds_settled(self) -> None:
        if self._requested is None:
            return
        cfg = {**self._requested, "iou": round(self.iou_spin.value(), 4), "score": round(self.score_spin.value(), 4)}
        if cfg != self._requested:
            self.evaluate(cfg)

    def _on_report_progress(self, e: Event) -> None:
        if self.sender() is self.handle and isinstance(e, Progress) and e.total:
            self.progress.setRange(0, e.total)
            self.progress.setValue(e.done)

    def _on_report_finished(self, res: dict) -> None:
        if self.sender() is not self.handle:
            return  # an older request (its thresholds were changed meanwhile)
        self.handle = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if res.get("cancelled") else 1)
        if res.get("cancelled"):
            self._update_buttons()
            self.status.setText("evaluation cancelled")
            return
        result: ReportResult = res["result"]
        self.result = result
        self._update_buttons()
        self.report.set_result(result)
        names = getattr(result.report, "class_names", ())
        images = self._image_names(result.split, {e.image_id for e in result.errors})
        self.errors.set_records(result.errors, list(names), images)
        self.errors.setEnabled(result.kind == "detection")
        if result.curves is not None:
            sel = self.selection()
            if sel is not None and sel[0] == result.run_id:
                self.overfit.set_curves(result.curves)
        self.status.setText(f"report of run {result.run_id} on {result.split}: {result.images} images"
                            + (f", {len(result.errors)} predictions and misses in Errors"
                               if result.kind == "detection" else ""))
        self.status_message.emit(f"evaluation of run {result.run_id} on {result.split} done")

    def _image_names(self, split: str, ids: set[int]) -> dict[int, str]:
        """File names of the images in the error list (one read of the split's rows, as the image list does)."""
        if self.store is None or not ids:
            return {}
        return {im.id: Path(im.path).name for im in self.store.images(split) if im.id in ids}

    def _on_report_failed(self, message: str) -> None:
        if self.sender() is not self.handle:
            return
        self.handle = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._update_buttons()
        self.status.setText(f"evaluation failed: {message}")

    def _update_buttons(self) -> None:
        self.progress.setVisible(self.handle is not None)
        has = self.selection() is not None and self.project is not None
        self.evaluate_button.setEnabled(has)
        self.cancel_button.setEnabled(self.handle is not None)
        self.export_button.setEnabled(self.result is not None)

    # -- export ------------------------------------------------------------------------------------------------
    def current_view(self) -> QWidget:
        """The widget the user is looking at (the Report tab's visible plot, or the tab itself)."""
        return self.tabs.currentWidget()

    def export_png(self, path: str | Path | None = None) -> Path | None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the current view", "evaluation.png", "PNG (*.png)")
            if not path:
                return None
        path = Path(path)
        if not self.current_view().grab().save(str(path), "PNG"):
            self.status.setText(f"could not write {path}")
            return None
        self.status.setText(f"saved {path}")
        return path

    def export_files(self, what: str, folder: str | Path | None = None) -> JobHandle | None:
        """Write the report's CSVs (``what`` = 'csv') or the full report ('report') into ``folder``."""
        if self.result is None or self.bridge is None:
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder for the report files")
            if not folder:
                return None
        self.export_handle = h = self.bridge.submit(export_job, {"result": self.result, "out": str(folder),
                                                                 "what": what}, TASKS_LANE)
        h.finished.connect(self._on_export_finished)
        h.failed.connect(self._on_export_failed)
        self.status.setText(f"writing the report into {folder}…")
        return h

    def _on_export_png(self) -> None:
        self.export_png()

    def _on_export_csv(self) -> None:
        self.export_files("csv")

    def _on_export_report(self) -> None:
        self.export_files("report")

    def _on_export_finished(self, res: dict) -> None:
        self.export_handle = None
        self.status.setText(f"wrote {len(res.get('files', []))} files into {res.get('out')}")

    def _on_export_failed(self, message: str) -> None:
        self.export_handle = None
        self.status.setText(f"export failed: {message}")
