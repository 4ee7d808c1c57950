"""Detection metrics: COCO mAP (faster-coco-eval; pycocotools as the reference).

Ground truth and detections are plain per-image records in original image pixels, boxes xyxy.
Labels are model labels 1..K (0 is background); they are used directly as COCO category ids.
Running a model over a loader is the task's business (``engine.tasks``); this module is maths.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "mar1", "mar10", "mar100", "mar_small", "mar_medium", "mar_large")


@dataclass(frozen=True)
class ImageTargets:
    """Ground truth of one image: boxes (N, 4) float xyxy pixels, labels (N,) int in 1..K."""

    image_id: int
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image: boxes (N, 4) float xyxy pixels, scores (N,), labels (N,) in 1..K."""

    image_id: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def _coco_dicts(gts: list[ImageTargets], dets: list[ImageDetections], num_classes: int) -> tuple[dict, list]:
    images = [{"id": int(g.image_id), "width": int(g.width), "height": int(g.height)} for g in gts]
    anns = []
    for g in gts:
        for b, lab in zip(np.asarray(g.boxes, np.float64).reshape(-1, 4), np.asarray(g.labels).reshape(-1)):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": int(g.image_id), "category_id": int(lab),
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})
    cats = [{"id": i, "name": str(i)} for i in range(1, num_classes)]
    res = []
    for d in dets:
        for b, s, lab in zip(np.asarray(d.boxes, np.float64).reshape(-1, 4), np.asarray(d.scores).reshape(-1),
                             np.asarray(d.labels).reshape(-1)):
            res.append({"image_id": int(d.image_id), "category_id": int(lab), "score": float(s),
                        "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    return {"images": images, "annotations": anns, "categories": cats}, res


def coco_map(gts: list[ImageTargets], dets: list[ImageDetections], num_classes: int,
             backend: str = "faster_coco_eval") -> dict[str, float]:
    """COCO bbox metrics ``{map, map50, map75, ..., mar100, ...}`` (the 12 COCO stats).

    ``num_classes`` counts the background (labels are 1..num_classes-1). ``backend`` is
    ``faster_coco_eval`` (default) or ``pycocotools`` (the reference). Without ground-truth objects
    or without detections every stat is 0.0.
    """
    gt_dict, res = _coco_dicts(gts, dets, num_classes)
    if not gt_dict["annotations"] or not res:
        return dict.fromkeys(STAT_NAMES, 0.0)
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        quiet = lambda *a, **k: None  # noqa: E731
        coco_gt = COCO(gt_dict, print_function=quiet)
        ev = COCOeval_faster(coco_gt, coco_gt.loadRes(res), "bbox", print_function=quiet)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = gt_dict
            coco_gt.createIndex()
            ev = COCOeval(coco_gt, coco_gt.loadRes(res), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    else:
        raise ValueError(f"unknown COCO backend {backend!r}; expected faster_coco_eval or pycocotools")
    return {k: max(0.0, float(v)) for k, v in zip(STAT_NAMES, ev.stats)}
