"""Train panel + controller + plots driving the REAL training job through the bridge (tiny backbone)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt, QTimer

from engine.config import TrainConfig
from engine.data.demo import generate_demo
from engine.project.store import Store
from engine.train.job import train_job
from engine.train.trainer import Hook, TrainState
from gui.bridge import EngineBridge
from gui.training.controller import SETTINGS_KEY, TrainingController
from gui.training.panel import TrainPanel, format_eta
from gui.training.plots import PlotsPanel

# a tiny run: 8 train images of ~200-300 px, batch 2 -> 4 steps per epoch, CPU
TINY = dict(backbone="tiny", pretrained=False, device="cpu", batch_size=2, max_images=8, warmup_steps=2,
            lr=0.005, augment_scale=False, augment_color=False)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    generate_demo(root, images=12, unlabeled=0)
    with Store(root) as s:
        s.set_split([im.id for im in s.images()][-4:], "val")
    return root


@pytest.fixture()
def rig(qtbot, project):
    bridge = EngineBridge()
    train, plots = TrainPanel(), PlotsPanel()
    for w in (train, plots):
        qtbot.addWidget(w)
        w.show()
    store = Store(project)
    controller = TrainingController(bridge, train, plots)
    controller.set_store(store)
    yield SimpleNamespace(bridge=bridge, train=train, plots=plots, store=store, controller=controller)
    bridge.shutdown(timeout_s=30)
    if controller.preview_dialog is not None:
        controller.preview_dialog.close()
    store.close()


def messages(train: TrainPanel) -> str:
    return train.messages.toPlainText()


def points(plots: PlotsPanel, split: str, name: str) -> int:
    item = plots.curve(split, name)
    x = None if item is None else item.getOriginalDataset()[0]
    return 0 if x is None else len(x)


# -- form and settings ------------------------------------------------------------------------
def test_form_round_trips_a_train_config(qtbot):
    panel = TrainPanel()
    qtbot.addWidget(panel)
    cfg = TrainConfig(backbone="mobilenet_v3_large_fpn", epochs=7, batch_size=3, lr=0.0025, optimizer="adamw",
                      weight_decay=5e-4, l1=1e-6, norm="gn", schedule="step", step_epochs=3, warmup_steps=11,
                      augment_flip=False, augment_crop=True, early_stop=True, early_stop_metric="val_loss",
                      early_stop_patience=4, early_stop_min_delta=0.01, overfit_one_batch=True, device="cpu",
                      val_split="", run_name="exp", max_steps=9, extra={"k": 1}).to_dict()
    panel.set_config({**cfg, "no_such_option": 1})
    out = panel.config()
    assert out == cfg
    TrainConfig.from_dict(out)  # the engine accepts what the panel produces
    assert not panel.fields["augment_flip"].isEnabled()  # overfit mode turns augmentation off
    assert panel.fields["step_epochs"].isEnabled()


def test_button_states(qtbot):
    panel = TrainPanel()
    qtbot.addWidget(panel)
    enabled = lambda: tuple(b.isEnabled() for b in (panel.start_button, panel.pause_button,  # noqa: E731
                                                     panel.resume_button, panel.stop_button))
    assert enabled() == (True, False, False, False)
    panel.set_state("running")
    assert enabled() == (False, True, False, True)
    panel.set_state("paused")
    assert enabled() == (False, False, True, True)
    panel.set_state("stopping")
    assert enabled() == (False, False, False, False)
    with pytest.raises(ValueError, match="state"):
        panel.set_state("flying")
    assert format_eta(3725) == "1:02:05" and format_eta(65) == "1:05" and format_eta(float("nan")) == "—"


def test_settings_are_remembered_per_project(rig, tmp_path):
    other_root = tmp_path / "q"
    Store.create(other_root).close()
    rig.train.fields["epochs"].setValue(7)
    rig.train.fields["norm"].setCurrentIndex(rig.train.fields["norm"].findData("frozen"))
    rig.controller.save_settings()
    assert json.loads(rig.store.get_meta(SETTINGS_KEY))["epochs"] == 7
    with Store(other_root) as other:
        rig.controller.set_store(other)
        assert rig.train.config()["epochs"] == TrainConfig().epochs  # a new project starts from defaults
        other.set_meta(SETTINGS_KEY, "{broken")
        rig.controller.set_store(other)
        assert "ignored the saved train settings" in messages(rig.train)
    rig.controller.set_store(rig.store)
    assert rig.train.config()["epochs"] == 7 and rig.train.config()["norm"] == "frozen"


# -- the real training job ----------------------------------------------------------------------
def test_start_pause_resume_stop_a_real_run_while_the_gui_stays_responsive(rig, qtbot):
    rig.train.set_config({**TINY, "epochs": 50, "max_steps": 60})
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()

    qtbot.mouseClick(rig.train.start_button, Qt.MouseButton.LeftButton)
    assert rig.controller.running and rig.train.state == "running"
    qtbot.waitUntil(lambda: points(rig.plots, "train", "loss_classifier") > 0, timeout=60_000)
    ticks_at_first_point = len(ticks)
    for name in ("loss_objectness", "loss_rpn_box_reg", "loss_box_reg", "loss", "lr"):
        assert points(rig.plots, "train", name) > 0
    assert rig.train.progress.value() >= 1 and "ETA" in rig.train.progress.text()

    qtbot.mouseClick(rig.train.pause_button, Qt.MouseButton.LeftButton)
    assert rig.train.state == "paused"
    qtbot.wait(1500)  # the step in flight finishes, then the job waits
    paused_at = rig.train.progress.value()
    qtbot.wait(1000)
    assert rig.train.progress.value() == paused_at
    qtbot.mouseClick(rig.train.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.train.progress.value() > paused_at, timeout=30_000)

    with qtbot.waitSignal(rig.bridge.job_done, timeout=30_000) as done:
        qtbot.mouseClick(rig.train.stop_button, Qt.MouseButton.LeftButton)
        assert rig.train.state == "stopping"
    timer.stop()
    assert done.args[1] is True  # a Stop is not a failure
    assert rig.train.state == "idle" and not rig.controller.running
    assert len(ticks) - ticks_at_first_point >= 50  # the GUI timer kept firing while the job trained
    run = rig.store.runs()[-1]
    assert run.status == "stopped" and "stopped" in messages(rig.train)
    ckpt = torch.load(run.summary["checkpoints"]["last"], weights_only=True)
    assert ckpt["step"] >= paused_at
    assert rig.plots.run_combo.currentData() == run.id


def test_a_run_to_the_end_plots_validation_and_lists_the_run(rig, qtbot):
    rig.train.set_config({**TINY, "epochs": 1, "max_steps": 3})
    with qtbot.waitSignal(rig.bridge.job_done, timeout=90_000) as done:
        qtbot.mouseClick(rig.train.start_button, Qt.MouseButton.LeftButton)
    assert done.args[1] is True
    rig.plots.redraw()
    assert points(rig.plots, "train", "loss") == 3
    assert points(rig.plots, "val", "loss") == 1 and points(rig.plots, "val", "map50") == 1
    run = rig.store.runs()[-1]
    assert run.status == "finished" and "run finished" in messages(rig.train)
    assert rig.train.progress.value() == 3
    # the finished run, loaded back from the store, gives the same curve
    rig.plots.show_run(run.id, "compare")
    rig.plots.redraw()
    a = rig.plots.curve("train", "loss", "main").getOriginalDataset()
    b = rig.plots.curve("train", "loss", "compare").getOriginalDataset()
    np.testing.assert_array_equal(a[0], b[0])
    assert json.loads(rig.store.get_meta(SETTINGS_KEY))["max_steps"] == 3  # Start saved the settings

    # continue the finished run from its last checkpoint: the step count and the curves go on
    combo = rig.train.resume_combo
    assert combo.findData(run.summary["checkpoints"]["last"]) > 0
    combo.setCurrentIndex(combo.findData(run.summary["checkpoints"]["last"]))
    rig.train.fields["epochs"].setValue(2)
    rig.train.set_config({**rig.train.config(), "max_steps": 5})
    with qtbot.waitSignal(rig.bridge.job_done, timeout=90_000) as done:
        qtbot.mouseClick(rig.train.start_button, Qt.MouseButton.LeftButton)
    assert done.args[1] is True, messages(rig.train)
    rig.plots.redraw()
    x, _ = rig.plots.curve("train", "loss").getOriginalDataset()
    np.testing.assert_array_equal(x, [1, 2, 3, 4, 5])
    assert rig.store.runs()[-1].id == run.id and rig.train.progress.value() == 5


class InjectNaN(Hook):
    """Test-only: loss_classifier becomes NaN at optimisation step ``at_step`` (1-based)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def after_forward(self, s: TrainState, losses: dict[str, torch.Tensor]) -> None:
        if s.step + 1 == self.at_step:
            losses["loss_classifier"] = losses["loss_classifier"] * float("nan")


