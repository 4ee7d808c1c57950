"""The yolo_v1 task around the network: options from cfg.extra, the detector wrapper's frames and labels,
the paper's augmentation, and the one-object-per-cell notice."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from engine.config import TrainConfig
from engine.data.dataset import SampleRecord
from engine.data.yolo_transforms import RandomHSV, scale_hsv, yolo_train_transform
from engine.events import Notice
from engine.jobs import CancelToken, Collector
from engine.models.yolo_v1_detector import YoloDetectorSpec, build_yolo_detector
from engine.project.shapes import Annotation, Box
from engine.tasks.base import LabelSpace
from engine.tasks.yolo_v1 import TASK, count_dropped, spec_options
from engine.train.job import train_job
from engine.train.trainer import TrainingError

LABELS = LabelSpace((10, 20, 30), ("circle", "square", "triangle"))


def _spec(cfg: TrainConfig) -> YoloDetectorSpec:
    return TASK.spec_from_data(cfg, [], LABELS)


def test_spec_defaults_are_the_papers_and_extra_keys_set_them():
    spec = _spec(TrainConfig(model="yolo_v1"))
    assert (spec.input_size, spec.S, spec.B, spec.num_classes) == (448, 7, 2, 3)
    assert (spec.lambda_coord, spec.lambda_noobj, spec.class_loss) == (5.0, 0.5, "mse")
    spec = _spec(TrainConfig(model="yolo_v1", min_size=256, extra={
        "yolo_S": 5, "yolo_B": 3, "yolo_class_loss": "focal", "yolo_nms_iou": 0.4, "yolo_score": 0.1,
        "yolo_lambda_coord": 2, "metrics_every": 10}))
    assert (spec.input_size, spec.S, spec.B, spec.class_loss, spec.nms_iou, spec.score_threshold) == (
        256, 5, 3, "focal", 0.4, 0.1)
    assert spec.lambda_coord == 2.0 and TASK.spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("extra", "message"), [
    ({"yolo_S": 0}, "yolo_S must be an integer >= 1"),
    ({"yolo_S": 7.5}, "yolo_S must be an integer"),
    ({"yolo_B": True}, "yolo_B must be an integer"),
    ({"yolo_class_loss": "bce"}, "yolo_class_loss must be one of mse | ce | focal"),
    ({"yolo_nms_iou": 0}, r"yolo_nms_iou must be a number in \(0, 1\]"),
    ({"yolo_score": 1.0}, r"yolo_score must be a number in \[0, 1\)"),
    ({"yolo_lambda_noobj": "x"}, "yolo_lambda_noobj must be a number >= 0"),
    ({"yolo_s": 7}, "unknown YOLOv1 option extra 'yolo_s'"),
])
def test_bad_extra_options_are_one_line_errors(extra: dict, message: str):
    with pytest.raises(ValueError, match=message) as e:
        spec_options(extra)
    assert "\n" not in str(e.value)


def test_the_training_job_refuses_a_bad_option_in_one_line(demo_project: Path):
    cfg = TrainConfig(project=str(demo_project), model="yolo_v1", max_images=2, device="cpu", extra={"yolo_B": 0})
    with pytest.raises(TrainingError, match="cannot train yolo_v1: extra yolo_B must be an integer >= 1"):
        train_job(cfg.to_dict(), Collector(), CancelToken())


def test_detector_maps_labels_and_returns_original_pixels():
    spec = YoloDetectorSpec(num_classes=3, S=4, input_size=64, hidden=16, head_channels=8, score_threshold=0.0)
    torch.manual_seed(0)
    model, _ = build_yolo_detector(spec)
    small, big = torch.rand(3, 40, 100), None
    big = torch.nn.functional.interpolate(small[None], size=(80, 200), mode="nearest")[0]
    model.train()
    targets = [{"boxes": torch.tensor([[10.0, 5.0, 60.0, 30.0]]), "labels": torch.tensor([3])}]
    losses = model([small], targets)
    assert set(losses) == {"loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_cls"}
    enc = model.encode(targets[0], (100 / 64, 40 / 64))
    assert enc["cls"][enc["obj"]].tolist() == [2]  # label 3 of the app = YOLO class 2
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        model([small], [{"boxes": torch.tensor([[1.0, 1, 5, 5]]), "labels": torch.tensor([0])}])
    model.eval()
    with torch.no_grad():
        a, b = model([small, big])
    assert a["labels"].min() >= 1 and a["labels"].max() <= 3
    assert a["boxes"][:, 0::2].max() <= 100 and a["boxes"][:, 1::2].max() <= 40
    assert a["boxes"][:, 2].max() > 64  # scaled out of the 64-px input frame
    top = min(len(a["boxes"]), 5)
    torch.testing.assert_close(b["boxes"][:top], a["boxes"][:top] * 2, rtol=0.05, atol=2.0)


def test_hsv_scaling_keeps_hue_and_scales_value_and_saturation():
    rgb = torch.tensor([0.8, 0.4, 0.2]).view(3, 1, 1)
    torch.testing.assert_close(scale_hsv(rgb, 1.0, 1.0), rgb)
    out = scale_hsv(rgb, 0.5, 1.2).flatten().tolist()
    h0, s0, v0 = colorsys.rgb_to_hsv(0.8, 0.4, 0.2)
    h1, s1, v1 = colorsys.rgb_to_hsv(*out)
    assert h1 == pytest.approx(h0, abs=1e-5)
    assert v1 == pytest.approx(v0 * 0.5, rel=1e-5) and s1 == pytest.approx(s0 * 1.2, rel=1e-5)
    grey = scale_hsv(rgb, 1.0, 0.0).flatten()
    assert torch.allclose(grey, torch.full((3,), 0.8))
    assert scale_hsv(torch.ones(3, 2, 2), 1.5, 1.5).max() == 1.0  # clipped


def test_paper_augmentation_moves_boxes_with_the_image():
    cfg = TrainConfig(model="yolo_v1")
    assert yolo_train_transform(TrainConfig(overfit_one_batch=True)) is None
    assert yolo_train_transform(TrainConfig(augment_flip=False, augment_scale=False, augment_color=False)) is None
    pipe = yolo_train_transform(cfg)
    img = torch.zeros(3, 60, 80, dtype=torch.uint8)
    img[:, 20:40, 10:30] = 255  # a white square where the box is
    torch.manual_seed(0)
    for _ in range(10):
        target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor([[10.0, 20.0, 30.0, 40.0]]), format="XYXY",
                                                    canvas_size=(60, 80)),
                  "labels": torch.tensor([1]), "image_id": 1}
        out, t = pipe(tv_tensors.Image(img.clone()), target)
        assert out.dtype == torch.uint8 and out.shape == img.shape
        assert len(t["boxes"]) == len(t["labels"]) <= 1
        if len(t["boxes"]):
            x1, y1, x2, y2 = (int(round(float(v))) for v in t["boxes"][0])
            inside = out[:, y1 + 2:y2 - 2, x1 + 2:x2 - 2].float()
            assert inside.numel() == 0 or inside.std(dim=(1, 2)).max() < 1.0  # one colour: the square


def test_hsv_step_leaves_boxes_alone():
    target = {"boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "labels": torch.tensor([1])}
    img = tv_tensors.Image(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8))
    out, t = RandomHSV()(img, target)
    assert isinstance(out, tv_tensors.Image) and out.dtype == torch.uint8 and t is target


def _record(boxes: list[list[float]], image_id: int = 1) -> SampleRecord:
    anns = tuple(Annotation(image_id, 10, Box(np.array(b))) for b in boxes)
    return SampleRecord(image_id, Path("x.png"), 100, 50, anns)


def test_boxes_sharing_a_cell_are_counted_and_noticed(demo_copy: Path):
    spec = YoloDetectorSpec(num_classes=3, S=2, input_size=64)
    # 100 x 50 image, 2 x 2 cells of 50 x 25 px: the first two centres share cell (0, 0)
    recs = [_record([[0, 0, 40, 20], [10, 5, 20, 15], [60, 30, 90, 45]]), _record([[0, 0, 10, 10]], 2)]
    assert count_dropped(recs, LABELS, spec) == (1, 4, 1)
    (msg,) = TASK.data_notices(recs, LABELS, spec)
    assert "1 of 4 training boxes" in msg and "grid 2x2" in msg
    assert TASK.data_notices(recs[1:], LABELS, spec) == []
    cfg = TrainConfig(project=str(demo_copy), model="yolo_v1", epochs=1, max_steps=1, batch_size=2, max_images=6,
                      val_split="", min_size=64, device="cpu", extra={"yolo_S": 1})
    sink = Collector()
    train_job(cfg.to_dict(), sink, CancelToken())
    assert any("share a cell with a larger box and are never learned" in n.message for n in sink.of(Notice))


def test_conv_head_option_keeps_the_output_layout():
    spec = _spec(TrainConfig(model="yolo_v1", min_size=64, extra={"yolo_head": "conv", "yolo_S": 3}))
    assert spec.head == "conv" and _spec(TrainConfig(model="yolo_v1")).head == "conv"  # the default learns on a CPU
    assert _spec(TrainConfig(model="yolo_v1", extra={"yolo_head": "fc"})).head == "fc"  # the paper's head
    with pytest.raises(ValueError, match="yolo_head must be one of fc | conv"):
        spec_options({"yolo_head": "mlp"})
    model, _ = build_yolo_detector(spec)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    model.eval()
    with torch.no_grad():
        pred, _ = model.raw([torch.rand(3, 50, 70)])
    assert pred.shape == (1, 3, 3, 2 * 5 + 3)
    torch.testing.assert_close(pred[..., 10:].sum(-1), torch.ones(1, 3, 3))  # mse: probabilities
    assert TASK.spec_from_dict({k: v for k, v in spec.to_dict().items() if k != "head"}).head == "fc"  # old checkpoints
