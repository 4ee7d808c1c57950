"""X-ray panel, YOLO mode: a tiny yolo_v1 checkpoint captured through the real window's X-ray dock."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from engine.config import TrainConfig
from engine.events import ArraysReady
from engine.jobs import CancelToken
from engine.project.store import Store
from engine.train.job import train_job
from engine.xray.anchors import box_iou
from gui.main_window import MainWindow
from gui.xray.panel import XrayPanel
from gui.xray.yolo_layers import RESPONSIBLE_COLOR, CellLayer

LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 120_000  # a loaded 2-core machine; never a wall-clock assertion


@pytest.fixture(scope="module")
def yolo_run(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A demo copy with a 2-step tiny YOLOv1 run (S = 7), and a labelled image with a GT box."""
    root = tmp_path_factory.mktemp("xray_yolo") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="yolo_v1", backbone="tiny", epochs=1, max_steps=2, batch_size=2,
                      max_images=4, min_size=96, device="cpu", augment_color=False, pretrained=False,
                      run_name="tiny yolo", extra={"yolo_S": 7})
    run_id = int(train_job(cfg.to_dict(), lambda event: None, CancelToken())["run_id"])
    with Store(root) as s:
        assert s.run(run_id).checkpoint
        image_id = next(im.id for im in s.images("train") if len(s.annotations(im.id)) >= 2)
    return root, run_id, image_id


