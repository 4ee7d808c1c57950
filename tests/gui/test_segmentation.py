"""The Segmentation dock on a real window: a tiny DeepLab run, the CRF in the engine thread, real clicks and keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QPoint, Qt

from engine.config import TrainConfig
from engine.crf import crf_available
from engine.inference import segment
from engine.jobs import CancelToken
from engine.project.store import Store
from engine.train.job import train_job
from gui.main_window import MainWindow
from gui.segmentation.dock import SegmentationDock

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier
WAIT_MS = 120_000  # a loaded 2-core machine; never a wall-clock assertion


@pytest.fixture(scope="module")
def trained(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A demo copy with one tiny DeepLab run whose classifier then says "class 1" everywhere (regions to accept)."""
    root = tmp_path_factory.mktemp("segmentation") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="deeplab", backbone="tiny", epochs=1, max_steps=3, batch_size=2,
                      max_images=4, min_size=96, max_size=128, device="cpu", augment_color=False, pretrained=False,
                      run_name="tiny seg")
    run_id = int(train_job(cfg.to_dict(), lambda event: None, CancelToken())["run_id"])
    with Store(root) as s:
        path = Path(s.run(run_id).checkpoint)
        path = path if path.is_absolute() else root / path
    ck = torch.load(path, weights_only=True)
    last = max((k for k in ck["model"] if k.startswith("net.classifier.") and k.endswith(".weight")),
               key=lambda k: int(k.split(".")[2]))
    ck["model"][last].zero_()
    bias = ck["model"][last.replace(".weight", ".bias")]
    bias.zero_()
    bias[1] = 3.0
    torch.save(ck, path)
    return root, run_id


@pytest.fixture()
def win(qtbot, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    segment.clear_cache()
    w = MainWindow(trained[0])
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session.image_id is not None, timeout=10_000)
    return w


def _open(qtbot, w: MainWindow) -> SegmentationDock:
    """Raise the dock and wait for its first result."""
    feat = w.segmentation
    panel = feat.panel
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS):
        if not feat.dock.isVisible():  # hidden at first: View menu opens it
            feat.dock.toggleViewAction().trigger()
        feat.dock.raise_()
    qtbot.waitUntil(lambda: len(panel.summaries) == 1, timeout=WAIT_MS)
    return panel


def test_dock_lists_the_run_and_draws_before_after_at_the_image_size(qtbot, win, trained):
    panel = win.segmentation.panel
    assert win.segmentation.dock.windowTitle() == "Segmentation"
    assert panel.run_id() == trained[1]
    assert panel.submitted == 0  # hidden behind another tab: nothing computed
    panel = _open(qtbot, win)
    w, h = win.canvas.image_size()
    assert w > 0 and panel.prediction.image_size() == (w, h) == panel.uncertainty.image_size()
    assert panel.arrays["before"].shape == panel.arrays["after"].shape == (h, w)
    assert panel.arrays["rgba_after"].flags["C_CONTIGUOUS"] and panel.arrays["rgba_after"].dtype.name == "uint8"
    assert panel.prediction.scene() is win.canvas.scene() and panel.prediction.isVisible()
    assert not panel.uncertainty.isVisible()
    box = panel.show_uncertainty
    win.segmentation.dock.widget().ensureWidgetVisible(box)
    qtbot.mouseClick(box, LEFT, pos=QPoint(8, box.height() // 2))  # on the indicator
    assert panel.uncertainty.isVisible()
    assert panel.summaries[0]["predicted"] is True and panel.meta["image_id"] == win.session.image_id


def test_crf_parameters_rerun_only_the_crf(qtbot, win):
    panel = _open(qtbot, win)
    row = panel.rows["w_bilateral"]
    before = row.value()
    row.slider.setFocus()
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS,
                          check_params_cb=lambda m: m["crf_params"]["w_bilateral"] != before):
        qtbot.keyClick(row.slider, Qt.Key.Key_PageUp)
    it = panel.rows["iterations"].spin
    it.setFocus()
    it.selectAll()
    with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS,
                          check_params_cb=lambda m: m["crf_params"]["iterations"] == 3):
        qtbot.keyClicks(it, "3")
        qtbot.keyClick(it, Qt.Key.Key_Return)
    other = "fast" if panel.backend_name() == "exact" else "exact"
    if other == "fast" or crf_available():  # the other backend, where it can run
        with qtbot.waitSignal(panel.result_shown, timeout=WAIT_MS, check_params_cb=lambda m: m["crf"] == other):
            panel.backend.setCurrentIndex(panel.backend.findData(other))
    qtbot.waitUntil(lambda: not win.bridge.is_busy("tasks"), timeout=WAIT_MS)
    ran = [s["predicted"] for s in panel.summaries]
    assert len(ran) >= 3 and ran.count(True) == 1 and ran[0] is True  # the network ran once, the CRF every time


def test_split_slider_puts_before_left_and_after_right(qtbot, win):
    panel = _open(qtbot, win)
    layer = panel.prediction
    w, _ = layer.image_size()
    qtbot.mouseClick(panel.mode_buttons["split"], LEFT)
    slider = panel.split_slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    assert layer.split_x() == 0 and layer.source_at(1) == "after" and layer.source_at(w - 1) == "after"
    qtbot.keyClick(slider, Qt.Key.Key_End)
    assert layer.split_x() == w and layer.source_at(w - 1) == "before"
    for _ in range(3):
        qtbot.keyClick(slider, Qt.Key.Key_PageDown)
    x = layer.split_x()
    assert 0 < x < w and layer.source_at(x - 1) == "before" and layer.source_at(x) == "after"
    win.canvas.viewport().grab()  # a real paint: both halves drawn, split where the slider says
    assert layer.last_paint["before"] == (0.0, x) and layer.last_paint["after"] == (x, float(w))
    qtbot.mouseClick(panel.mode_buttons["before"], LEFT)
    assert layer.source_at(w - 1) == "before" and not slider.isEnabled()
    assert "before CRF" in panel.accept_button.text()
    qtbot.mouseClick(panel.mode_buttons["after"], LEFT)
    assert layer.source_at(0) == "after" and "after CRF" in panel.accept_button.text()


def test_accept_as_mask_is_one_undoable_command(qtbot, win, trained):
    panel = _open(qtbot, win)
    store, image_id, run_id = win.store, win.session.image_id, trained[1]
    provenance = f"model:{run_id}"
    regions = panel.meta["regions"]["after"]
    assert regions and all(r["category_id"] is not None for r in regions)
    manual = {a.id for a in store.annotations(image_id)}
    depth = win.labeling.stack.count()
    qtbot.mouseClick(panel.accept_button, LEFT)
    added = [a for a in store.annotations(image_id) if a.id not in manual]
    assert len(added) == len(regions) and all(a.kind == "mask" and a.provenance == provenance for a in added)
    assert win.labeling.stack.count() == depth + 1
    assert {a.id for a in added} <= set(win.annotations.items)  # the canvas shows them, editable like any shape
    win.canvas.setFocus()
    qtbot.keyClick(win.canvas, Qt.Key.Key_Z, CTRL)
    assert {a.id for a in store.annotations(image_id)} == manual
    assert not ({a.id for a in added} & set(win.annotations.items))
    win.labeling.redo()
    assert {a.id for a in store.annotations(image_id)} == manual | {a.id for a in added}
    # accepting again replaces the run's unedited masks instead of piling them up
    qtbot.mouseClick(panel.accept_button, LEFT)
    again = [a for a in store.annotations(image_id) if a.provenance == provenance]
    assert len(again) == len(regions)
