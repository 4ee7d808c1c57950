"""Grad-CAM (engine.internals.gradcam) lights what a trained classifier looks at and maps back to ORIGINAL pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.internals.gradcam import grad_cam
from engine.internals.run import InternalsError
from engine.internals.targets import Target
from engine.models.deeplab import DeeplabSpec, build_deeplab
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.models.yolo_v1_detector import YoloDetectorSpec, build_yolo_detector
from engine.tasks.faster_rcnn import TASK as FRCNN
from engine.tasks.tagger import TASK as TAGGER


def _square(img: np.ndarray, quadrant: int, value: int, rng: np.random.Generator) -> None:
    oy, ox = (quadrant // 2) * 16, (quadrant % 2) * 16
    s = int(rng.integers(5, 9))
    y, x = oy + int(rng.integers(1, 16 - s)), ox + int(rng.integers(1, 16 - s))
    img[y:y + s, x:x + s] = value


def _quadrant_images(n: int, rng: np.random.Generator, positive: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """32 x 32 noise with dim squares in two quadrants; label 1 images also hold one BRIGHT square in the
    remaining quadrant ``quadrants[k]``: the classifier must find the bright one and ignore the decoys."""
    imgs = rng.integers(0, 50, (n, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 2, n) if positive is None else np.full(n, positive)
    quadrants = rng.integers(0, 4, n)
    for k in range(n):
        for q in rng.choice([q for q in range(4) if q != quadrants[k]], 2, replace=False):
            _square(imgs[k], int(q), int(rng.integers(100, 140)), rng)
        if labels[k]:
            _square(imgs[k], int(quadrants[k]), int(rng.integers(220, 256)), rng)
    return imgs, labels, quadrants


def test_a_trained_classifier_lights_the_quadrant_it_looks_at():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                        nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(250):
        im, lab, _ = _quadrant_images(32, rng)
        loss = nn.functional.cross_entropy(net(torch.tensor(im).permute(0, 3, 1, 2).float() / 255), torch.tensor(lab))
        opt.zero_grad()
        loss.backward()
        opt.step()
    im, lab, _ = _quadrant_images(64, np.random.default_rng(1))
    with torch.no_grad():
        accuracy = (net(torch.tensor(im).permute(0, 3, 1, 2).float() / 255).argmax(1).numpy() == lab).mean()
    assert accuracy >= 0.9
    im, _, quadrants = _quadrant_images(8, np.random.default_rng(2), positive=1)
    for k in range(8):
        g = grad_cam(net, im[k], layer="5", target=1)  # the last ReLU: (16, 8, 8), stride 4
        assert g.cam.shape == (32, 32) and g.cam.dtype == np.float32 and g.cam.max() == 1 and g.cam.min() >= 0
        assert g.target_label == 1 and g.target_score > 0.5 and np.isnan(g.target_box).all()
        oy, ox = (quadrants[k] // 2) * 16, (quadrants[k] % 2) * 16
        mass = g.cam[oy:oy + 16, ox:ox + 16].sum() / g.cam.sum()
        assert mass > 0.5, (k, mass)


def _blocks(cam: np.ndarray) -> np.ndarray:
    h, w = cam.shape
    return cam.reshape(h // 2, 2, w // 2, 2).mean((1, 3))


@pytest.fixture(scope="module")
def detector() -> nn.Module:
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=3, min_size=128, max_size=512))
    model.roi_heads.score_thresh = 0.0  # an untrained model: keep its (low-scoring) detections
    return model.eval()


def _scene(h: int = 128, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    img[40:80, 90:130] = 230
    return img


def test_detector_cam_of_an_upscaled_image_moves_with_it(detector: nn.Module):
    # 128 x 160 enters the model as it is; 256 x 320 is resized by 0.5 to exactly the same input, so the
    # maps in the model's frame are the same and only the mapping back to original pixels differs (x2)
    img = _scene()
    big = img.repeat(2, 0).repeat(2, 1)
    g1 = grad_cam(detector, img, "backbone.stages.1")
    g2 = grad_cam(detector, big, "backbone.stages.1")
    assert g1.cam.shape == (128, 160) and g2.cam.shape == (256, 320)
    assert g1.target_index == g2.target_index == 0 and g1.target_label == g2.target_label
    assert np.allclose(g2.target_box, 2 * g1.target_box, atol=1e-3)
    assert g1.target_score == pytest.approx(g2.target_score)
    top = FRCNN.predict(detector, [big], torch.device("cpu"))[0]
    assert np.allclose(g2.target_box, top["boxes"][0]) and g2.target_label == top["labels"][0]  # default: top one
    assert np.abs(_blocks(g2.cam) - g1.cam).max() < 0.05
    p1 = np.array(np.unravel_index(g1.cam.argmax(), g1.cam.shape))
    p2 = np.array(np.unravel_index(g2.cam.argmax(), g2.cam.shape))
    assert np.abs(p2 - 2 * p1).max() <= 2, (p1, p2)


def test_detector_cam_of_an_explicit_box_and_fpn_levels(detector: nn.Module):
    img, big = _scene(), _scene().repeat(2, 0).repeat(2, 1)
    g1 = grad_cam(detector, img, "backbone.stages.0", Target(box=(90, 40, 130, 80), label=1))
    g2 = grad_cam(detector, big, "backbone.stages.0", Target(box=(180, 80, 260, 160), label=1))
    assert g1.target_index == -1 and np.allclose(g1.target_box, [90, 40, 130, 80]) and 0 < g1.target_score < 1
    assert g1.target_score == pytest.approx(g2.target_score, abs=1e-5)
    assert np.abs(_blocks(g2.cam) - g1.cam).max() < 0.1
    g = grad_cam(detector, img)  # default layer: every FPN level, summed
    assert g.layer == "backbone.fpn" and g.cam.shape == (128, 160) and np.isfinite(g.cam).all()
    with pytest.raises(InternalsError, match="needs a label"):
        grad_cam(detector, img, target=Target(box=(1, 2, 30, 40)))
    with pytest.raises(InternalsError, match="out of range"):
        grad_cam(detector, img, target=10_000)


def test_no_detection_is_a_notice_not_an_error():
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=3, min_size=128, max_size=256))
    model.eval().roi_heads.score_thresh = 1.1  # nothing can pass
    g = grad_cam(model, _scene())
    assert g.target_label == -1 and g.target_index == -1 and "no detection" in g.notice and not g.cam.any()


def test_yolo_detection_and_box_targets():
    torch.manual_seed(0)
    model, _ = build_yolo_detector(YoloDetectorSpec(input_size=128, num_classes=2, score_threshold=0.0))
    model.eval()
    img = _scene()
    g = grad_cam(model, img)
    with torch.no_grad():
        top = model([torch.tensor(img).permute(2, 0, 1).float() / 255])[0]
    assert np.allclose(g.target_box, top["boxes"][0].numpy()) and g.target_label == int(top["labels"][0])
    assert g.target_score == pytest.approx(float(top["scores"][0])) and g.cam.shape == (128, 160)
    g1 = grad_cam(model, img, "net.backbone.body.3", Target(box=(90, 40, 130, 80), label=2))
    g2 = grad_cam(model, img.repeat(2, 0).repeat(2, 1), "net.backbone.body.3", Target(box=(180, 80, 260, 160), label=2))
    assert g1.target_label == 2 and g1.cam.max() == 1
    assert np.corrcoef(_blocks(g2.cam).ravel(), g1.cam.ravel())[0, 1] > 0.9  # the x2 image is blurred by the resize


def test_segmentation_and_tagger_targets():
    torch.manual_seed(0)
    seg, _ = build_deeplab(DeeplabSpec(num_classes=3, min_size=64, max_size=128, pretrained=False))
    img = _scene(96, 120)
    g = grad_cam(seg.eval(), img)
    assert g.layer == "net.backbone.layers.3" and g.cam.shape == (96, 120) and 0 <= g.target_label < 3
    assert 0 < g.target_score <= 1 and np.isnan(g.target_box).all()
    assert grad_cam(seg, img, target=2).target_label == 2
    from engine.models.tagger import TaggerSpec

    tagger, _ = TAGGER.build(TaggerSpec(num_tags=3, input_size=64, mode="multilabel"))
    g = grad_cam(tagger.eval(), img, target=1)
    assert g.layer == "net.net.features" and g.target_label == 1 and g.cam.shape == (96, 120)
    with pytest.raises(InternalsError, match="out of range"):
        grad_cam(tagger, img, target=3)