@pytest.fixture()
def win(qtbot, yolo_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    root, _, image_id = yolo_run
    w = MainWindow(root)
    qtbot.addWidget(w)
    w.resize(1280, 900)
    w.show()
    qtbot.waitExposed(w)
    w.session.request_image(image_id)
    qtbot.waitUntil(lambda: w.session.image_id == image_id, timeout=10_000)
    return w


@pytest.fixture()
def panel(qtbot, win, yolo_run) -> XrayPanel:
    """The window's X-ray panel after pressing Capture with the YOLO run chosen."""
    dock = win.xray.xray
    win.xray.xray_dock.raise_()
    dock.runs.setCurrentIndex(dock.runs.findData(yolo_run[1]))
    assert dock.run_id() == yolo_run[1]
    qtbot.mouseClick(dock.panel.capture_button, LEFT)
    qtbot.waitUntil(lambda: dock.panel.yolo.active(), timeout=WAIT_MS)
    return dock.panel


def render(w: MainWindow, arrays: dict) -> np.ndarray:
    h, wd = (int(v) for v in arrays["image_size"])
    img = QImage(wd, h, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor(0, 0, 0))
    p = QPainter(img)
    w.canvas.scene().render(p, QRectF(0, 0, wd, h), QRectF(0, 0, wd, h))
    p.end()
    return np.frombuffer(img.constBits(), np.uint8).reshape(h, wd, 4).copy()


def cell_centre(arrays: dict, row: int, col: int) -> tuple[float, float]:
    S = int(arrays["yolo_grid"][0])
    h, w = (float(v) for v in arrays["image_size"])
    return (col + 0.5) * w / S, (row + 0.5) * h / S


def test_capture_shows_the_grid_and_the_responsible_cells(panel, win, yolo_run):
    layers = panel.yolo.layers
    a = layers.arrays
    S, B, C = (int(v) for v in a["yolo_grid"])
    assert S == 7 and layers.meta["task"] == "yolo_v1" and layers.meta["image_id"] == yolo_run[2]
    assert panel.yolo.isVisible() and not panel.table.isVisible()  # Faster R-CNN controls hidden
    assert "YOLOv1" in panel.status.text()
    counts = layers.counts()
    assert counts["grid"] == S * S and counts["predictors"] == S * S * B
    assert panel.yolo.count_labels["grid"].text() == str(S * S)
    grid = layers.items["grid"].boxes()
    h, w = (float(v) for v in a["image_size"])
    np.testing.assert_allclose(grid[-1], [w * (S - 1) / S, h * (S - 1) / S, w, h])
    # every kept GT's centre cell (yolo_gt_cell) is highlighted, and nothing else
    dropped = set(a["yolo_dropped_gt"].tolist())
    kept = [k for k in range(len(a["gt_boxes"])) if k not in dropped and a["yolo_gt_cell"][k, 0] >= 0]
    assert kept
    resp = layers.items["responsible"]
    assert isinstance(resp, CellLayer)
    lit = {(int(r), int(c)) for r, c in zip(*np.nonzero(resp.cells()[..., 3]))}
    assert lit == {tuple(int(v) for v in a["yolo_gt_cell"][k]) for k in kept}
    assert counts["gt_centres"] == int((a["yolo_gt_cell"][:, 0] >= 0).sum())
    # ... and drawn: the responsible cell turns yellow-ish, another cell does not change
    r, c = (int(v) for v in a["yolo_gt_cell"][kept[0]])
    free = next((i, j) for i in range(S) for j in range(S) if (i, j) not in lit)
    for name in panel.yolo.layer_checks:
        panel.yolo.set_layer_visible(name, name == "responsible")
    with_resp = render(win, a)
    panel.yolo.set_layer_visible("responsible", False)
    without = render(win, a)
    x, y = cell_centre(a, r, c)
    yellow = QColor(RESPONSIBLE_COLOR)
    bgr = np.array([yellow.blue(), yellow.green(), yellow.red()])
    on, off = with_resp[int(y), int(x), :3].astype(int), without[int(y), int(x), :3].astype(int)
    assert np.abs(on - bgr).sum() < np.abs(off - bgr).sum() - 30  # the cell turned towards yellow
    fx, fy = cell_centre(a, *free)
    assert np.array_equal(with_resp[int(fy), int(fx)], without[int(fy), int(fx)])


def test_toggling_a_layer_changes_the_picture(panel, win):
    a = panel.yolo.layers.arrays
    before = render(win, a)
    panel.yolo.layer_checks["class_map"].setChecked(False)
    assert not panel.yolo.layers.items["class_map"].isVisible()
    assert (render(win, a) != before).any(axis=2).sum() > 100
    panel.yolo.layer_checks["class_map"].setChecked(True)
    assert np.array_equal(render(win, a), before)
    panel.yolo.layer_checks["predictors"].setChecked(True)
    assert (render(win, a) != before).any()


def test_nms_slider_changes_the_post_nms_detections(panel):
    layers = panel.yolo.layers
    a = layers.arrays
    # the model's own settings reproduce the model's detections
    np.testing.assert_array_equal(layers.shown["detections"], a["detections_pre_index"])
    assert panel.yolo.count_labels["detections"].text() == str(len(a["detections"]))
    panel.yolo.sliders["nms_iou"].setValue(100)
    loose = len(layers.items["detections"].boxes())
    panel.yolo.sliders["nms_iou"].setValue(5)
    strict = len(layers.items["detections"].boxes())
    assert strict < loose and panel.yolo.slider_labels["nms_iou"].text() == "0.05"
    assert panel.yolo.count_labels["detections"].text() == str(strict)
    k = layers.shown["detections"]
    b, lab = a["detections_pre_nms"][k], a["detections_pre_nms_label"][k]
    iou = box_iou(b, b)[np.equal.outer(lab, lab) & ~np.eye(len(b), dtype=bool)]
    assert iou.size == 0 or iou.max() <= 0.05 + 1e-6
    # the score threshold cuts both layers
    top = float(a["detections_pre_nms_score"].max())
    panel.yolo.sliders["score_thresh"].setValue(int(top * 1000))
    assert len(layers.items["detections_pre_nms"].boxes()) <= len(a["detections_pre_nms"])
    assert np.all(a["detections_pre_nms_score"][layers.shown["detections"]] > int(top * 1000) / 1000)


def test_hovering_a_cell_reads_its_vector(panel, win):
    layers = panel.yolo.layers
    a = layers.arrays
    B = int(a["yolo_grid"][1])
    k = next(k for k in range(len(a["gt_boxes"])) if k not in set(a["yolo_dropped_gt"].tolist()))
    r, c = (int(v) for v in a["yolo_gt_cell"][k])
    messages: list[str] = []
    panel.status_message.connect(messages.append)
    panel.on_cursor_moved(*cell_centre(a, r, c))
    assert messages and f"cell (row {r}, col {c})" in messages[-1]
    assert "responsible" in messages[-1] and f"learns gt {int(a['yolo_gt_index'][r, c])}" in messages[-1]
    for b in range(B):
        assert f"conf {a['yolo_conf'][r, c, b]:.3f}" in messages[-1]
        assert f"√w {a['yolo_pred'][r, c, 5 * b + 2]:.3f}" in messages[-1]
    assert layers.counts()["hover_cell"] == 1
    panel.on_canvas_clicked(*cell_centre(a, r, c))
    assert panel.yolo.details.text().startswith(f"cell (row {r}, col {c})")
    panel.on_cursor_moved(-10.0, -10.0)
    assert layers.counts()["hover_cell"] == 0 and messages[-1] == ""


def test_a_live_yolo_snapshot_is_drawn(panel, win, yolo_run, qtbot):
    a = dict(panel.yolo.layers.arrays)
    before = render(win, a)
    C = int(a["yolo_grid"][2])
    prob = np.zeros_like(a["yolo_class_prob"])
    prob[..., C - 1] = 1.0  # every cell sure of the last class: a different class map
    a["yolo_class_prob"] = prob
    shown: list[dict] = []
    panel.capture_shown.connect(shown.append)
    meta = {"task": "yolo_v1", "live": True, "run_id": yolo_run[1], "step": 77, "epoch": 0,
            "image_id": yolo_run[2], "label_names": panel.yolo.layers.meta["label_names"]}
    win.bridge.broadcast.emit([ArraysReady(kind="xray", arrays=a, meta=meta)])
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[-1]["step"] == 77 and "(live)" in panel.status.text() and "step 77" in panel.status.text()
    assert panel.yolo.layers.items["class_map"].lit() == prob.shape[0] * prob.shape[1]
    assert (render(win, a) != before).any(axis=2).sum() > 100
    # a snapshot of another image is not drawn over this one
    win.bridge.broadcast.emit([ArraysReady(kind="xray", arrays=a, meta={**meta, "step": 78,
                                                                        "image_id": yolo_run[2] + 1000})])
    assert shown[-1]["step"] == 77 and "open that image" in panel.status.text()
