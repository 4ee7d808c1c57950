"""YOLOv1 X-ray: the grid arrays, the responsible cell of a known GT, original pixels, the job and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.config import TrainConfig
from engine.events import ArraysReady
from engine.jobs import CancelToken, Collector
from engine.models.yolo_v1_boxes import cells_to_xyxy
from engine.models.yolo_v1_detector import YoloDetectorSpec, build_yolo_detector
from engine.project.store import Store
from engine.tasks.checkpoint import save_checkpoint
from engine.tasks.registry import get_task
from engine.train.job import train_job
from engine.xray.job import xray_job
from engine.xray.nms import detections_keep
from engine.xray.yolo import capture_yolo

S, B, C, SIZE = 4, 2, 3, 64
H, W = 96, 160  # non-square: sx = 2.5, sy = 1.5
GT = np.array([[90.0, 18.0, 110.0, 42.0],  # centre (100, 30) -> row 1, col 2
               [4.0, 60.0, 60.0, 94.0],  # centre (32, 77) -> row 3, col 0
               [20.0, 70.0, 30.0, 80.0]], np.float32)  # centre (25, 75) -> row 3, col 0 too: smaller -> dropped
LABELS = np.array([2, 1, 3], np.int64)
KEYS = {"yolo_pred": ((S, S, B * 5 + C), np.float32), "yolo_boxes": ((S, S, B, 4), np.float32),
        "yolo_conf": ((S, S, B), np.float32), "yolo_class_prob": ((S, S, C), np.float32),
        "yolo_responsible": ((S, S, B), np.bool_), "yolo_dropped_gt": ((1,), np.int64),
        "gt_boxes": ((3, 4), np.float32), "gt_labels": ((3,), np.int64), "image_size": ((2,), np.int32),
        "input_size": ((2,), np.int32)}
SHARED = ("detections_pre_nms", "detections_pre_nms_score", "detections_pre_nms_label", "detections",
          "detections_score", "detections_label", "detections_pre_index")


def _detector(score: float = 0.0) -> torch.nn.Module:
    spec = YoloDetectorSpec(num_classes=C, S=S, B=B, input_size=SIZE, hidden=16, head_channels=8,
                            score_threshold=score)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _ = build_yolo_detector(spec)
    return model.eval()


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_keys_shapes_and_the_responsible_cell_of_a_known_gt():
    a = capture_yolo(_detector(), _image(), GT, LABELS)
    for k, (shape, dtype) in KEYS.items():
        assert a[k].shape == shape and a[k].dtype == dtype, (k, a[k].shape, a[k].dtype)
    assert set(SHARED) <= set(a)
    assert a["yolo_dropped_gt"].tolist() == [2]
    resp = a["yolo_responsible"]
    assert resp.sum() == 2 and resp[1, 2].sum() == 1 and resp[3, 0].sum() == 1
    assert a["yolo_gt_cell"].tolist() == [[1, 2], [3, 0], [3, 0]]
    assert a["yolo_gt_index"][1, 2] == 0 and a["yolo_gt_index"][3, 0] == 1 and (a["yolo_gt_index"] >= 0).sum() == 2
    assert tuple(a["image_size"]) == (H, W) and tuple(a["input_size"]) == (SIZE, SIZE)
    np.testing.assert_allclose(a["yolo_class_prob"].sum(-1), 1.0, atol=1e-5)  # mse: probabilities
    np.testing.assert_array_equal(a["yolo_conf"], a["yolo_pred"][..., :B * 5].reshape(S, S, B, 5)[..., 4])


def test_boxes_are_in_original_pixels_and_detections_are_the_models():
    model = _detector(score=0.0)
    img = _image()
    a = capture_yolo(model, img, GT, LABELS)
    sx, sy = W / SIZE, H / SIZE
    np.testing.assert_allclose(a["scale"], [sx, sy])
    params = torch.from_numpy(a["yolo_pred"][..., :B * 5].reshape(S, S, B, 5)[..., :4])
    expected = (cells_to_xyxy(params, S) * SIZE).clamp(0, SIZE) * torch.tensor([sx, sy, sx, sy])
    np.testing.assert_allclose(a["yolo_boxes"], expected.numpy(), rtol=1e-5, atol=1e-3)
    assert a["yolo_boxes"][..., 0::2].max() <= W and a["yolo_boxes"][..., 1::2].max() <= H
    assert a["yolo_boxes"][..., 2].max() > SIZE  # really scaled: wider than the input frame
    # score 0: every (predictor, class) pair with a positive score is a pre-NMS detection
    assert len(a["detections_pre_nms"]) == S * S * B * C
    pred = get_task("yolo_v1").predict(model, [img], torch.device("cpu"))[0]
    np.testing.assert_array_equal(a["detections"], pred["boxes"])
    np.testing.assert_array_equal(a["detections_label"], pred["labels"])
    assert a["detections_label"].min() >= 1 and a["detections_label"].max() <= C
    # the X-ray panel's sliders: re-running NMS on the captured arrays reproduces the detections
    score, iou, top = a["box_params"]
    keep = detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"], a["detections_pre_nms_label"],
                           score, iou, int(top))
    np.testing.assert_array_equal(keep, a["detections_pre_index"])
    pre = a["detections_pre_nms_predictor"]
    np.testing.assert_array_equal(a["yolo_boxes"].reshape(-1, 4)[pre], a["detections_pre_nms"])


def test_capture_leaves_the_model_mode_and_rejects_bad_labels():
    model = _detector().train()
    capture_yolo(model, _image())
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="1..3"):
        capture_yolo(model, _image(), GT, np.array([0, 1, 2]))


def _yolo_checkpoint(project: Path, path: Path) -> Path:
    with Store(project) as store:
        cats = store.categories()
    spec = YoloDetectorSpec(num_classes=len(cats), S=S, B=B, input_size=SIZE, hidden=16, head_channels=8)
    model, _ = build_yolo_detector(spec)
    return save_checkpoint(path, {
        "task": "yolo_v1", "kind": "last", "model": model.state_dict(), "optimizer": None,
        "config": TrainConfig(project=str(project), model="yolo_v1").to_dict(), "spec": spec.to_dict(),
        "label_map": {c.id: i + 1 for i, c in enumerate(cats)}, "category_names": [c.name for c in cats],
        "run_id": 0, "step": 0, "epoch": 0, "epoch_batches": 0, "metrics": {}, "best": {}})


def _labelled_image(store: Store) -> int:
    counts = store.annotation_counts()
    return next(im.id for im in store.images("train") if counts.get(im.id))


def test_job_and_cli_write_the_grid_for_a_yolo_checkpoint(demo_copy: Path, tmp_path: Path, capsys):
    ckpt = _yolo_checkpoint(demo_copy, tmp_path / "yolo.pt")
    with Store(demo_copy) as store:
        image_id = _labelled_image(store)
        rec = store.image(image_id)
    sink = Collector()
    summary = xray_job({"project": str(demo_copy), "image": image_id, "checkpoint": str(ckpt)}, sink, CancelToken())
    (ev,) = sink.of(ArraysReady)
    assert ev.meta["task"] == "yolo_v1" and summary["task"] == "yolo_v1" and summary["grid"] == S
    assert ev.arrays["yolo_pred"].shape == (S, S, B * 5 + 3) and "anchors" not in ev.arrays
    out = tmp_path / "cap" / "yolo.npz"
    code = cli_main(["xray", "--project", str(demo_copy), "--image", str(image_id), "--checkpoint", str(ckpt),
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["detections"] >= 0
    with np.load(out) as z:
        assert set(KEYS) | set(SHARED) <= set(z.files)
        assert tuple(z["image_size"]) == (rec.height, rec.width)
        assert json.loads(str(z["meta_json"]))["task"] == "yolo_v1"


def test_live_snapshots_during_yolo_training_are_grid_captures(demo_copy: Path):
    with Store(demo_copy) as store:
        image_id = _labelled_image(store)
    cfg = TrainConfig(project=str(demo_copy), model="yolo_v1", epochs=1, max_steps=2, batch_size=2, max_images=4,
                      val_split="", min_size=64, device="cpu", xray_image=image_id, xray_every=1,
                      extra={"yolo_S": 4})
    sink = Collector()
    train_job(cfg.to_dict(), sink, CancelToken())
    snaps = [e for e in sink.of(ArraysReady) if e.kind == "xray"]
    assert [e.meta["step"] for e in snaps] == [1, 2]
    assert all(e.meta["live"] and e.meta["task"] == "yolo_v1" for e in snaps)
    assert snaps[0].arrays["yolo_responsible"].shape == (4, 4, 2)
