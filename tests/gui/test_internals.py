"""The "Inside the CNN" dock on a real window: a tiny trained run, real clicks and hovers, jobs on the bridge."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from engine.config import TrainConfig
from engine.internals.features import feature_map
from engine.jobs import CancelToken
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.checkpoint import load_model
from engine.train.job import train_job
from gui.internals import jobs as internals_jobs
from gui.internals.dock import InternalsDock
from gui.internals.feature import InternalsFeature
from gui.main_window import MainWindow

LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 120_000  # a loaded 2-core machine; never a wall-clock assertion


@pytest.fixture(scope="module")
def trained(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A demo copy with one tiny run (2 steps, BN statistics every step) and a second run with synthetic BN rows."""
    root = tmp_path_factory.mktemp("internals") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="faster_rcnn", backbone="tiny", epochs=1, max_steps=2, batch_size=2,
                      max_images=4, min_size=128, max_size=192, device="cpu", augment_color=False, pretrained=False,
                      bn_stats_every=1, run_name="tiny bn")
    run_id = int(train_job(cfg.to_dict(), lambda event: None, CancelToken())["run_id"])
    with Store(root) as s:  # a run to compare with: two layers, three steps (as a frozen-BN run records them)
        other = s.create_run("compare", "faster_rcnn", {"bn_stats_every": 1, "norm": "frozen"})
        s.add_metrics(other, [(step, 0, "bn", f"bn/backbone.stem.{k}/{stat}", 0.1 * step + k)
                              for step in (1, 2, 3) for k in (1, 4)
                              for stat in ("in_mean", "in_std", "run_mean", "run_var")])
    return root, run_id, other


@pytest.fixture()
def win(qtbot, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    internals_jobs.clear_cache()
    w = MainWindow(trained[0])
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session.image_id is not None, timeout=10_000)
    return w


def _feature(w: MainWindow) -> InternalsFeature:
    return w.internals


def _open(qtbot, w: MainWindow) -> InternalsDock:
    """Raise the dock and wait for its first result."""
    feat = _feature(w)
    panel = feat.panel
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS):
        if not feat.dock.isVisible():  # hidden at first: View menu opens it
            feat.dock.toggleViewAction().trigger()
        feat.dock.raise_()
    assert panel.active and panel.arrays is not None
    return panel


def _click_layer(qtbot, panel: InternalsDock, name: str) -> None:
    tree = panel.tree
    idx = tree.index_of(name)
    tree.scrollTo(idx)
    rect = tree.visualRect(idx)
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS,
                          check_params_cb=lambda meta: meta["layer"] == name):
        qtbot.mouseClick(tree.viewport(), LEFT, pos=rect.center())


def test_dock_is_registered_and_idle_until_shown(win):
    feat = _feature(win)
    assert feat.dock.windowTitle() == "Inside the CNN"
    assert feat.panel.runs.currentData() is not None  # the trained run
    assert feat.panel.submitted == 0  # hidden behind another tab: nothing computed


def test_layer_choice_fills_the_grid_and_pages(qtbot, win):
    panel = _open(qtbot, win)
    assert str(panel.arrays["layer"]) == "backbone.fpn"  # the engine's default for Faster R-CNN
    assert panel.tree.currentIndex() == panel.tree.index_of("backbone.fpn")
    row = panel.tree.rows["backbone.stages.2"]
    assert row[3].text() == "16" and row[4].text() == "91"  # stride and receptive field columns
    _click_layer(qtbot, panel, "backbone.stages.2")
    grid = panel.grid
    c = panel.arrays["feature"].shape[0]
    assert c == 128 and row[2].text().startswith("128 × ")
    assert grid.pages() == 8 and grid.view.layout_.count == 16 and grid.view.layout_.first == 0
    assert "page 1 / 8" in grid.page_label.text()
    qtbot.mouseClick(grid.next_button, LEFT)
    assert grid.page == 1 and grid.view.layout_.first == 16 and "page 2 / 8" in grid.page_label.text()
    grid.per_page_combo.setCurrentIndex(grid.per_page_combo.findData(64))
    assert grid.pages() == 2 and grid.view.layout_.count == 64 and grid.view.layout_.first == 0
    for _ in range(3):
        qtbot.mouseClick(grid.next_button, LEFT)
    assert grid.page == 1 and not grid.next_button.isEnabled()
    # the composed image is exactly the page's tiles (rows by mean activation, highest first)
    assert np.all(np.diff(panel.arrays["channel_mean"]) <= 0)


