"""Dataset analytics for one project (or one split): classes, object counts, box shapes, anchors.

Objects are annotations merged by group id (``shapes.group_annotations`` / ``object_box``), as the
trainer sees them; boxes with a side under 1 px are left out of the shape statistics, as in
``anchor_design.dataset_boxes``. Shape statistics (lines, histograms) are in original image pixels.
Anchor comparisons are in the detector's input frame (each image resized as torchvision does with
the spec's ``min_size``/``max_size``), because that is where the anchors live. Pure, no Qt.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from engine.analysis.anchor_design import input_size
from engine.analysis.anchor_kmeans import (
    anchors_to_faster_rcnn,
    faster_rcnn_anchor_wh,
    kmeans_anchors,
    mean_best_iou,
    recall_at,
)
from engine.analysis.box_stats import (
    class_histogram,
    log_points,
    max_variance_line,
    objects_per_image,
    ols_line,
    size_stats,
)
from engine.events import Progress
from engine.jobs import CancelToken, Sink
from engine.models.faster_rcnn import DetectorSpec
from engine.project.shapes import group_annotations, object_box
from engine.project.store import SPLITS, Store


def project_objects(store: Store, split: str | None = None, min_size: int = 256, max_size: int = 512,
                    categories: Collection[int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], np.ndarray]:
    """Objects of the labelled images of ``split`` (all if None), of ``categories`` only (all if None).

    Returns boxes (N, 4) float64 xyxy original pixels, category ids (N,) int64, input-frame scale
    (N, 2) float64 (sx, sy) per object for the detector resize to ``min_size``/``max_size``, objects
    per labelled image (images with no object of ``categories`` count 0), and the image id (N,) int64
    of each object."""
    by_image: dict[int, list] = {}
    for a in store.annotations():
        by_image.setdefault(a.image_id, []).append(a)
    wanted = None if categories is None else {int(c) for c in categories}
    boxes, cats, scales, per_image, image_ids = [], [], [], [], []
    for im in store.images(split):
        anns = by_image.get(im.id)
        if not anns:
            continue
        groups = group_annotations(anns)
        if wanted is not None:
            groups = [g for g in groups if g[0].category_id in wanted]
        per_image.append(len(groups))
        ih, iw = input_size(im.height, im.width, min_size, max_size)
        for members in groups:
            boxes.append(object_box(members))
            cats.append(members[0].category_id)
            scales.append((iw / im.width, ih / im.height))
            image_ids.append(im.id)
    return (np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(cats, np.int64),
            np.asarray(scales, np.float64).reshape(-1, 2), per_image, np.asarray(image_ids, np.int64))


def _anchor_report(wh: np.ndarray, anchors: np.ndarray) -> dict:
    return {"mean_best_iou": mean_best_iou(wh, anchors), "recall_at_0_5": recall_at(wh, anchors, 0.5)}


def analyze_project(project_dir: str | Path, split: str | None = None, k: int = 9,
                    spec: DetectorSpec | None = None, seed: int = 0,
                    categories: Collection[int] | None = None) -> dict:
    """Statistics of a project's objects as a JSON-ready dict.

    Keys: ``class_counts`` {name: objects}, ``tag_counts`` {name: images}, ``images``,
    ``labeled_images``, ``objects``, ``objects_per_image`` {mean, max} (over labelled images) and
    ``objects_per_image_counts`` (one count per labelled image),
    ``max_variance_line`` and ``ols_line`` of (ln w, ln h) (original pixels), ``size_histogram`` /
    ``aspect_histogram`` {edges, counts} of sqrt(w h) and h / w, their quantiles, ``points``
    {log_wh (N, 2), category_ids (N,), image_ids (N,)}, ``kmeans_anchors`` {k, anchors [[w, h]] sorted by area,
    mean_best_iou, recall_at_0_5, faster_rcnn {anchor_sizes, aspect_ratios, mean_best_iou,
    recall_at_0_5}} and ``current_anchors`` {anchor_sizes, aspect_ratios, mean_best_iou,
    recall_at_0_5} (``spec``'s anchors, the default tiny DetectorSpec if None), both in ``anchor_frame``.
    ``categories`` (ids) keeps the objects of those categories only (None: all; echoed as ``categories``).
    Raises ValueError for an unknown split, no objects, or fewer usable boxes than ``k``."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    spec = spec or DetectorSpec()
    with Store(project_dir) as store:
        names = {c.id: c.name for c in store.categories()}
        images = store.images(split)
        boxes, cats, scales, per_image, object_images = project_objects(store, split, spec.min_size, spec.max_size,
                                                                        categories)
        tag_names = {t.id: t.name for t in store.tags()}
        image_tags = store.all_image_tags()
    where = f"split {split!r}" if split else "the project"
    if categories is not None:
        where += f" ({', '.join(names.get(int(c), f'#{c}') for c in categories) or 'no class'})"
    if len(boxes) == 0:
        raise ValueError(f"no labelled objects in {where}")
    wh = (boxes[:, 2:] - boxes[:, :2]).clip(0)
    keep = (wh >= 1).all(1)
    if keep.sum() < 2:
        raise ValueError(f"{where} has {int(keep.sum())} boxes with both sides >= 1 px; statistics need 2")
    points = log_points(boxes[keep])
    wh_in = wh[keep] * scales[keep]
    if k > len(wh_in):
        raise ValueError(f"k={k} anchors need at least {k} boxes, {where} has {len(wh_in)}")
    suggested = kmeans_anchors(wh_in, k, seed=seed)
    levels, per_level = len(spec.anchor_sizes), len(spec.anchor_sizes[0])
    sizes, ratios = anchors_to_faster_rcnn(suggested, levels, per_level, len(spec.aspect_ratios))
    current = faster_rcnn_anchor_wh(spec.anchor_sizes, spec.aspect_ratios)
    tag_counts = {name: 0 for name in tag_names.values()}
    for im in images:
        for t in image_tags.get(im.id, ()):
            tag_counts[tag_names[t]] = tag_counts.get(tag_names[t], 0) + 1
    return {
        "split": split, "images": len(images), "labeled_images": len(per_image), "objects": int(len(boxes)),
        "class_counts": class_histogram(cats, names), "tag_counts": tag_counts,
        "categories": None if categories is None else [int(c) for c in categories],
        "objects_per_image": objects_per_image(per_image), "objects_per_image_counts": [int(n) for n in per_image],
        "max_variance_line": max_variance_line(points), "ols_line": ols_line(points),
        **size_stats(boxes[keep]),
        "points": {"log_wh": np.round(points, 5).tolist(), "category_ids": cats[keep].tolist(),
                   "image_ids": object_images[keep].tolist()},
        "anchor_frame": f"detector input (short side {spec.min_size}, long side <= {spec.max_size})",
        "kmeans_anchors": {"k": int(k), "anchors": np.round(suggested, 2).tolist(), **_anchor_report(wh_in, suggested),
                           "faster_rcnn": {"anchor_sizes": [list(s) for s in sizes], "aspect_ratios": list(ratios),
                                           **_anchor_report(wh_in, faster_rcnn_anchor_wh(sizes, ratios))}},
        "current_anchors": {"anchor_sizes": [list(s) for s in spec.anchor_sizes],
                            "aspect_ratios": list(spec.aspect_ratios), **_anchor_report(wh_in, current)},
    }


def analyze_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Job form of ``analyze_project``. config: project, split (None = all), k (default 9), seed,
    categories (ids, None = all), anchor_sizes / aspect_ratios (the current anchors; default: the tiny
    ``DetectorSpec``'s)."""
    cancel.check()
    sink(Progress(0, 1, "analysing"))
    spec = DetectorSpec()
    if config.get("anchor_sizes"):
        spec.anchor_sizes = tuple(tuple(int(v) for v in level) for level in config["anchor_sizes"])
    if config.get("aspect_ratios"):
        spec.aspect_ratios = tuple(float(v) for v in config["aspect_ratios"])
    cats = config.get("categories")
    out = analyze_project(config["project"], config.get("split"), int(config.get("k", 9)), spec=spec,
                          seed=int(config.get("seed", 0)), categories=None if cats is None else list(cats))
    sink(Progress(1, 1, "done"))
    return out
