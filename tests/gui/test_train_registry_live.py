"""The Train panel reads models from the task registry, and "follow live" feeds the X-ray dock during a run."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSpinBox

from engine.tasks.registry import get_task, task_names


def _pick(qtbot, combo, value) -> None:
    """Choose ``value`` in a combo with the keyboard, as a user does."""
    combo.setFocus()
    while combo.currentData() != value:
        before = combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        if combo.currentIndex() == before:
            qtbot.keyClick(combo, Qt.Key.Key_Home)


def test_model_choice_brings_its_backbones_and_metrics(window, qtbot) -> None:
    panel = window.training.train
    model = panel.fields["model"]
    assert [model.itemData(i) for i in range(model.count())] == list(task_names())
    for name in task_names():
        _pick(qtbot, model, name)
        backbone, metric = panel.fields["backbone"], panel.fields["early_stop_metric"]
        assert [backbone.itemData(i) for i in range(backbone.count())] == list(get_task(name).backbones)
        offered = [metric.itemData(i) for i in range(metric.count())]
        assert get_task(name).selection_metric in offered and "val_loss" in offered
        assert panel.config()["model"] == name


def test_follow_live_sends_snapshots_of_the_current_image_to_the_xray_dock(window, qtbot) -> None:
    panel = window.training.train
    image_id = window.session.image_id
    assert image_id
    every: QSpinBox = panel.fields["xray_every"]
    every.setValue(1)
    for name, value in (("max_steps", 3), ("batch_size", 2), ("max_images", 4), ("min_size", 96),
                        ("max_size", 128)):
        if name in panel.fields:
            panel.fields[name].setValue(value)
    panel._base.update(max_steps=3, max_images=4, device="cpu", val_split="", warmup_steps=0)
    shown: list[dict] = []
    window.xray.xray.panel.capture_shown.connect(shown.append)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(m.get("live") for m in shown), timeout=120_000)
    live = [m for m in shown if m.get("live")]
    assert live[0]["image_id"] == image_id and live[0]["step"] >= 1
    qtbot.waitUntil(lambda: window.training.job_id is None, timeout=120_000)