def test_hovering_a_cell_draws_its_receptive_field(qtbot, win, trained):
    panel = _open(qtbot, win)
    _click_layer(qtbot, panel, "backbone.stages.1")
    view = panel.grid.view
    i, j, row = 3, 5, 2
    qtbot.mouseMove(view, view.cell_center(row, i, j).toPoint())
    qtbot.waitUntil(lambda: view.hovered is not None)
    assert view.hovered == (row, i, j)
    boxes = panel.overlays.cell.boxes()
    assert boxes.shape == (2, 4) and panel.overlays.cell.scene() is win.canvas.scene()
    assert panel.overlays.cell.isVisible()
    qtbot.waitUntil(lambda: panel.overlays.cell.last_paint["drawn"] == 2)  # painted on the canvas
    with Store(trained[0]) as s:
        rec = s.image(win.session.image_id)
        image = read_rgb(s.image_path(rec))
        ckpt = s.run(trained[1]).checkpoint
    _, model, _, _, _ = load_model(ckpt if Path(ckpt).is_absolute() else trained[0] / ckpt)
    fm = feature_map(model, image, "backbone.stages.1")
    assert np.allclose(boxes[0], fm.cell_box(i, j), atol=1e-3)  # the receptive field, original pixels
    step = fm.cell_step()
    assert np.allclose(boxes[1, 2:] - boxes[1, :2], step, atol=1e-3)  # one stride step around the centre
    xs, ys = fm.cell_centers()
    assert np.allclose((boxes[1, :2] + boxes[1, 2:]) / 2, [xs[j], ys[i]], atol=1e-3)
    assert "col 5" in panel.grid.hover_label.text()
    qtbot.mouseMove(view, QPoint(1, 1))  # the frame around the tiles: nothing hovered
    qtbot.waitUntil(lambda: len(panel.overlays.cell.boxes()) == 0)


def test_gradcam_overlay_has_the_image_size_and_follows_target_and_opacity(qtbot, win):
    panel = _open(qtbot, win)
    heat = panel.overlays.heatmap
    assert heat.scene() is win.canvas.scene() and heat.isVisible()
    assert heat.map_size() == win.canvas.image_size() != (0, 0)
    assert heat.boundingRect().width() == win.canvas.image_size()[0]
    qtbot.waitUntil(lambda: heat.last_paint["mode"] == "image")
    panel.tabs.setCurrentIndex(1)
    combo = panel.target_combo
    assert combo.count() >= 2 and combo.currentData() == 0 and combo.itemText(0).startswith("detection 0:")
    assert int(panel.arrays["target_index"]) == 0 and len(panel.overlays.target.boxes()) == 1
    assert np.allclose(panel.overlays.target.boxes()[0], panel.meta["targets"][0]["box"], atol=1e-3)
    panel.opacity.setValue(80)
    assert heat.opacity() == pytest.approx(0.8) and panel.opacity_label.text() == "80 %"
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS):
        combo.setCurrentIndex(1)
        combo.activated.emit(1)
    assert int(panel.arrays["target_index"]) == 1 and combo.currentData() == 1
    assert heat.map_size() == win.canvas.image_size()
    layers = panel.cam_layer_combo
    assert layers.currentText() == "backbone.fpn" and layers.findText("backbone.stages") < 0  # no (C, h, w) output
    k = layers.findText("backbone.stages.3")
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS,
                          check_params_cb=lambda meta: meta["layer"] == "backbone.stages.3"):
        layers.setCurrentIndex(k)
        layers.activated.emit(k)
    assert panel.tree.currentIndex() == panel.tree.index_of("backbone.stages.3")
    assert int(panel.arrays["target_index"]) == 1 and heat.map_size() == win.canvas.image_size()
    panel.show_cam.setChecked(False)
    assert heat.map_size() == (0, 0) and len(panel.overlays.target.boxes()) == 0
    # another dock in front: the overlays leave the image
    win.labeling.ui.labels_dock.raise_()
    qtbot.waitUntil(lambda: not panel.active)
    assert not heat.isVisible() and not panel.overlays.cell.isVisible()


