"""analyze_project's class filter and per-point image ids; Faster R-CNN anchors from TrainConfig.extra."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.analyze import analyze_job, analyze_project
from engine.config import TrainConfig
from engine.jobs import CancelToken
from engine.project.shapes import group_annotations, object_box
from engine.project.store import Store
from engine.tasks.faster_rcnn import TASK, anchor_options


def test_points_carry_their_image_and_the_class_filter_keeps_one_class(demo_project):
    full = analyze_project(demo_project, None, k=3)
    with Store(demo_project) as store:
        cats = [c.id for c in store.categories()]
        per_image = {}
        for a in store.annotations():
            per_image.setdefault(a.image_id, []).append(a)
    ids = np.asarray(full["points"]["image_ids"])
    assert len(ids) == full["objects"] and sorted(full["objects_per_image_counts"]) == sorted(
        len(group_annotations(v)) for v in per_image.values())
    for i in (0, len(ids) - 1):  # a point's (ln w, ln h) is a box of its image
        boxes = [object_box(g) for g in group_annotations(per_image[int(ids[i])])]
        wh = np.log([[b[2] - b[0], b[3] - b[1]] for b in boxes])
        assert np.abs(wh - np.asarray(full["points"]["log_wh"][i])).sum(1).min() < 1e-4
    one = analyze_project(demo_project, None, k=3, categories=[cats[0]])
    assert set(one["points"]["category_ids"]) == {cats[0]}
    assert one["objects"] == full["class_counts"][next(iter(full["class_counts"]))]
    assert one["categories"] == [cats[0]] and full["categories"] is None
    assert len(one["objects_per_image_counts"]) == full["labeled_images"]


def test_job_takes_the_current_anchors(demo_project):
    sizes = [[10, 14], [20, 28], [40, 56], [80, 112], [160, 224]]
    out = analyze_job({"project": str(demo_project), "k": 3, "anchor_sizes": sizes, "aspect_ratios": [0.5, 1.0]},
                      lambda e: None, CancelToken())
    assert out["current_anchors"]["anchor_sizes"] == sizes and out["current_anchors"]["aspect_ratios"] == [0.5, 1.0]


def test_faster_rcnn_anchor_options_from_extra():
    base = TrainConfig().to_dict()
    assert anchor_options(TrainConfig(**base)) == {}
    sizes = [[10, 14], [20, 28], [40, 56], [80, 112], [160, 224]]
    opts = anchor_options(TrainConfig(**{**base, "extra": {"anchor_sizes": sizes, "aspect_ratios": [0.8, 1.25]}}))
    assert opts == {"anchor_sizes": tuple(tuple(s) for s in sizes), "aspect_ratios": (0.8, 1.25)}
    for bad in ({"anchor_sizes": [[10], [20]]}, {"anchor_sizes": [[10, 14]] * 4 + [[20]]},
                {"aspect_ratios": [0.0]}, {"anchor_sizes": "big"}):
        with pytest.raises(ValueError):
            anchor_options(TrainConfig(**{**base, "extra": bad}))
    with pytest.raises(ValueError, match="tiny backbone only"):
        anchor_options(TrainConfig(**{**base, "backbone": "resnet50_fpn", "extra": {"aspect_ratios": [1.0]}}))


def test_faster_rcnn_spec_uses_the_anchors(demo_project):
    sizes = [[10, 14], [20, 28], [40, 56], [80, 112], [160, 224]]
    cfg = TrainConfig(project=str(demo_project), min_size=128, max_size=192, pretrained=False,
                      extra={"anchor_sizes": sizes, "aspect_ratios": [0.8, 1.25]})
    with Store(demo_project) as store:
        labels = TASK.label_space(store)
    spec = TASK.spec_from_data(cfg, [], labels)
    assert spec.anchor_sizes == tuple(tuple(s) for s in sizes) and spec.aspect_ratios == (0.8, 1.25)
    model, _ = TASK.build(spec)
    assert model.rpn.head.cls_logits.out_channels == 4  # 2 sizes x 2 ratios per location
