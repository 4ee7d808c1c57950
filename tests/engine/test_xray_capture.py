"""X-ray capture against torchvision's own components (tiny real Faster R-CNN, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.transform import resize_boxes

from engine.data.tensors import image_tensor
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.xray.anchors import anchors_at, box_iou
from engine.xray.capture import capture, capture_with_outputs
from engine.xray.nms import detections_keep, proposals_keep

SIZES = ((12, 20), (24, 40), (48, 80), (96, 160), (192, 320))
RATIOS = (0.5, 1.0, 2.0)


def _model(seed: int = 0) -> torch.nn.Module:
    """A tiny detector with spread-out heads, so scores and boxes are not all ties."""
    torch.manual_seed(seed)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=4, anchor_sizes=SIZES, aspect_ratios=RATIOS,
                                              min_size=224, max_size=400, pretrained=False,
                                              box_batch_size_per_image=128))  # < proposals: a full sample
    with torch.no_grad():
        model.rpn.head.cls_logits.weight.normal_(0, 0.3)
        model.rpn.head.bbox_pred.weight.normal_(0, 0.02)
        model.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.3)
        model.roi_heads.box_predictor.bbox_pred.weight.normal_(0, 0.02)
    return model.eval()


def _image(h: int = 190, w: int = 290, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[40:110, 30:90] = (220, 40, 40)
    gt = np.array([[30, 40, 90, 110], [150, 60, 260, 170], [200, 10, 212, 21]], np.float32)
    return img, gt, np.array([1, 2, 3], np.int64)


@pytest.fixture(scope="module")
def captured() -> tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray, dict]:
    model = _model()
    img, gt, labels = _image()
    return model, img, gt, labels, capture(model, img, gt, labels)


def _model_frame(model: torch.nn.Module, img: np.ndarray, gt: np.ndarray, labels: np.ndarray):
    """The transform's image list and GT in the model frame, computed by torchvision itself."""
    target = {"boxes": torch.as_tensor(gt), "labels": torch.as_tensor(labels)}
    with torch.no_grad():
        images, targets = model.transform([image_tensor(img)], [target])
        feats = model.backbone(images.tensors)
    return images, targets[0], feats


def test_anchors_equal_anchor_generator_mapped_to_original(captured):
    model, img, gt, labels, a = captured
    images, _, feats = _model_frame(model, img, gt, labels)
    ref = AnchorGenerator(SIZES, (RATIOS,) * len(SIZES))(images, list(feats.values()))[0]
    in_hw = images.image_sizes[0]
    assert tuple(a["input_size"]) == tuple(in_hw) and tuple(a["image_size"]) == img.shape[:2]
    assert in_hw != img.shape[:2]  # the test really exercises the mapping
    mapped = resize_boxes(ref, list(in_hw), list(img.shape[:2])).numpy()
    assert a["anchors"].shape == mapped.shape and a["anchors"].dtype == np.float32
    assert np.array_equal(a["anchors"], mapped)
    by_hand = ref.numpy() * np.array([img.shape[1] / in_hw[1], img.shape[0] / in_hw[0]] * 2)
    np.testing.assert_allclose(a["anchors"], by_hand, rtol=1e-5, atol=1e-3)
    # ids: level / nominal size / ratio of every anchor agree with its input-frame width and height
    w_in, h_in = (ref[:, 2] - ref[:, 0]).numpy(), (ref[:, 3] - ref[:, 1]).numpy()
    r = a["anchor_ratio"]
    np.testing.assert_allclose(w_in, np.round(a["anchor_size"] / np.sqrt(r) / 2) * 2, atol=1.01)
    np.testing.assert_allclose(h_in, np.round(a["anchor_size"] * np.sqrt(r) / 2) * 2, atol=1.01)
    counts = [np.sum(a["anchor_level"] == i) for i in range(len(SIZES))]
    assert counts == [f.shape[-2] * f.shape[-1] * len(s) * len(RATIOS) for f, s in zip(feats.values(), SIZES)]


def test_anchor_labels_equal_assign_targets_to_anchors(captured):
    model, img, gt, labels, a = captured
    images, target, feats = _model_frame(model, img, gt, labels)
    anchors = model.rpn.anchor_generator(images, list(feats.values()))
    ref_labels, _ = model.rpn.assign_targets_to_anchors(anchors, [target])
    assert np.array_equal(a["anchor_label"], ref_labels[0].numpy().astype(np.int8))
    assert {-1, 0, 1} <= set(np.unique(a["anchor_label"]).tolist())
    # every GT has a positive anchor here (low-quality matches), and the best IoU is consistent
    assert set(a["anchor_matched_gt"][a["anchor_label"] == 1].tolist()) == {0, 1, 2}
    iou = box_iou(gt, a["anchors"])
    np.testing.assert_allclose(a["anchor_iou"], iou.max(0), atol=1e-4)
    # the RPN's sample: 256 anchors, never ignored ones, at most half positive
    s = a["anchor_sampled"]
    assert s.sum() == 256 and not np.any(a["anchor_label"][s] == -1)
    assert 0 < np.sum(a["anchor_label"][s] == 1) <= 128