def test_bn_view_draws_one_curve_per_layer(qtbot, win, trained):
    _, run_id, other = trained
    panel = _open(qtbot, win)
    bn = panel.bn
    panel.tabs.setCurrentIndex(2)
    if bn.run_id() != run_id or not bn.tables:
        with qtbot.waitSignal(bn.loaded, timeout=WAIT_MS):
            bn.run_combo.setCurrentIndex(bn.run_combo.findData(run_id))
    table = bn.tables[run_id]
    assert len(table.layers) == 10 and table.steps.tolist() == [1.0, 2.0]  # the tiny backbone's 10 BNs, 2 steps
    assert len(bn.curves) == 10 and not bn.compare_curves
    for curve, k in zip(bn.curves, range(10)):
        x, y = curve.getData()
        assert x.tolist() == [1.0, 2.0] and np.allclose(y, table.values["in_mean"][k])
    bn.stat_combo.setCurrentIndex(bn.stat_combo.findData("in_std"))
    assert all(np.all(c.getData()[1] > 0) for c in bn.curves)
    with qtbot.waitSignal(bn.loaded, timeout=WAIT_MS):
        bn.set_compare(other)
    assert len(bn.curves) == 10 and len(bn.compare_curves) == 2  # the compared run: dashed, its own layers
    assert bn.compare_curves[0].opts["pen"].style() == Qt.PenStyle.DashLine
    bn.layer_combo.setCurrentIndex(bn.layer_combo.findData("backbone.stem.1"))
    assert len(bn.curves) == 1 and len(bn.compare_curves) == 1
    bn.mode_combo.setCurrentIndex(1)  # heat map: layer rows of both runs, a gap row between them
    assert bn.heat_image().height() == 3 and bn.heat_image().width() == 3
    bn.layer_combo.setCurrentIndex(0)
    assert bn.heat_image().height() == 10 + 1 + 2


def test_model_work_goes_through_the_bridge_debounced(qtbot, win, monkeypatch):
    threads: list[threading.Thread] = []
    real = internals_jobs.inspect

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(internals_jobs, "inspect", spy)
    panel = _open(qtbot, win)
    h = panel.handle
    assert h is not None and h.lane == "tasks" and h.done and h.ok
    assert threads and all(t is not threading.main_thread() for t in threads)
    n = panel.submitted
    ids = [im.id for im in win.store.images() if im.id != win.session.image_id][:3]
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS,
                          check_params_cb=lambda meta: meta["image_id"] == ids[2]):
        for i in ids:  # three image changes in a row: one job
            win.session.request_image(i)
        assert win.session.image_id == ids[2] and panel.handle is h  # debounced: nothing submitted yet
    assert panel.submitted == n + 1 and panel.handle is not h
    assert len(threads) == 2 and threads[-1] is not threading.main_thread()
    qtbot.waitUntil(lambda: panel.overlays.heatmap.map_size() == win.canvas.image_size())


def test_another_project_resets_the_dock(qtbot, win, demo_copy):
    panel = _open(qtbot, win)
    assert win.open_project(demo_copy)
    assert panel.runs.currentData() is None and panel.runs.currentText() == "no trained run yet"
    assert panel.arrays is None and panel.overlays.heatmap.map_size() == (0, 0) and not panel.tree.names
    qtbot.waitUntil(lambda: "train a model first" in panel.status.text())
    assert panel.handle is None and panel.bn.tables == {}
