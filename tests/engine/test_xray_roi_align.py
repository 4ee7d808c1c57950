"""RoI Align sampling points against torchvision.ops.roi_align.

Bilinear interpolation reproduces any function a + b*x + c*y + d*x*y exactly, so on ramp feature maps
(channels x, y, x*y in feature-cell coordinates) each output bin of roi_align equals the mean of the
ramp over that bin's sampling points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from engine.data.tensors import image_tensor
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.xray.capture import capture
from engine.xray.roi_align_points import roi_points, sampling_bins, sampling_points


def _ramp(h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xx, yy, xx * yy])[None]  # (1, 3, H, W)


def _bin_means(points_feat: np.ndarray, out: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    p = points_feat.reshape(out[0], out[1], grid[0] * grid[1], 2)
    x, y = p[..., 0], p[..., 1]
    return np.stack([x.mean(-1), y.mean(-1), (x * y).mean(-1)])  # (3, out_h, out_w)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("scale", [0.25, 0.125])
@pytest.mark.parametrize("ratio", [2, 1, 0])
def test_sampling_points_reproduce_roi_align_on_a_ramp(aligned, scale, ratio):
    feat = _ramp(40, 50)
    rng = np.random.default_rng(int(scale * 100) + ratio)
    for _ in range(4):
        x1, y1 = rng.uniform(8, 60, 2)
        box = np.array([x1, y1, x1 + rng.uniform(4, 90), y1 + rng.uniform(4, 80)])  # inside the map
        ref = roi_align(feat, torch.tensor([[0, *box]], dtype=torch.float64), (7, 7), scale, ratio, aligned)[0]
        pts = sampling_points(box, scale, (7, 7), ratio, aligned, frame="feature")
        if ratio > 0:
            grid = (ratio, ratio)
        else:  # adaptive: ceil(roi_size / 7) samples per axis
            rh = max((box[3] - box[1]) * scale, 0 if aligned else 1.0)
            rw = max((box[2] - box[0]) * scale, 0 if aligned else 1.0)
            grid = (int(np.ceil(rh / 7)), int(np.ceil(rw / 7)))
        assert pts.shape == (49 * grid[0] * grid[1], 2)
        np.testing.assert_allclose(_bin_means(pts, (7, 7), grid), ref.numpy(), atol=1e-4)
        # image frame = (feature + offset) / scale, so all points lie inside the box when aligned
        img = sampling_points(box, scale, (7, 7), ratio, aligned)
        np.testing.assert_allclose(img, (pts + (0.5 if aligned else 0)) / scale)
        if aligned:
            assert np.all((img >= box[:2]) & (img <= box[2:]))


def test_captured_roi_grid_reproduces_the_models_pooler():
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=3, min_size=200, max_size=360, pretrained=False))
    model.eval()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (170, 230, 3), dtype=np.uint8)
    gt = np.array([[20, 30, 120, 140], [140, 20, 200, 70], [60, 100, 90, 130]], np.float32)
    labels = np.array([1, 2, 1])
    a = capture(model, img, gt, labels)
    assert a["roi_sampling_points"].shape == (7 * 7 * 2 * 2, 2)
    assert tuple(a["roi_pool_params"]) == (7, 7, 2, 0)
    with torch.no_grad():
        images, _ = model.transform([image_tensor(img)])
        feats = model.backbone(images.tensors)
    keys = list(feats)
    pool = model.roi_heads.box_roi_pool
    scale = np.concatenate([a["scale"], a["scale"]]).astype(np.float64)
    levels_seen = set()
    checked_inside = 0
    area = np.prod(a["rois"][:, 2:] - a["rois"][:, :2], axis=1)
    order = np.argsort(area)
    for i in [*order[:15], *order[-15:], int(a["roi_index"])]:
        pts, level = roi_points(a, i)
        levels_seen.add(level)
        box_in = a["rois"][i] / scale  # back to the model frame
        s = float(a["roi_pool_scales"][level])
        # the level and scale X-ray reports pool exactly what the model's MultiScaleRoIAlign pools
        with torch.no_grad():
            model_pooled = pool(feats, [torch.tensor(box_in[None], dtype=torch.float32)], images.image_sizes)
            ours = roi_align(feats[keys[level]], torch.tensor([[0, *box_in]], dtype=torch.float32), (7, 7), s, 2)
        torch.testing.assert_close(ours, model_pooled, atol=1e-4, rtol=1e-4)
        # and the points reproduce roi_align on a ramp of that level's size
        fh, fw = feats[keys[level]].shape[-2:]
        ramp_ref = roi_align(_ramp(fh, fw), torch.tensor([[0, *box_in]]), (7, 7), s, 2)[0].numpy()
        ramp_ours = _bin_means(pts.astype(np.float64) / a["scale"] * s, (7, 7), (2, 2))
        inside = (box_in[:2] * s >= 0).all() and (box_in[2:] * s <= (fw - 1, fh - 1)).all()
        checked_inside += int(inside)
        if inside:  # roi_align clamps at the map border, where the ramp stops being linear
            np.testing.assert_allclose(ramp_ours, ramp_ref, atol=1e-4 * max(1, fw * fh / 100))
        if i == int(a["roi_index"]):
            np.testing.assert_allclose(pts, a["roi_sampling_points"], atol=1e-3)
    assert len(levels_seen) >= 2 and checked_inside >= 10
    assert int(a["roi_index"]) >= 0 and a["roi_label"][int(a["roi_index"])] > 0


@pytest.mark.parametrize("aligned", [False, True])
def test_bins_hold_their_sampling_points(aligned):
    box = np.array([10.3, 20.7, 64.1, 51.9])
    pts = sampling_points(box, 0.25, (7, 7), 2, aligned).reshape(49, 4, 2)
    bins = sampling_bins(box, 0.25, (7, 7), aligned)
    assert bins.shape == (49, 4)
    inside = (pts[..., 0] > bins[:, None, 0]) & (pts[..., 0] < bins[:, None, 2]) \
        & (pts[..., 1] > bins[:, None, 1]) & (pts[..., 1] < bins[:, None, 3])
    assert inside.all()
    np.testing.assert_allclose(pts.mean(1), (bins[:, :2] + bins[:, 2:]) / 2)  # samples are centred in their bin
    if aligned:
        np.testing.assert_allclose(bins[[0, -1]][:, [0, 1, 2, 3]].ravel()[[0, 1, 6, 7]], box)
