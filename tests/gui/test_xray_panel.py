"""X-ray panel and overlay layers: real widgets, a real capture of a tiny model, rendered scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsScene

from engine.events import ArraysReady
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.project.store import Store
from engine.xray.anchors import anchors_at, box_iou
from engine.xray.capture import capture
from gui.canvas.overlays import BoxLayer, raster_outlines
from gui.xray.panel import XrayPanel

H, W = 180, 260


@pytest.fixture(scope="module")
def arrays() -> dict:
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=3, min_size=200, max_size=320, pretrained=False))
    with torch.no_grad():
        model.rpn.head.cls_logits.weight.normal_(0, 0.3)
        model.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.3)
        model.roi_heads.box_predictor.bbox_pred.weight.normal_(0, 0.02)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    gt = np.array([[20, 30, 100, 120], [150, 40, 230, 90]], np.float32)
    return capture(model.eval(), img, gt, np.array([1, 2]))


def render(scene: QGraphicsScene) -> np.ndarray:
    img = QImage(W, H, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor(0, 0, 0))
    p = QPainter(img)
    scene.render(p, QRectF(0, 0, W, H), QRectF(0, 0, W, H))
    p.end()
    return np.frombuffer(img.constBits(), np.uint8).reshape(H, W, 4).copy()


@pytest.fixture()
def panel(qtbot, arrays):
    scene = QGraphicsScene()
    scene.setSceneRect(0, 0, W, H)
    p = XrayPanel(scene)
    qtbot.addWidget(p)
    p.set_capture(arrays, {"image_id": 1, "label_names": ["background", "circle", "square"]})
    p.scene_ = scene
    return p


def test_capture_fills_the_layers(panel, arrays):
    c = panel.layers.counts()
    assert c["gt"] == 2 and c["anchors"] == len(arrays["anchors"]) and c["rois"] == len(arrays["rois"])
    assert c["sampled"] == 256 and c["proposals"] == min(100, len(arrays["proposals"]))
    # with the model's own thresholds the re-run NMS shows exactly the model's detections
    assert np.array_equal(panel.layers.items["detections"].boxes(), arrays["detections"].astype(np.float64))
    assert panel.count_labels["detections"].text() == str(len(arrays["detections"]))
    assert panel.level_combo.count() == len(arrays["level_grid"]) + 1


def test_toggling_a_layer_changes_the_picture(panel):
    before = render(panel.scene_)
    assert not panel.layers.items["anchors"].isVisible()
    panel.layer_checks["anchors"].setChecked(True)
    assert panel.layers.items["anchors"].isVisible()
    with_anchors = render(panel.scene_)
    assert (with_anchors != before).any(axis=2).sum() > 1000
    panel.layer_checks["anchors"].setChecked(False)
    panel.layer_checks["detections"].setChecked(False)
    assert (render(panel.scene_) != before).any()
    panel.layer_checks["detections"].setChecked(True)
    assert np.array_equal(render(panel.scene_), before)
    panel.set_layer_color("gt", "#00ff00")
    assert (render(panel.scene_) != before).any()


def test_sliders_rerun_nms_and_change_the_picture(panel, arrays):
    layers = panel.layers
    n0 = len(layers.items["detections"].boxes())
    img0 = render(panel.scene_)
    panel.sliders["score_thresh"].setValue(60)
    n1 = len(layers.items["detections"].boxes())
    assert n1 < n0 and np.all(arrays["detections_pre_nms_score"][layers.shown["detections"]] > 0.6)
    assert (render(panel.scene_) != img0).any()
    panel.sliders["score_thresh"].setValue(5)
    assert len(layers.items["detections"].boxes()) == n0
    before = layers.shown["detections"].copy()
    panel.sliders["det_iou"].setValue(10)  # stricter per-class NMS
    after = layers.shown["detections"]
    assert not np.array_equal(before, after)
    b, lab = arrays["detections_pre_nms"][after], arrays["detections_pre_nms_label"][after]
    iou = box_iou(b, b)[np.equal.outer(lab, lab) & ~np.eye(len(b), dtype=bool)]
    assert iou.max() <= 0.1 + 1e-6
    panel.sliders["top_n"].setValue(7)
    assert len(layers.items["proposals"].boxes()) == 7 and panel.slider_labels["top_n"].text() == "7"
    panel.sliders["top_n"].setValue(panel.sliders["top_n"].maximum())
    before = layers.shown["proposals"].copy()
    assert np.array_equal(arrays["proposals_pre_nms"][before], arrays["proposals"])  # the model's NMS
    panel.sliders["prop_iou"].setValue(30)  # stricter per-level NMS
    after = layers.shown["proposals"]
    assert not np.array_equal(before, after)
    b, lvl = arrays["proposals_pre_nms"][after], arrays["proposals_pre_nms_level"][after]
    assert box_iou(b, b)[np.equal.outer(lvl, lvl) & ~np.eye(len(b), dtype=bool)].max() <= 0.3 + 1e-6


def test_level_and_label_filters(panel, arrays):
    panel.level_combo.setCurrentIndex(2)  # level 1
    a = panel.layers.items["anchors"].boxes()
    assert np.array_equal(a, arrays["anchors"][arrays["anchor_level"] == 1].astype(np.float64))
    assert set(arrays["proposals_pre_nms_level"][panel.layers.shown["proposals"]].tolist()) <= {1}
    panel.level_combo.setCurrentIndex(0)
    panel.label_combo.setCurrentIndex(panel.label_combo.findData("foreground"))
    fg = arrays["anchor_label"] == 1
    assert len(panel.layers.items["anchors"].boxes()) == fg.sum() > 0
    assert len(panel.layers.items["sampled"].boxes()) == (fg & arrays["anchor_sampled"]).sum()


def test_clicking_a_pixel_shows_its_anchors_with_iou(panel, arrays):
    before = render(panel.scene_)
    panel.on_canvas_clicked(60.0, 75.0)
    idx = anchors_at(arrays, 60.0, 75.0)
    assert np.array_equal(panel.layers.items["click_anchors"].boxes(), arrays["anchors"][idx].astype(np.float64))
    assert panel.table.rowCount() == len(idx) and panel.table.columnCount() == 6 + 2
    assert {panel.table.item(r, 0).text() for r in range(len(idx))} == {str(i) for i in range(5)}
    assert (render(panel.scene_) != before).any()
    # the IoU column against GT 0 is the real IoU
    best = max(float(panel.table.item(r, 6).text()) for r in range(len(idx)))
    assert best > 0.3


def test_clicking_a_roi_shows_its_sampling_grid(panel, arrays):
    panel.click_mode.setCurrentIndex(1)
    fg = int(np.flatnonzero(arrays["roi_label"] > 0)[0])
    x1, y1, x2, y2 = arrays["rois"][fg]
    before = render(panel.scene_)
    panel.on_canvas_clicked(float(x1 + x2) / 2, float(y1 + y2) / 2)
    i = panel.layers.selected_roi
    assert i >= 0 and panel.layers.counts()["roi_grid"] == 196 and panel.layers.counts()["roi_bins"] == 49
    assert f"level {arrays['roi_level'][i]}" in panel.details.text()
    pts = panel.layers.items["roi_grid"].points()
    rx1, ry1, rx2, ry2 = arrays["rois"][i]
    assert np.all((pts[:, 0] >= rx1 - 1) & (pts[:, 0] <= rx2 + 1) & (pts[:, 1] >= ry1 - 1) & (pts[:, 1] <= ry2 + 1))
    assert (render(panel.scene_) != before).any()
    panel.on_canvas_clicked(-50.0, -50.0)
    assert "no sampled RoI" in panel.details.text()


def test_hover_tooltips_name_what_is_under_the_cursor(panel, arrays):
    x1, y1, x2, y2 = arrays["detections"][0]
    text = panel.hover_text(float(x1 + x2) / 2, float(y1 + y2) / 2)
    assert text.startswith("detection:") and "score" in text
    panel.layer_checks["detections"].setChecked(False)
    panel.layer_checks["proposals"].setChecked(False)
    assert panel.hover_text(60.0, 75.0).startswith("ground truth 0: circle")
    panel.layer_checks["gt"].setChecked(False)
    assert panel.hover_text(60.0, 75.0) == ""
    panel.layer_checks["anchors"].setChecked(True)
    assert "anchors centred here" in panel.hover_text(60.0, 75.0)
    panel.on_cursor_moved(60.0, 75.0)


def test_live_snapshots_are_followed_only_when_asked(panel, arrays):
    shown = []
    panel.capture_shown.connect(shown.append)
    live = ArraysReady(kind="xray", arrays=arrays, meta={"live": True, "step": 40, "image_id": 1}, job="train-1")
    panel._on_events([live])
    assert shown and shown[-1]["step"] == 40 and "(live)" in panel.status.text()
    panel.set_context("/some/project", 2)  # the canvas now shows another image: do not draw over it
    panel._on_events([ArraysReady(kind="xray", arrays=arrays, meta={"live": True, "step": 41, "image_id": 1},
                                  job="train-1")])
    assert shown[-1]["step"] == 40 and "open that image" in panel.status.text()
    assert panel.layers.arrays is None  # set_context cleared the other image's overlays
    panel.set_context("/some/project", 1)
    panel.follow_live.setChecked(False)
    panel._on_events([ArraysReady(kind="xray", arrays=arrays, meta={"live": True, "step": 42, "image_id": 1},
                                  job="train-1")])
    assert shown[-1]["step"] == 40
    panel.follow_live.setChecked(True)
    panel._on_events([ArraysReady(kind="xray", arrays=arrays, meta={"live": True, "step": 43, "image_id": 1},
                                  job="train-1")])
    assert shown[-1]["step"] == 43 and panel.layers.counts()["gt"] == 2


def test_capture_button_runs_the_job_on_the_bridge(qtbot, demo_project: Path):
    from gui.bridge import EngineBridge

    bridge = EngineBridge()
    scene = QGraphicsScene()
    p = XrayPanel(scene, bridge)
    qtbot.addWidget(p)
    with Store(demo_project) as s:
        image_id = s.images("train")[0].id
    p.set_context(str(demo_project), image_id)
    try:
        job = p.request_capture()
        assert job is not None
        qtbot.waitUntil(lambda: p.layers.arrays is not None, timeout=60_000)
        assert p.layers.meta["image_id"] == image_id and p.layers.counts()["gt"] > 0
    finally:
        bridge.shutdown()


def test_box_layer_vector_raster_and_cache(qtbot):
    scene = QGraphicsScene()
    layer = BoxLayer("t", QColor(255, 0, 0), vector_limit=0)
    boxes = np.array([[10, 20, 50, 60], [30, 30, 90, 100]], float)
    layer.set_boxes(boxes)
    scene.addItem(layer)
    raster = render(scene)
    assert layer.last_paint["mode"] == "raster" and not layer.last_paint["cached"]
    render(scene)
    assert layer.last_paint["cached"]
    layer.vector_limit = 100
    vector = render(scene)
    assert layer.last_paint["mode"] == "vector"
    red_r, red_v = raster[..., 2] > 128, vector[..., 2] > 128
    assert red_r.sum() > 300 and (red_r & red_v).sum() >= 0.8 * red_r.sum()  # the same outlines
    out = raster_outlines(np.array([[2.0, 3.0, 6.0, 8.0]]), np.zeros(1, np.int64), [(0, 0, 1, 1)], 10, 10)
    ys, xs = np.nonzero(out[..., 3])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2, 6, 3, 8) and len(xs) == 2 * 5 + 2 * 4
    # level of detail: a dense layer is decimated and drawn at half resolution, still covering the boxes
    rng = np.random.default_rng(0)
    c = rng.uniform(0, (W, H), (50_000, 2))
    layer.raster_budget, layer.lod_density, layer.vector_limit = 10_000, 0.1, 100
    layer.set_boxes(np.concatenate([c - 8, c + 8], 1))
    dense = render(scene)
    assert layer.last_paint["decimation"] == 5 and layer.last_paint["resolution"] == 0.5
    assert (dense[..., 2] > 0).mean() > 0.5


def test_capture_is_a_typed_dataclass_with_the_documented_npz_keys(arrays, tmp_path):
    from engine.xray.capture import KEYS, XrayCapture

    cap = XrayCapture(arrays, {"image_id": 1, "label_names": ["background", "circle", "square"], "step": np.int64(3)})
    path = cap.to_npz(tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {*KEYS, "meta_json"}
    back = XrayCapture.from_npz(path)
    assert back.image_id == 1 and back.label_names[1] == "circle" and back.meta["step"] == 3
    for k in KEYS:
        np.testing.assert_array_equal(back[k], cap[k])
        assert back[k].dtype == cap[k].dtype
    assert XrayCapture.from_event(cap.to_event()).arrays is not None
    with pytest.raises(ValueError, match="lacks anchors"):
        XrayCapture({k: v for k, v in arrays.items() if k != "anchors"})
