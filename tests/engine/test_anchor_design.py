"""Anchor design statistics against the RPN's own assignment on real tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.analysis.anchor_design import anchor_design_job, anchor_stats, dataset_boxes, input_size
from engine.events import ArraysReady
from engine.jobs import CancelToken, Collector
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.project.store import Store

SIZES = ((12,), (24,), (48,), (96,), (192,))


def _rpn_reference(spec: DetectorSpec, boxes: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(fg, bg, ignored) counts and per-GT best IoU from torchvision's RPN on a real model."""
    model, _ = build_faster_rcnn(spec)
    model.eval()
    target = {"boxes": torch.as_tensor(boxes), "labels": torch.ones(len(boxes), dtype=torch.int64)}
    with torch.no_grad():
        images, targets = model.transform([torch.zeros(3, h, w)], [target])
        feats = model.backbone(images.tensors)
        anchors = model.rpn.anchor_generator(images, list(feats.values()))
        labels, _ = model.rpn.assign_targets_to_anchors(anchors, targets)
        iou = model.rpn.box_similarity(targets[0]["boxes"], anchors[0])
    lab = labels[0].numpy()
    return np.array([(lab == 1).sum(), (lab == 0).sum(), (lab == -1).sum()]), iou.max(1).values.numpy()


@pytest.mark.parametrize("sizes,ratios,hw", [(SIZES, (0.5, 1.0, 2.0), (190, 290)),
                                             (((16, 32),) * 5, (1.0,), (301, 207))])
def test_counts_and_best_iou_equal_the_rpn_assignment(sizes, ratios, hw):
    torch.manual_seed(0)
    h, w = hw
    boxes = np.array([[30, 40, 90, 110], [150, 60, 200, 170], [100, 10, 104, 13], [0, 0, 206, 189]], np.float32)
    spec = DetectorSpec(num_classes=2, anchor_sizes=sizes, aspect_ratios=ratios, min_size=224, max_size=400,
                        pretrained=False)
    ref_counts, ref_best = _rpn_reference(spec, boxes, h, w)
    st = anchor_stats([boxes], [(h, w)], sizes, ratios, 224, 400)
    assert st.counts.tolist() == [ref_counts.tolist()]
    np.testing.assert_array_equal(st.best_iou, ref_best)
    assert st.positives.sum() == ref_counts[0] and st.gt_image.tolist() == [0, 0, 0, 0]
    with torch.no_grad():
        model, _ = build_faster_rcnn(spec)
        images, _ = model.eval().transform([torch.zeros(3, h, w)])
    assert input_size(h, w, 224, 400) == tuple(images.image_sizes[0])


def test_shares_positives_and_unmatched_small_boxes():
    boxes = [np.array([[8, 8, 56, 56], [100, 100, 102, 102]], np.float32),  # a 48 px anchor and a 2 px dot
             np.array([[14, 15, 82, 49]], np.float32)]  # the 48 px anchor of ratio 0.5 at (48, 32)
    sizes = [(256, 256), (256, 256)]
    st = anchor_stats(boxes, sizes, SIZES, (0.5, 1.0, 2.0), 256, 256)
    assert len(st.best_iou) == 3 and st.counts.shape == (2, 3)
    assert st.best_iou[0] > 0.9 and st.best_iou[2] > 0.9 and st.best_iou[1] < 0.1
    assert st.share(0.5) == pytest.approx(2 / 3) and st.share(0.7) == pytest.approx(2 / 3)
    assert st.weak().tolist() == [1]
    assert np.all(st.positives >= 1)  # low-quality matches give even the dot an anchor
    assert st.gt_scale[1] == pytest.approx(2.0)
    # a bigger smallest anchor leaves the dot behind entirely once another box wins its anchors
    crowd = [np.array([[100, 100, 102, 102], [96, 96, 130, 130]], np.float32)]
    st2 = anchor_stats(crowd, [(256, 256)], ((32,),) * 5, (1.0,), 256, 256)
    assert st2.no_positive().tolist() == [0]
    s = st.summary()
    assert s["gt"] == 3 and s["images"] == 2 and s["weak"] == 1 and s["bg_per_fg"] > 100
    with pytest.raises(ValueError, match="FPN levels"):
        anchor_stats(boxes, sizes, SIZES[:3], (1.0,), 256, 256)


def test_dataset_boxes_and_job_on_demo(demo_project: Path):
    with Store(demo_project) as s:
        boxes, sizes, ids = dataset_boxes(s)
        n_obj = len({(a.image_id, a.group_id) for a in s.annotations()})
    assert sum(len(b) for b in boxes) == n_obj and len(ids) == len(sizes) == len(boxes)
    sink = Collector()
    summary = anchor_design_job({"project": str(demo_project), "anchor_sizes": SIZES,
                                 "aspect_ratios": (0.5, 1.0, 2.0), "min_size": 256, "max_size": 512},
                                sink, CancelToken())
    (ev,) = sink.of(ArraysReady)
    assert ev.kind == "anchor_design" and summary["gt"] == n_obj
    assert 0 < summary["share_iou70"] <= summary["share_iou50"] <= 1
    assert len(ev.arrays["image_ids"]) == len(ids) and ev.arrays["counts"].shape == (len(ids), 3)
