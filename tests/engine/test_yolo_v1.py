"""YOLOv1: spec, model shapes, target coding, the paper's loss term by term, decoding and overfitting."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import batched_nms

from engine.models.yolo_v1 import YoloSpec, build_yolo_v1
from engine.models.yolo_v1_boxes import decode_predictions, decode_targets, encode_targets, stack_targets
from engine.models.yolo_v1_loss import LOSS_KEYS, yolo_v1_loss


def _spec(**kw) -> YoloSpec:
    base = dict(num_classes=3, S=4, B=2, input_size=64, hidden=32, head_channels=16, dropout=0.0)
    base.update(kw)
    return YoloSpec(**base)


def test_spec_round_trip_and_defaults():
    s = _spec(class_loss="focal")
    assert YoloSpec.from_dict(s.to_dict()) == s
    assert YoloSpec.from_dict({}) == YoloSpec()
    assert YoloSpec().lambda_coord == 5.0 and YoloSpec().lambda_noobj == 0.5
    with pytest.raises(ValueError):
        YoloSpec.from_dict({"nope": 1})
    with pytest.raises(ValueError):
        YoloSpec(backbone="vgg").validate()
    with pytest.raises(ValueError):
        YoloSpec(class_loss="bce").validate()


@pytest.mark.parametrize("backbone", ["tiny", "resnet18"])
def test_output_shape_and_ranges(backbone):
    spec = YoloSpec(backbone=backbone, num_classes=3, S=7, B=2, input_size=96, hidden=32, head_channels=16)
    model, notices = build_yolo_v1(spec)
    assert any("one object per grid cell" in n for n in notices)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 7, 7, 2 * 5 + 3)
    assert out[..., :10].min() >= 0 and out[..., :10].max() <= 1
    torch.testing.assert_close(out[..., 10:].sum(-1), torch.ones(2, 7, 7))  # mse: probabilities


def test_resnet18_pretrained_without_or_with_bad_local_weights(monkeypatch, tmp_path):
    import engine.models.yolo_v1 as yolo

    spec = YoloSpec(backbone="resnet18", num_classes=2, S=2, input_size=64, hidden=8, head_channels=8,
                    pretrained=True)
    monkeypatch.setattr(yolo, "local_weights_file", lambda url: None)
    _, notices = build_yolo_v1(spec)
    assert any("no local ImageNet weights" in n for n in notices)
    bad = tmp_path / "resnet18.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(yolo, "local_weights_file", lambda url: bad)
    model, notices = build_yolo_v1(spec)
    assert any("could not load" in n for n in notices)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 2, 12)


def test_ce_model_outputs_logits():
    model, _ = build_yolo_v1(_spec(class_loss="ce"))
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert not torch.allclose(out[..., 10:].sum(-1), torch.ones(1, 4, 4))


def test_encode_decode_reproduces_boxes():
    boxes = torch.tensor([[3.0, 5.0, 20.5, 30.25], [40.0, 2.0, 63.0, 17.0], [10.0, 40.0, 60.0, 64.0]])
    labels = torch.tensor([2, 0, 1])
    t = encode_targets(boxes, labels, S=4, input_size=64, num_classes=3)
    assert t["obj"].sum() == 3 and t["dropped"].numel() == 0
    assert t["box"][..., :2].min() >= 0 and t["box"][..., :2].max() <= 1
    d = decode_targets(t, S=4, input_size=64)
    order = torch.argsort(d["gt_index"])
    torch.testing.assert_close(d["boxes"][order], boxes, atol=1e-4, rtol=0)
    assert d["labels"][order].tolist() == [2, 0, 1]


def test_two_centres_in_one_cell_drop_the_smaller():
    # both centres in cell (row 0, col 0) of a 4x4 grid over 64 px (cells are 16 px)
    boxes = torch.tensor([[2.0, 2.0, 10.0, 10.0], [0.0, 0.0, 20.0, 20.0], [40.0, 40.0, 50.0, 50.0]])
    t = encode_targets(boxes, torch.tensor([0, 1, 2]), S=4, input_size=64, num_classes=3)
    assert t["dropped"].tolist() == [0]  # the smaller one loses the cell
    assert t["gt_index"][0, 0] == 1 and t["cls"][0, 0] == 1
    # equal areas: the first one wins
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 12.0, 12.0]])
    assert encode_targets(same, torch.tensor([0, 1]), 4, 64, 3)["dropped"].tolist() == [1]
    d = decode_targets(t, 4, 64)
    assert sorted(d["gt_index"].tolist()) == [1, 2]


def _perfect_prediction(t: dict, spec: YoloSpec) -> torch.Tensor:
    S, B, C = spec.S, spec.B, spec.num_classes
    pred = torch.zeros(1, S, S, B * 5 + C)
    pred[0, ..., 0:4] = t["box"]  # predictor 0 carries the exact box
    pred[0, ..., 4] = t["obj"].float()  # conf 1 where it is responsible (IoU 1), 0 elsewhere
    pred[0, ..., 5:9] = 0.25  # predictor 1: some box, conf 0
    pred[0, ..., B * 5:] = torch.nn.functional.one_hot(t["cls"], C).float() * t["obj"][..., None]
    return pred


def test_perfect_prediction_has_zero_loss():
    spec = _spec()
    boxes = torch.tensor([[3.0, 5.0, 20.5, 30.25], [40.0, 2.0, 63.0, 17.0]])
    t = encode_targets(boxes, torch.tensor([2, 0]), spec.S, spec.input_size, spec.num_classes)
    losses = yolo_v1_loss(_perfect_prediction(t, spec), stack_targets([t]), spec)
    assert set(losses) == set(LOSS_KEYS)
    for k, v in losses.items():
        assert abs(float(v)) < 1e-10, (k, float(v))


def _hand_example() -> tuple[torch.Tensor, dict]:
    """2x2 grid, B=2, C=2, batch of 2 (the second image is empty)."""
    S, B, C = 2, 2, 2
    pred = torch.zeros(2, S, S, B * 5 + C)
    pred[..., 4] = 0.1  # every predictor's conf, unless set below
    pred[..., 9] = 0.1
    # image 0, cell (0, 0): GT centre offset (0.5, 0.5), sqrt sizes 0.5 -> box [0.125, 0.375]^2
    pred[0, 0, 0, 0:5] = torch.tensor([0.6, 0.5, 0.5, math.sqrt(0.125), 0.7])  # IoU 4/11 (overlap 0.2 x 0.125)
    pred[0, 0, 0, 5:10] = torch.tensor([0.0, 0.0, 0.1, 0.1, 0.2])  # tiny box at (0, 0): IoU 0
    pred[0, 0, 0, 10:12] = torch.tensor([0.8, 0.2])  # GT class 1
    # image 0, cell (1, 1): GT [0.5, 0.5, 0.5, 0.5] -> box [0.625, 0.875]^2; neither predictor overlaps it
    pred[0, 1, 1, 0:5] = torch.tensor([0.0, 0.0, 0.1, 0.1, 0.3])  # distance 2*0.25 + 2*0.16 = 0.82
    pred[0, 1, 1, 5:10] = torch.tensor([0.9, 0.9, 0.1, 0.1, 0.4])  # distance 4*0.16 = 0.64 -> responsible
    pred[0, 1, 1, 10:12] = torch.tensor([0.5, 0.5])  # GT class 0
    obj = torch.zeros(2, S, S, dtype=torch.bool)
    obj[0, 0, 0] = obj[0, 1, 1] = True
    box = torch.zeros(2, S, S, 4)
    box[0, 0, 0] = box[0, 1, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    cls = torch.zeros(2, S, S, dtype=torch.int64)
    cls[0, 0, 0] = 1
    return pred, {"obj": obj, "box": box, "cls": cls}


def test_hand_computed_2x2_example():
    spec = YoloSpec(num_classes=2, S=2, B=2)
    pred, targets = _hand_example()
    losses = {k: float(v) for k, v in yolo_v1_loss(pred, targets, spec).items()}
    N = 2
    exp_xy = 5 * ((0.6 - 0.5) ** 2 + 0.0) + 5 * ((0.9 - 0.5) ** 2 + (0.9 - 0.5) ** 2)
    exp_wh = 5 * ((math.sqrt(0.125) - 0.5) ** 2) + 5 * (2 * (0.1 - 0.5) ** 2)
    exp_obj = (0.7 - 4 / 11) ** 2 + (0.4 - 0.0) ** 2
    # not responsible: cell (0,0) predictor 1, cell (1,1) predictor 0, 2 empty cells x 2 in image 0, 8 in image 1
    exp_noobj = 0.5 * (0.2**2 + 0.3**2 + 4 * 0.1**2 + 8 * 0.1**2)
    exp_cls = (0.8 - 0) ** 2 + (0.2 - 1) ** 2 + (0.5 - 1) ** 2 + (0.5 - 0) ** 2
    expected = dict(loss_xy=exp_xy, loss_wh=exp_wh, loss_obj=exp_obj, loss_noobj=exp_noobj, loss_cls=exp_cls)
    for k, v in expected.items():
        assert losses[k] == pytest.approx(v / N, rel=1e-5), k


def test_hand_computed_ce_and_focal_class_terms():
    pred, targets = _hand_example()
    ce = float(yolo_v1_loss(pred, targets, YoloSpec(num_classes=2, S=2, B=2, class_loss="ce"))["loss_cls"])
    p1 = math.exp(0.2) / (math.exp(0.8) + math.exp(0.2))  # cell (0,0), logits (0.8, 0.2), GT class 1
    assert ce == pytest.approx((-math.log(p1) - math.log(0.5)) / 2, rel=1e-5)
    spec = YoloSpec(num_classes=2, S=2, B=2, class_loss="focal", focal_gamma=2.0)
    focal = float(yolo_v1_loss(pred, targets, spec)["loss_cls"])
    exp = -((1 - p1) ** 2) * math.log(p1) - (0.5**2) * math.log(0.5)
    assert focal == pytest.approx(exp / 2, rel=1e-5)


def test_tie_goes_to_lowest_index():
    spec = YoloSpec(num_classes=2, S=2, B=2)
    pred, targets = _hand_example()
    pred[0, 0, 0, 5:9] = pred[0, 0, 0, 0:4]  # both predictors identical -> predictor 0 is responsible
    pred[0, 0, 0, 9] = 0.0
    base = yolo_v1_loss(pred, targets, spec)["loss_obj"]
    pred[0, 0, 0, 9] = 0.5  # predictor 1's conf only enters the no-object term
    assert float(yolo_v1_loss(pred, targets, spec)["loss_obj"]) == pytest.approx(float(base))


def test_gradients_finite_when_sqrt_w_is_zero():
    spec = YoloSpec(num_classes=2, S=2, B=2)
    pred, targets = _hand_example()
    pred[..., [2, 3, 7, 8]] = 0.0  # every predicted box has zero width and height
    pred.requires_grad_(True)
    sum(yolo_v1_loss(pred, targets, spec).values()).backward()
    assert torch.isfinite(pred.grad).all()
    # through the model: raw sqrt_w driven towards sigmoid(-inf)
    model, _ = build_yolo_v1(_spec())
    with torch.no_grad():
        bias = model.head.fc[-1].bias.view(4, 4, -1)
        bias[..., [2, 3, 7, 8]] = -200.0
    t = encode_targets(torch.tensor([[3.0, 5.0, 20.0, 30.0]]), torch.tensor([1]), 4, 64, 3)
    out = model(torch.rand(2, 3, 64, 64))
    assert float(out[..., 2].detach().max()) < 1e-30
    total = sum(yolo_v1_loss(out, stack_targets([t, t]), model.spec).values())
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_decode_predictions_and_nms_match_torchvision():
    torch.manual_seed(0)
    S, B, C = 4, 2, 3
    pred = torch.rand(S, S, B * 5 + C)
    pred[..., B * 5:] = torch.softmax(torch.randn(S, S, C) * 3, dim=-1)
    out = decode_predictions(pred, S, B, input_size=64, scale=(2.0, 0.5), score_threshold=0.05, nms_iou=0.4)
    assert out["boxes"].shape == (S, S, B, 4) and out["conf"].shape == (S, S, B)
    assert out["class_prob"].shape == (S, S, C) and out["scores"].shape == (S, S, B, C)
    # a box by hand: cell (1, 2), predictor 1
    x, y, sw, sh = pred[1, 2, 5:9].tolist()
    cx, cy, w, h = (2 + x) / S * 64, (1 + y) / S * 64, sw**2 * 64, sh**2 * 64
    exp = torch.tensor([max(cx - w / 2, 0) * 2, max(cy - h / 2, 0) * 0.5,
                        min(cx + w / 2, 64) * 2, min(cy + h / 2, 64) * 0.5])
    torch.testing.assert_close(out["boxes"][1, 2, 1], exp)
    torch.testing.assert_close(out["scores"][1, 2, 1], pred[1, 2, 9] * pred[1, 2, 10:])
    assert (out["pre_nms_scores"] > 0.05).all()
    assert out["pre_nms_scores"].numel() == int((out["scores"] > 0.05).sum())
    keep = batched_nms(out["pre_nms_boxes"], out["pre_nms_scores"], out["pre_nms_labels"], 0.4)
    torch.testing.assert_close(out["det_boxes"], out["pre_nms_boxes"][keep])
    torch.testing.assert_close(out["det_scores"], out["pre_nms_scores"][keep])
    assert torch.equal(out["det_labels"], out["pre_nms_labels"][keep])
    few = decode_predictions(pred, S, B, 64, score_threshold=0.0, max_detections=3)
    assert few["det_scores"].numel() == 3
    logits = decode_predictions(pred, S, B, 64, class_logits=True)
    torch.testing.assert_close(logits["class_prob"], torch.softmax(pred[..., B * 5:], dim=-1))


def test_decode_targets_as_perfect_prediction_gives_gt_detections():
    spec = _spec()
    boxes = torch.tensor([[3.0, 5.0, 20.5, 30.25], [40.0, 2.0, 63.0, 17.0]])
    t = encode_targets(boxes, torch.tensor([2, 0]), spec.S, spec.input_size, spec.num_classes)
    out = decode_predictions(_perfect_prediction(t, spec)[0], spec.S, spec.B, spec.input_size, scale=(2.0, 2.0),
                             score_threshold=0.5)
    order = torch.argsort(out["det_labels"], descending=True)
    torch.testing.assert_close(out["det_boxes"][order], boxes * 2, atol=1e-3, rtol=0)
    assert out["det_labels"][order].tolist() == [2, 0]


def test_overfits_one_tiny_batch():
    torch.manual_seed(0)
    spec = _spec(S=4, input_size=64, hidden=64, head_channels=16)
    model, _ = build_yolo_v1(spec)
    images = torch.rand(2, 3, 64, 64)
    gts = [(torch.tensor([[4.0, 6.0, 30.0, 28.0], [36.0, 34.0, 60.0, 62.0]]), torch.tensor([0, 2])),
           (torch.tensor([[10.0, 40.0, 50.0, 60.0]]), torch.tensor([1]))]
    targets = stack_targets([encode_targets(b, lab, spec.S, spec.input_size, spec.num_classes) for b, lab in gts])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    first = last = None
    for _ in range(150):
        total = sum(yolo_v1_loss(model(images), targets, spec).values())
        opt.zero_grad()
        total.backward()
        opt.step()
        first = total.item() if first is None else first
        last = total.item()
        if last < 0.05 * first:  # the brief asks for < 30 %; it reaches 5 % in ~40 steps
            break
    assert last < 0.05 * first, (first, last)