def test_a_failing_run_reports_in_the_panel_and_the_gui_survives(rig, qtbot):
    rig.controller.job = partial(train_job, hooks=[InjectNaN(2)])
    rig.train.set_config({**TINY, "epochs": 1, "max_steps": 4})
    with qtbot.waitSignal(rig.bridge.job_done, timeout=90_000) as done:
        qtbot.mouseClick(rig.train.start_button, Qt.MouseButton.LeftButton)
    assert done.args[1] is False
    text = messages(rig.train)
    assert "non-finite loss at step 2" in text and "loss_classifier" in text
    assert rig.train.state == "idle" and rig.train.start_button.isEnabled()
    assert "non-finite" in rig.train.status_label.text()


def test_augmentation_preview_runs_off_the_gui_thread(rig, qtbot):
    rig.train.set_config({**TINY, "augment_flip": True, "augment_crop": True})
    qtbot.mouseClick(rig.train.preview_button, Qt.MouseButton.LeftButton)
    dialog = rig.controller.preview_dialog
    assert dialog is not None and dialog.isVisible()
    assert rig.controller.preview_job_id is not None  # submitted to the tasks lane, not computed here
    qtbot.waitUntil(lambda: len(dialog.labels) == 6, timeout=30_000)
    assert all(not label.pixmap().isNull() for label in dialog.labels)
    assert all(label.isVisible() for label in dialog.labels) and dialog.height() > dialog.thumb
    assert "samples" in dialog.status.text()
    first = dialog.labels[0]
    qtbot.mouseClick(dialog.shuffle_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.labels and dialog.labels[0] is not first, timeout=30_000)


def test_main_window_has_the_training_docks_and_follows_the_open_project(qtbot, project, tmp_path, monkeypatch):
    from gui.main_window import MainWindow

    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    window = MainWindow(project)
    qtbot.addWidget(window)
    training = window.training
    assert training.train_dock.widget() is training.train and training.plots_dock.widget() is training.plots
    assert training.store is window.store
    training.train.fields["epochs"].setValue(9)
    training.save_settings()
    other = tmp_path / "q"
    Store.create(other).close()
    assert window.open_project(other)
    assert training.store is window.store and training.plots.store is window.store
    assert training.train.config()["epochs"] == TrainConfig().epochs
    assert window.open_project(project)
    assert training.train.config()["epochs"] == 9
    window.close()
