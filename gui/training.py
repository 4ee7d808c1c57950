"""Training in the main window: the Train and Plots docks and the controller that wires them to the bridge.

``install_training(window)`` is the one call ``MainWindow`` makes. ``TrainingController`` submits
``engine.train.job.train_job`` on the bridge's ``train`` lane (the long-lived engine thread that
owns model, optimiser and device) and the augmentation preview on the ``tasks`` lane, and routes
the bridge's ``events_ready`` batches of the jobs it started to the panels. Train settings are
remembered per project in the store's meta table (key ``train_settings``, JSON).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Qt, QTimer

from engine.events import ArraysReady, EpochSummary, Event, JobFailed, Notice, RunFinished, RunStarted, StepLosses
from engine.jobs import Job
from engine.project.store import Store, StoreError
from engine.train.job import train_job
from gui.bridge import EngineBridge
from gui.panels.augment_preview import KIND as PREVIEW_KIND
from gui.panels.augment_preview import AugmentPreviewDialog, preview_job, samples_from
from gui.panels.plots import PlotsPanel
from gui.panels.train import TrainPanel

if TYPE_CHECKING:
    from gui.main_window import MainWindow

SETTINGS_KEY = "train_settings"
TRAIN_LANE, TASKS_LANE = "train", "tasks"
PREVIEW_SAMPLES = 6


class HasStore(Protocol):
    store: Store | None


class TrainingController(QObject):
    """Runs training / preview jobs for the panels; all its slots run on the GUI thread."""

    def __init__(self, bridge: EngineBridge, train: TrainPanel, plots: PlotsPanel, parent: QObject | None = None,
                 job: Job = train_job) -> None:
        super().__init__(parent)
        self.bridge, self.train, self.plots, self.job = bridge, train, plots, job
        self.store: Store | None = None
        self.source: HasStore | None = None
        self.job_id: str | None = None
        self.preview_job_id: str | None = None
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
        bridge.events_ready.connect(self._on_events)
        bridge.job_done.connect(self._on_job_done)

    # -- project and settings -----------------------------------------------------------------
    def follow(self, source: HasStore) -> None:
        """Track ``source.store`` (the main window's); call ``sync_project`` when it may have changed."""
        self.source = source
        self.sync_project()

    def sync_project(self) -> None:
        store = self.source.store if self.source is not None else None
        if store is not self.store:
            self.set_store(store)

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
            last = (run.get("summary") or {}).get("checkpoints", {}).get("last", "")
            if last and Path(last).is_file():
                choices.append((f"#{run['id']} {run['name']} · {run['status']} · step "
                                f"{run['summary'].get('step', '?')}", last))
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
        return {**cfg, "project": str(self.store.root)}

    # -- train controls -----------------------------------------------------------------------
    def _on_start(self, cfg: dict) -> None:
        if self.job_id is not None or self.bridge.is_busy(TRAIN_LANE):
            self.train.message("a run is already going; stop it first", "warning")
            return
        config = self._job_config(cfg)
        if config is None:
            return
        self._failed_reported = False
        self.job_id = self.bridge.submit(self.job, config, TRAIN_LANE)
        self.train.set_state("running")
        self.train.message(f"starting {config['model']} / {config['backbone']} on {config['train_split']}…")

    def _on_pause(self) -> None:
        if self.job_id is not None:
            self.bridge.pause(self.job_id)
            self.train.set_state("paused")

    def _on_resume(self) -> None:
        if self.job_id is not None:
            self.bridge.resume(self.job_id)
            self.train.set_state("running")

    def _on_stop(self) -> None:
        if self.job_id is not None:
            self.bridge.cancel(self.job_id)
            self.train.set_state("stopping")

    def stop(self) -> None:
        """Stop the running training job, if any (cooperative; ``job_done`` follows)."""
        self._on_stop()

    @property
    def running(self) -> bool:
        return self.job_id is not None

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
        if self.preview_job_id is not None:
            self.bridge.cancel(self.preview_job_id)
        self.preview_job_id = self.bridge.submit(
            preview_job, {"train": self._preview_config, "n": PREVIEW_SAMPLES, "seed": None}, TASKS_LANE)

    # -- events -------------------------------------------------------------------------------
    def _on_events(self, events: list[Event]) -> None:
        last_step: StepLosses | None = None
        for e in events:
            if self.job_id is not None and e.job == self.job_id:
                if isinstance(e, StepLosses):
                    self.plots.add_step(e)
                    last_step = e
                else:
                    self._on_train_event(e)
            elif self.preview_job_id is not None and e.job == self.preview_job_id:
                self._on_preview_event(e)
        if last_step is not None:  # the progress bar moves once per batch, not once per step
            s = last_step
            self.train.on_step(s.step, s.epoch, s.losses.get("loss", float("nan")), s.images_per_s, s.eta_s)

    def _on_train_event(self, e: Event) -> None:
        if isinstance(e, RunStarted):
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
        elif isinstance(e, JobFailed) and not self._failed_reported:
            self.train.message(e.message, "error")

    def _on_preview_event(self, e: Event) -> None:
        dialog = self.preview_dialog
        if dialog is None:
            return
        if isinstance(e, ArraysReady) and e.kind == PREVIEW_KIND:
            dialog.show_samples(samples_from(e), self.store.categories() if self.store is not None else [])
        elif isinstance(e, JobFailed):
            dialog.show_error(e.message)

    def _on_job_done(self, job_id: str, ok: bool) -> None:
        if job_id == self.job_id:
            self.job_id = None
            self.train.set_state("idle")
            self.plots.refresh_runs()
            self.refresh_resume_choices()
        elif job_id == self.preview_job_id:
            self.preview_job_id = None


def install_training(window: MainWindow) -> TrainingController:
    """Add the Train and Plots docks to ``window`` and wire them to ``window.bridge``."""
    train = TrainPanel(window)
    plots = PlotsPanel(window)
    # Train joins the right-hand tab group (Labels, Tags, ...); Plots gets the full width at the bottom
    window.train_dock = window._dock("Train", train, Qt.DockWidgetArea.RightDockWidgetArea)
    window.plots_dock = window._dock("Plots", plots, Qt.DockWidgetArea.BottomDockWidgetArea)
    window.resizeDocks([window.plots_dock], [220], Qt.Orientation.Vertical)  # a saved layout overrides these
    view_menu = getattr(window, "view_menu", None)
    if view_menu is not None:
        view_menu.addAction(window.train_dock.toggleViewAction())
        view_menu.addAction(window.plots_dock.toggleViewAction())
    controller = TrainingController(window.bridge, train, plots, window)
    # MainWindow.open_project reloads the image list after switching stores: follow it from there.
    window.images.model.modelReset.connect(controller.sync_project)
    controller.follow(window)
    return controller
