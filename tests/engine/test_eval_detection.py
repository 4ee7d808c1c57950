"""COCO mAP: faster-coco-eval agrees with pycocotools; edge cases; validation losses keep BN stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.data.dataset import DetectionDataset, collate, make_label_map, snapshot_split
from engine.device import to_device
from engine.eval.detection import (
    STAT_NAMES,
    ImageDetections,
    ImageTargets,
    coco_map,
)
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.project.store import Store
from engine.train.validation import validation_losses


def _random_case(seed: int, n_images: int = 25, k: int = 3) -> tuple[list[ImageTargets], list[ImageDetections]]:
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for i in range(1, n_images + 1):
        n = int(rng.integers(0, 7))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(4, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(1, k + 1, n)
        gts.append(ImageTargets(i, 320, 320, boxes, labels))
        # detections: jittered true boxes (some with the wrong class) plus false positives
        jit = boxes + rng.normal(0, 6, boxes.shape)
        fp_xy = rng.uniform(0, 250, (3, 2))
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(5, 60, (3, 2))], 1)
        d_boxes = np.concatenate([jit, fp])
        d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 1)
        d_labels = np.concatenate([np.where(rng.random(n) < 0.8, labels, rng.integers(1, k + 1, n)),
                                   rng.integers(1, k + 1, 3)])
        dets.append(ImageDetections(i, d_boxes, rng.uniform(0.05, 1.0, len(d_boxes)), d_labels))
    return gts, dets


@pytest.mark.parametrize("seed", [0, 1])
def test_faster_coco_eval_matches_pycocotools(seed: int) -> None:
    gts, dets = _random_case(seed)
    fast = coco_map(gts, dets, num_classes=4, backend="faster_coco_eval")
    ref = coco_map(gts, dets, num_classes=4, backend="pycocotools")
    assert set(fast) == set(STAT_NAMES)
    for k in STAT_NAMES:
        assert fast[k] == pytest.approx(ref[k], abs=1e-9), k
    assert 0.05 < fast["map50"] < 0.99  # a non-trivial case, not all zeros or ones


def test_perfect_and_empty_detections() -> None:
    gts, _ = _random_case(3)
    perfect = [ImageDetections(g.image_id, g.boxes, np.ones(len(g.boxes)), g.labels) for g in gts]
    assert coco_map(gts, perfect, 4)["map"] == pytest.approx(1.0)
    assert coco_map(gts, [], 4) == dict.fromkeys(STAT_NAMES, 0.0)
    with pytest.raises(ValueError, match="unknown COCO backend"):
        coco_map(gts, perfect, 4, backend="nope")


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running_" in k or "num_batches_tracked" in k}


def test_validation_losses_leave_batchnorm_untouched(demo_project) -> None:
    torch.manual_seed(0)
    with Store(demo_project) as store:
        lm = make_label_map(store)
        ds = DetectionDataset(snapshot_split(store, "val", max_images=3), lm)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=len(lm) + 1, min_size=128, max_size=192))
    model.train()
    before = _bn_state(model)
    assert before, "the tiny backbone has BatchNorm layers"
    loader = DataLoader(ds, batch_size=3, collate_fn=collate)
    losses = validation_losses(model, loader, torch.device("cpu"))
    assert losses == validation_losses(model, loader, torch.device("cpu"))  # deterministic: same weights, same numbers
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    after = _bn_state(model)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert model.training and all(m.training for m in model.modules())
    # control: the same pass without holding BN in eval does move the statistics
    images, targets = zip(*[ds[i] for i in range(len(ds))])
    with torch.no_grad():
        model(to_device(list(images), torch.device("cpu")), to_device(list(targets), torch.device("cpu")))
    assert any(not torch.equal(before[k], v) for k, v in _bn_state(model).items())
