"""Training: the Train and Plots docks and the controller that wires them to the bridge.

``install_training(session, host, bridge)`` is the one call the main window makes. ``TrainingController``
submits ``engine.train.job.train_job`` on the bridge's ``train`` lane and the augmentation preview
(``engine.data.preview.preview_job``) on the ``tasks`` lane, and feeds the panels from the signals of
the ``JobHandle`` of each job it started. It follows the session's project. Train settings are
remembered per project in the store's meta table (key ``train_settings``, JSON).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer

from engine.data.preview import KIND as PREVIEW_KIND
from engine.data.preview import AugmentPreview, preview_job
from engine.events import ArraysReady, EpochSummary, Event, Notice, RunFinished, RunStarted, StepLosses
from engine.jobs import Job
from engine.project.store import Store, StoreError
from engine.train.job import train_job
from gui.bridge import EngineBridge, JobHandle
from gui.session import Session
from gui.training.panel import TrainPanel
from gui.training.plots import PlotsPanel
from gui.training.preview import AugmentPreviewDialog
from gui.widgets.docks import DockHost

SETTINGS_KEY = "train_settings"
TRAIN_LANE, TASKS_LANE = "train", "tasks"
PREVIEW_SAMPLES = 6


class TrainingController(QObject):
    """Runs training / preview jobs for the panels; all its slots run on the GUI thread."""

    def __init__(self, bridge: EngineBridge, train: TrainPanel, plots: PlotsPanel, parent: QObject | None = None,
                 job: Job = train_job) -> None:
        super().__init__(parent)
        self.bridge, self.train, self.plots, self.job = bridge, train, plots, job
        self.store: Store | None = None
        self.session: Session | None = None
        self.handle: JobHandle | None = None
        self.preview_handle: JobHandle | None = None
        self.preview_dialog: AugmentPreviewDialog | None = None
        self._preview_config: dict = {}
        self._failed_reported = False
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(500)
        self._save_timer.timeout.connect(self.save_settings)
        train.start_requested.connect(self._on_start)
        train.pause_requested.connect(self._on_pause)
        train.resume_requested.connect(self._on_resume)
        train.stop_requested.connect(self._on_stop)
        train.preview_requested.connect(self._on_preview)
        train.settings_changed.connect(self._save_timer.start)

    @property
    def job_id(self) -> str | None:
        """The id of the training job running now."""
        return self.handle.id if self.handle is not None else None

    @property
    def preview_job_id(self) -> str | None:
        return self.preview_handle.id if self.preview_handle is not None else None

    # -- project and settings -----------------------------------------------------------------
    def follow(self, session: Session) -> None:
        """Track the session's project (and its current image, for "follow live")."""
        self.session = session
        session.project_opened.connect(self.set_store)
        session.project_closed.connect(self._on_project_closed)
        session.meta_changed.connect(self._on_meta_changed)  # e.g. Analytics > Apply to training
        self.set_store(session.store)

    def _on_meta_changed(self, key: str) -> None:
        """Another feature wrote the saved settings: show them (they win over unsaved edits)."""
        if key == SETTINGS_KEY and self.store is not None:
            self._save_timer.stop()
            self.load_settings()

    def _on_project_closed(self) -> None:
        self.save_settings()
        self.set_store(None)

    def set_store(self, store: Store | None) -> None:
        self._save_timer.stop()
        self.store = store
        self.refresh_resume_choices()
        self.load_settings()
        self.plots.set_store(store)

    def refresh_resume_choices(self) -> None:
        """Offer every run of this project whose last checkpoint exists for 'Continue from'."""
        choices = []
        for run in reversed(self.store.runs() if self.store is not None else []):
            summary = run.summary
            last = summary.get("checkpoints", {}).get("last", "")
            if last and Path(last).is_file():
                choices.append((f"#{run.id} {run.name} · {run.status} · step {summary.get('step', '?')}", last))
        self.train.set_resume_choices(choices)

    def load_settings(self) -> None:
        """Fill the Train panel from this project's saved settings (defaults when none or unreadable)."""
        saved: dict = {}
        if self.store is not None:
            raw = self.store.get_meta(SETTINGS_KEY)
            try:
                saved = json.loads(raw) if raw else {}
                if not isinstance(saved, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                self.train.message(f"ignored the saved train settings of this project (meta '{SETTINGS_KEY}': {e})",
                                   "warning")
                saved = {}
        self.train.set_config(saved)

    def save_settings(self) -> None:
        if self.store is None:
            return
        cfg = {k: v for k, v in self.train.config().items() if k not in ("project", "resume")}  # per-run
        try:
            self.store.set_meta(SETTINGS_KEY, json.dumps(cfg, sort_keys=True))
        except (StoreError, sqlite3.Error) as e:  # e.g. the project was closed meanwhile
            self.train.message(f"could not save the train settings: {e}", "warning")

    def _job_config(self, cfg: dict) -> dict | None:
        if self.store is None:
            self.train.message("open a project first", "error")
            return None
        self._save_timer.stop()
        self.save_settings()
        out = {**cfg, "project": str(self.store.root)}
        if out.get("xray_every", 0) > 0:  # "follow live": the image on the canvas when the run starts
            out["xray_image"] = int(self.session.image_id or 0) if self.session is not None else 0
        return out

    # -- train controls -----------------------------------------------------------------------
    def _on_start(self, cfg: dict) -> None:
        if self.job_id is not None or self.bridge.is_busy(TRAIN_LANE):
            self.train.message("a run is already going; stop it first", "warning")
            return
        config = self._job_config(cfg)
        if config is None:
            return
        self._failed_reported = False
        self.handle = h = self.bridge.submit(self.job, config, TRAIN_LANE)
        h.event.connect(self._on_train_event)
        h.progress.connect(self._on_train_progress)
        h.finished.connect(self._on_train_done)
        h.failed.connect(self._on_train_failed)
        self.train.set_state("running")
        self.train.message(f"starting {config['model']} / {config['backbone']} on {config['train_split']}…")

    def _on_pause(self) -> None:
        if self.handle is not None:
            self.handle.pause()
            self.train.set_state("paused")

    def _on_resume(self) -> None:
        if self.handle is not None:
            self.handle.resume()
            self.train.set_state("running")

    def _on_stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.train.set_state("stopping")

    def stop(self) -> None:
        """Stop the running training job, if any (cooperative; ``job_done`` follows)."""
        self._on_stop()

    @property
    def running(self) -> bool:
        return self.handle is not None

    # -- augmentation preview -----------------------------------------------------------------
    def _on_preview(self, cfg: dict) -> None:
        config = self._job_config(cfg)
        if config is None:
            return
        self._preview_config = config
        if self.preview_dialog is None:
            self.preview_dialog = AugmentPreviewDialog(self.train.window())
            self.preview_dialog.shuffle_requested.connect(self._submit_preview)
        self.preview_dialog.set_busy()
        self.preview_dialog.show()
        self.preview_dialog.raise_()
        self._submit_preview()

    def _submit_preview(self) -> None:
        if self.preview_handle is not None:
            self.preview_handle.cancel()
        self.preview_handle = h = self.bridge.submit(
            preview_job, {"train": self._preview_config, "n": PREVIEW_SAMPLES, "seed": None}, TASKS_LANE)
        h.event.connect(self._on_preview_event)
        h.failed.connect(self._on_preview_failed)
        h.finished.connect(self._on_preview_done)
        h.failed.connect(self._on_preview_done)

    # -- events (handle signals, GUI thread) ------------------------------------------------------
    def _on_train_progress(self, e: Event) -> None:
        """The newest step of a frame: the progress bar moves once per frame, not once per step."""
        if isinstance(e, StepLosses):
            self.train.on_step(e.step, e.epoch, e.losses.get("loss", float("nan")), e.images_per_s, e.eta_s)

    def _on_train_event(self, e: Event) -> None:
        if isinstance(e, StepLosses):
            self.plots.add_step(e)
        elif isinstance(e, RunStarted):
            self.plots.start_run(e.run_id, f"#{e.run_id}", e.total_steps)
            self.train.on_run_started(e.run_id, e.total_steps, e.steps_per_epoch)
        elif isinstance(e, EpochSummary):
            self.plots.add_epoch(e)
            if e.val_losses or e.metrics:
                self.train.on_epoch(e.epoch, e.metrics, e.val_losses.get("loss"), e.is_best)
        elif isinstance(e, RunFinished):
            self.plots.finish_run(e)
            self.train.on_finished(e.status, e.metrics, e.checkpoint, e.message)
            self._failed_reported = e.status == "failed"
        elif isinstance(e, Notice):
            self.train.message(e.message, e.level)

    def _on_train_failed(self, message: str) -> None:
        if not self._failed_reported:
            self.train.message(message, "error")
        self._on_train_done()

    def _on_train_done(self, _result: dict | None = None) -> None:
        self.handle = None
        self.train.set_state("idle")
        self.plots.refresh_runs()
        self.refresh_resume_choices()

    def _on_preview_event(self, e: Event) -> None:
        dialog = self.preview_dialog
        if dialog is not None and isinstance(e, ArraysReady) and e.kind == PREVIEW_KIND:
            dialog.show_samples(AugmentPreview.from_event(e), self.store.categories() if self.store is not None else [])

    def _on_preview_failed(self, message: str) -> None:
        if self.preview_dialog is not None:
            self.preview_dialog.show_error(message)

    def _on_preview_done(self, *_: object) -> None:
        if self.preview_handle is not None and self.preview_handle.done:
            self.preview_handle = None


def install_training(session: Session, host: DockHost, bridge: EngineBridge) -> TrainingController:
    """Add the Train and Plots docks and wire them to the bridge and the session's project."""
    train = TrainPanel(host.widget)
    plots = PlotsPanel(host.widget)
    controller = TrainingController(bridge, train, plots, session)
    # Train joins the right-hand tab group (Labels, Tags, ...); Plots gets the full width at the bottom
    controller.train_dock = host.add_dock("Train", train, Qt.DockWidgetArea.RightDockWidgetArea)
    controller.plots_dock = host.add_dock("Plots", plots, Qt.DockWidgetArea.BottomDockWidgetArea)
    host.resize_dock(controller.plots_dock, 220, Qt.Orientation.Vertical)  # a saved layout overrides these
    controller.follow(session)
    return controller
