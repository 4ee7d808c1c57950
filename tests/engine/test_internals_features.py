"""Feature maps (engine.internals.features) equal a plain forward hook's output; their cells map to ORIGINAL pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data.tensors import image_tensor
from engine.internals.features import feature_map
from engine.internals.run import InternalsError
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.models.yolo_v1_detector import YoloDetectorSpec, build_yolo_detector


@pytest.fixture(scope="module")
def detector() -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(min_size=128, max_size=256))
    return model.eval()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
    img[h // 4:h // 2, w // 3:w // 2] = 220
    return img


def _hooked(model: torch.nn.Module, name: str, image: np.ndarray) -> torch.Tensor:
    """The module's output as a plain forward hook sees it (cloned: a later in-place ReLU must not change it)."""
    got: list[torch.Tensor] = []
    module = model.get_submodule(name)
    h = module.register_forward_hook(lambda m, a, out: got.append(
        (out if isinstance(out, torch.Tensor) else next(iter(out.values()))).detach().clone()))
    try:
        with torch.no_grad():
            model([image_tensor(image)])  # the engine's one conversion: same input bits
    finally:
        h.remove()
    return got[-1][0]


@pytest.mark.parametrize("layer", ["backbone.stages.1", "backbone.stem.1", "backbone.fpn.layer_blocks.2",
                                   "backbone.fpn"])
def test_feature_map_equals_a_forward_hook(detector: torch.nn.Module, layer: str):
    image = _image(100, 140)  # resized by the model: 128 x 179
    fm = feature_map(detector, image, layer)
    ref = _hooked(detector, layer, image).numpy()
    assert fm.feature.dtype == np.float32 and fm.feature.shape == ref.shape
    assert np.array_equal(fm.feature, ref[fm.channel_order])  # exactly the layer's output, channels reordered
    assert sorted(fm.channel_order.tolist()) == list(range(ref.shape[0]))
    means = fm.channel_mean
    assert np.all(np.diff(means) <= 0) and np.allclose(means, ref.mean((1, 2))[fm.channel_order], atol=1e-6)
    if layer == "backbone.stem.1":  # a BatchNorm followed by ReLU(inplace=True): the pre-ReLU values
        assert (fm.feature < 0).any()


def test_cells_map_to_original_pixels_through_the_resize(detector: torch.nn.Module):
    image = _image(100, 140)
    fm = feature_map(detector, image, "backbone.stages.1")
    assert fm.frame.image_hw == (100, 140) and fm.frame.input_hw == (128, 179)  # torchvision: short side 128
    assert tuple(fm.stride) == (8, 8) and tuple(fm.receptive_field) == (43, 43)
    sx, sy = 140 / 179, 100 / 128
    # cell (2, 3): centre (0.5 + 3 * 8, 0.5 + 2 * 8) in the input, field +-21.5, scaled to the original image
    expected = np.array([(24.5 - 21.5) * sx, (16.5 - 21.5) * sy, (24.5 + 21.5) * sx, (16.5 + 21.5) * sy], np.float32)
    assert np.allclose(fm.cell_box(2, 3), expected, atol=1e-4)
    xs, ys = fm.cell_centers()
    assert xs.shape == (fm.feature.shape[2],) and ys.shape == (fm.feature.shape[1],)
    assert np.allclose(xs[:2], [0.5 * sx, 8.5 * sx]) and np.allclose(fm.cell_step(), [8 * sx, 8 * sy])


def test_yolo_square_resize_and_default_layer():
    torch.manual_seed(0)
    model, _ = build_yolo_detector(YoloDetectorSpec(input_size=128, num_classes=2))
    model.eval()
    image = _image(90, 200)
    fm = feature_map(model, image)
    assert fm.layer.name == "net.backbone.body.4" and fm.feature.shape == (256, 4, 4)
    assert fm.frame.input_hw == (128, 128) and np.allclose(fm.frame.scale, (200 / 128, 90 / 128))
    ref = _hooked(model, "net.backbone.body.4", image).numpy()
    assert np.array_equal(fm.feature, ref[fm.channel_order])


def test_unknown_and_flat_layers_are_one_line_errors(detector: torch.nn.Module):
    with pytest.raises(InternalsError, match="unknown layer 'backbone.nope'.*backbone"):
        feature_map(detector, _image(64, 64), "backbone.nope")
    with pytest.raises(InternalsError, match="unknown layer 'rpn.head'"):  # outside the backbone
        feature_map(detector, _image(64, 64), "rpn.head")
    with pytest.raises(InternalsError, match="did not run"):
        feature_map(detector, _image(64, 64), "backbone.stages")  # a ModuleList is never called


def test_train_mode_and_gradients_are_left_alone(detector: torch.nn.Module):
    detector.train()
    try:
        feature_map(detector, _image(64, 64))
        assert all(m.training for m in detector.modules())
        assert all(p.grad is None for p in detector.parameters())
        assert "forward" not in detector.backbone.__dict__  # the probe's wrapper is gone
    finally:
        detector.eval()
