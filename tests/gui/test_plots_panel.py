"""PlotsPanel: curves from events, smoothing, log-y, markers, runs from the store, PNG/CSV export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtGui import QImage

from engine.events import EpochSummary, RunFinished, StepLosses
from engine.project.store import Store
from gui.training.plots import PlotsPanel

COMPONENTS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")


def step_event(run_id: int, step: int, epoch: int = 0) -> StepLosses:
    losses = {k: 1.0 / (step + i + 1) for i, k in enumerate(COMPONENTS)}
    losses["loss"] = sum(losses.values())
    return StepLosses(run_id, step, epoch, losses, lr=0.01 * step / 10, images_per_s=4.0, eta_s=10.0)


def epoch_event(run_id: int, step: int, epoch: int, best: bool = False, stop: bool = False) -> EpochSummary:
    val = {k: 0.5 / (epoch + 1) for k in (*COMPONENTS, "loss")}
    metrics = {"map": 0.1 * epoch, "map50": 0.2 * epoch, "map75": 0.05, "mar100": 0.3}
    return EpochSummary(run_id, step, epoch, val, metrics, is_best=best, early_stop=stop)


@pytest.fixture()
def panel(qtbot):
    p = PlotsPanel()
    qtbot.addWidget(p)
    p.show()
    return p


@pytest.fixture()
def store(tmp_path):
    s = Store.create(tmp_path / "p")
    yield s
    s.close()


def x_y(item) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.getOriginalDataset()
    return np.asarray(x), np.asarray(y)


def test_live_events_make_train_and_val_curves(panel):
    panel.start_run(1)
    for step in range(1, 21):
        panel.add_step(step_event(1, step))
    panel.add_epoch(epoch_event(1, 20, 0, best=True))
    panel.redraw()
    for name in (*COMPONENTS, "loss"):
        x, _ = x_y(panel.curve("train", name))
        np.testing.assert_array_equal(x, np.arange(1, 21))
        assert len(x_y(panel.curve("val", name))[0]) == 1
    assert panel.curve("train", "lr") in panel.lr_plot.items
    assert panel.curve("val", "map50") in panel.map_plot.items
    assert panel.curve("val", "map75") is None  # only map and map50 are drawn
    assert panel.curve("val", "mar100") is None
    val_pen = panel.curve("val", "loss_classifier").opts["pen"]
    train_pen = panel.curve("train", "loss_classifier").opts["pen"]
    assert val_pen.style() != train_pen.style()  # val dashed, train solid
    assert train_pen.width() <= 1 and not panel.curve("train", "loss").opts["antialias"]


def test_redraw_sets_data_only_for_changed_curves(panel):
    panel.start_run(1)
    panel.add_step(step_event(1, 1))
    panel.redraw()
    n = panel.redraws
    panel.redraw()  # nothing changed
    assert panel.redraws == n
    panel.add_epoch(epoch_event(1, 1, 0))
    panel.redraw()
    # 5 val losses + map + map50 changed; the 6 train curves (5 losses + lr) did not
    assert panel.redraws == n + 7


def test_hidden_panel_does_not_draw_until_shown(qtbot):
    p = PlotsPanel()
    qtbot.addWidget(p)
    p.start_run(3)
    p.add_step(step_event(3, 1))
    p.redraw()
    assert p.curve("train", "loss") is None
    p.show()
    p.redraw()
    assert len(x_y(p.curve("train", "loss"))[0]) == 1


def test_smoothing_slider_smooths_train_losses_only(panel):
    panel.smoothing.setValue(0)
    panel.start_run(1)
    for step in range(1, 11):
        panel.add_step(step_event(1, step))
    panel.add_epoch(epoch_event(1, 10, 0))
    panel.redraw()
    raw = x_y(panel.curve("train", "loss"))[1].copy()
    lr_raw = x_y(panel.curve("train", "lr"))[1].copy()
    panel.smoothing.setValue(90)
    panel.redraw()
    smooth = x_y(panel.curve("train", "loss"))[1]
    assert smooth[0] == pytest.approx(raw[0])
    assert smooth[-1] > raw[-1]  # falling curve: the average lags above it
    np.testing.assert_array_equal(x_y(panel.curve("train", "lr"))[1], lr_raw)


def test_log_y_toggle(panel):
    panel.log_y.setChecked(True)
    assert panel.loss_plot.ctrl.logYCheck.isChecked()
    panel.log_y.setChecked(False)
    assert not panel.loss_plot.ctrl.logYCheck.isChecked()


def test_early_stop_marker(panel):
    panel.start_run(1)
    panel.add_step(step_event(1, 5))
    panel.add_epoch(epoch_event(1, 5, 0, best=True))
    panel.redraw()
    assert panel.early_stop_markers() == []
    panel.add_epoch(epoch_event(1, 10, 1, stop=True))
    panel.redraw()
    lines = panel.early_stop_markers()
    positions = sorted({line.value() for line in lines})
    assert positions == [5.0, 10.0]  # best epoch and the stop
    assert any(line in panel.loss_plot.items for line in lines)


def test_runs_from_store_and_comparison(panel, store):
    cfg = {"backbone": "tiny"}
    old = store.create_run("baseline", "faster_rcnn", cfg)
    rows = [(s, 0, "train", "loss", 2.0 / s) for s in range(1, 31)]
    rows += [(s, 0, "train", "lr", 0.01) for s in range(1, 31)]
    rows += [(30, 0, "val", "loss", 0.9), (30, 0, "val", "map50", 0.4), (30, 0, "val", "map", 0.2)]
    store.add_metrics(old, rows)
    store.update_run(old, status="early_stopped", summary={"best": {"step": 20}})
    panel.set_store(store)
    assert panel.run_combo.count() == 2  # '—' + the run
    live = store.create_run("live", "faster_rcnn", cfg)
    panel.start_run(live)
    for step in range(1, 6):
        panel.add_step(step_event(live, step))
    panel.compare_combo.setCurrentIndex(panel.compare_combo.findData(old))
    panel.compare_combo.activated.emit(panel.compare_combo.currentIndex())
    panel.redraw()
    x, y = x_y(panel.curve("train", "loss", "compare"))
    np.testing.assert_array_equal(x, np.arange(1, 31))
    assert len(x_y(panel.curve("train", "loss", "main"))[0]) == 5
    assert panel.curve("val", "map50", "compare") in panel.map_plot.items
    # the stored early-stopped run shows its stop (last val step) and best (summary) markers
    assert sorted({m.value() for m in panel.early_stop_markers("compare")}) == [20.0, 30.0]
    # picking the finished run as main replaces the live curves; picking the live run brings them back
    panel.show_run(old, "main")
    panel.redraw()
    assert len(x_y(panel.curve("train", "loss", "main"))[0]) == 30
    panel.show_run(live, "main")
    panel.redraw()
    assert len(x_y(panel.curve("train", "loss", "main"))[0]) == 5


def test_finish_run_refreshes_the_run_list(panel, store):
    panel.set_store(store)
    rid = store.create_run("r", "faster_rcnn", {})
    panel.start_run(rid)
    store.update_run(rid, status="finished")
    panel.finish_run(RunFinished(rid, "finished", {}, ""))
    assert "finished" in panel.run_combo.currentText()


def test_export_png_and_csv(panel, tmp_path):
    panel.resize(1000, 400)
    panel.start_run(7)
    for step in range(1, 11):
        panel.add_step(step_event(7, step))
    panel.add_epoch(epoch_event(7, 10, 0))
    png = panel.export_png(tmp_path / "plots.png", width=800)
    img = QImage(str(png))
    assert img.width() == 800 and img.height() > 100
    n = panel.export_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n == 10 * 6 + 5 + 4  # train: 5 losses + lr per step; val: 5 losses + 4 metrics
    loss_rows = [r for r in rows if r["split"] == "train" and r["name"] == "loss"]
    assert [int(r["step"]) for r in loss_rows] == list(range(1, 11))
    assert float(loss_rows[0]["value"]) == pytest.approx(step_event(7, 1).losses["loss"])
    assert {r["run_id"] for r in rows} == {"7"}


def test_the_timer_draws_and_paces_itself_by_cost(qtbot):
    p = PlotsPanel(hz=30, max_busy=1e-6, max_interval_s=2.0)  # any real cost -> wait the full 2 s
    qtbot.addWidget(p)
    p.show()
    p.start_run(1, total_steps=100)
    p.add_step(step_event(1, 1))
    qtbot.waitUntil(lambda: p.curve("train", "loss") is not None and len(x_y(p.curve("train", "loss"))[0]) == 1,
                    timeout=5000)
    p.add_step(step_event(1, 2))
    qtbot.wait(300)  # ~9 timer ticks, all inside the paced wait
    assert len(x_y(p.curve("train", "loss"))[0]) == 1
    qtbot.waitUntil(lambda: len(x_y(p.curve("train", "loss"))[0]) == 2, timeout=5000)
    lo, hi = p.loss_plot.viewRange()[0]
    assert lo <= 0 and hi >= 100  # the live run's x axis spans its planned steps


def test_the_timer_sleeps_while_nothing_changes_or_the_panel_is_hidden(qtbot):
    p = PlotsPanel()
    qtbot.addWidget(p)
    p.show()
    p.start_run(1)
    qtbot.waitUntil(lambda: not p._timer.isActive(), timeout=5000)
    p.add_step(step_event(1, 1))
    assert p._timer.isActive()
    qtbot.waitUntil(lambda: not p._timer.isActive(), timeout=5000)  # drawn, then idle
    assert len(x_y(p.curve("train", "loss"))[0]) == 1
    p.hide()
    p.add_step(step_event(1, 2))
    assert not p._timer.isActive()
    p.show()  # catches up when shown again
    qtbot.waitUntil(lambda: len(x_y(p.curve("train", "loss"))[0]) == 2, timeout=5000)