def test_sampling_is_seeded_and_matches_torchvision_samplers(captured):
    model, img, gt, labels, a = captured
    images, target, feats = _model_frame(model, img, gt, labels)
    b = capture(model, img, gt, labels)
    assert np.array_equal(a["anchor_sampled"], b["anchor_sampled"]) and np.array_equal(a["rois"], b["rois"])
    c = capture(model, img, gt, labels, seed=5)
    assert not np.array_equal(a["anchor_sampled"], c["anchor_sampled"])
    # the RoI sample: torchvision's select_training_samples on the RPN's training-mode proposals
    fg = a["roi_label"] > 0
    assert len(a["rois"]) == model.roi_heads.fg_bg_sampler.batch_size_per_image
    assert 0 < fg.sum() <= 0.25 * len(a["rois"])
    assert np.all(a["roi_iou"][fg] >= 0.5) and np.all(a["roi_iou"][~fg] < 0.5)
    assert np.array_equal(a["roi_label"][fg], labels[a["roi_matched_gt"][fg]])
    assert np.all(a["roi_matched_gt"][~fg] == -1)


def test_capture_leaves_model_and_outputs_bit_identical():
    model = _model(3)
    img, gt, labels = _image(seed=4)
    x = image_tensor(img)
    with torch.no_grad():
        ref = model([x])[0]
    model.train()
    model.backbone.stem[1].eval()  # a module deliberately in another mode must stay so
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    arrays, outputs = capture_with_outputs(model, img, gt, labels)
    assert model.training and not model.backbone.stem[1].training and model.rpn.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN stats untouched
    assert torch.equal(torch.get_rng_state(), rng)
    assert "filter_proposals" not in vars(model.rpn) and "postprocess_detections" not in vars(model.roi_heads)
    assert not model.transform._forward_hooks and not model.backbone._forward_hooks
    for key in ("boxes", "scores", "labels"):
        assert torch.equal(outputs[0][key], ref[key])
    assert np.array_equal(arrays["detections"], ref["boxes"].numpy())
    assert np.array_equal(arrays["detections_score"], ref["scores"].numpy())
    assert np.array_equal(arrays["detections_label"], ref["labels"].numpy())
    model.eval()
    with torch.no_grad():
        again = model([x])[0]
    assert torch.equal(again["boxes"], ref["boxes"]) and torch.equal(again["scores"], ref["scores"])


@pytest.mark.parametrize("seed", [0, 1])
def test_rerun_nms_on_captured_pre_nms_reproduces_eval_output(seed):
    model = _model(seed)
    img, gt, labels = _image(seed=seed + 10)
    a = capture(model, img, gt, labels)
    with torch.no_grad():
        ref = model([image_tensor(img)])[0]
    assert len(ref["boxes"]) > 5 and len(a["detections_pre_nms"]) > len(ref["boxes"])
    score_t, nms_t, top_k = a["box_params"]
    keep = detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"], a["detections_pre_nms_label"],
                           score_t, nms_t, int(top_k))
    assert np.array_equal(a["detections_pre_nms"][keep], ref["boxes"].numpy())
    assert np.array_equal(a["detections_pre_nms_score"][keep], ref["scores"].numpy())
    assert np.array_equal(a["detections_pre_nms_label"][keep], ref["labels"].numpy())
    # a looser IoU keeps more boxes, a higher score threshold fewer
    assert len(detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"],
                               a["detections_pre_nms_label"], score_t, 0.9, 10_000)) > len(keep)
    assert len(detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"],
                               a["detections_pre_nms_label"], 0.9, nms_t, int(top_k))) < len(keep)
    # proposals: per-level NMS on the captured pre-NMS proposals gives the RPN's output
    rpn_nms, post_n = a["rpn_params"][:2]
    pkeep = proposals_keep(a["proposals_pre_nms"], a["proposals_pre_nms_score"], a["proposals_pre_nms_level"],
                           rpn_nms, int(post_n))
    assert np.array_equal(a["proposals_pre_nms"][pkeep], a["proposals"])
    assert np.array_equal(a["proposals_pre_nms_score"][pkeep], a["proposals_score"])
    images, _, feats = _model_frame(model, img, gt, labels)
    with torch.no_grad():
        rpn_boxes, _ = model.rpn(images, feats)
    mapped = resize_boxes(rpn_boxes[0], list(images.image_sizes[0]), list(img.shape[:2])).numpy()
    assert np.array_equal(a["proposals"], mapped)
    # pre-NMS proposals point back at the anchor they were decoded from, on its level
    assert np.array_equal(a["anchor_level"][a["proposals_pre_nms_anchor"]], a["proposals_pre_nms_level"])


def test_anchors_at_a_pixel_are_centred_there_on_every_level(captured):
    _, img, _, _, a = captured
    x, y = 101.3, 77.8
    idx = anchors_at(a, x, y)
    assert len(idx) == sum(len(s) for s in SIZES) * len(RATIOS)
    assert sorted(set(a["anchor_level"][idx].tolist())) == list(range(len(SIZES)))
    centres = (a["anchors"][idx, :2] + a["anchors"][idx, 2:]) / 2
    for lvl in range(len(SIZES)):
        c = centres[a["anchor_level"][idx] == lvl]
        assert np.allclose(c, c[0], atol=1e-3)  # one location per level
        st = a["level_stride"][lvl][::-1] * a["scale"]  # (x, y) stride in original pixels
        assert np.all(np.abs(c[0] - (x, y)) <= st / 2 + 1e-3)


def test_capture_without_gt_and_bad_input():
    model = _model()
    img, _, _ = _image()
    a = capture(model, img)
    assert a["gt_boxes"].shape == (0, 4) and np.all(a["anchor_label"] == 0)
    assert np.all(a["roi_label"] == 0) and a["anchor_sampled"].sum() == 256
    with pytest.raises(ValueError, match="gt_labels"):
        capture(model, img, np.zeros((2, 4)), np.zeros(1))
    with pytest.raises(ValueError, match="uint8"):
        capture(model, img.astype(np.float32))
    with pytest.raises(ValueError, match="roi index"):
        capture(model, img, roi_index=10_000)
