"""Per-class precision/recall of detections, COCO's way (pure numpy; pycocotools is the reference).

For one class: every image's detections of that class (at most ``max_dets`` = 100 per image, the
highest scored) are matched to its ground truth of that class with COCO's greedy rule
(``engine.eval.matching``) at the 10 IoU thresholds .50:.05:.95; all detections are then ranked
by score (images in ascending id, a stable sort) and the cumulative TP/FP give precision and recall
at every rank. The **101-point COCO interpolation**: precision is made non-increasing from the
right (the envelope), then read at the first rank whose recall reaches each of the recall points
0, .01, ..., 1 (0 beyond the highest recall). AP = the mean of those 101 values; AP@[.5:.95] the
mean over the IoU thresholds. A class without ground truth has no curve (NaN), as pycocotools
leaves -1 there. Detection boxes and ground truth are in original image pixels, xyxy.

F1 against the score threshold (at IoU .5, same matching): for a threshold ``c`` the detections
scored ``>= c`` give TP(c), P = TP / kept, R = TP / ground truths, F1 = 2 TP / (kept + ground
truths) — exact, since a detection's match never depends on lower-scored ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.eval.detection import ImageDetections, ImageTargets
from engine.eval.matching import IOU_THRESHOLDS, RECALL_THRESHOLDS, box_iou, greedy_match, score_order

MAX_DETS = 100  # COCO's maxDets for AP
SCORE_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # the x axis of the F1 / P / R vs score curves


@dataclass(frozen=True)
class ClassPR:
    """Precision/recall of one class over a dataset.

    precision: (T, R) float64 interpolated precision at IoU_THRESHOLDS x RECALL_THRESHOLDS (NaN
    rows when the class has no ground truth). recall: (T,) float64 highest recall per IoU
    threshold. scores: (D,) float64 detection scores in rank order; tp50: (D,) bool whether each
    ranked detection is a TP at IoU .5. num_gt: ground-truth objects of the class.
    """

    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    tp50: np.ndarray
    num_gt: int

    @property
    def ap(self) -> float:
        """AP@[.5:.95] (NaN without ground truth)."""
        return float(self.precision.mean()) if self.num_gt else float("nan")

    @property
    def ap50(self) -> float:
        return float(self.precision[0].mean()) if self.num_gt else float("nan")

    @property
    def ap75(self) -> float:
        return float(self.precision[5].mean()) if self.num_gt else float("nan")

    def threshold_curves(self, thresholds: np.ndarray = SCORE_THRESHOLDS) -> tuple[np.ndarray, ...]:
        """(precision, recall, f1), each (S,) float64 at IoU .5 for detections scored ``>= thresholds``.

        Precision is NaN where no detection is kept; recall and F1 are NaN without ground truth.
        """
        thr = np.asarray(thresholds, np.float64)
        kept = np.searchsorted(-self.scores, -thr, side="right")  # scores are descending
        cum = np.r_[0, np.cumsum(self.tp50)]
        tp = cum[kept].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(kept > 0, tp / np.maximum(kept, 1), np.nan)
            if not self.num_gt:
                nan = np.full(len(thr), np.nan)
                return precision, nan, nan.copy()
            return precision, tp / self.num_gt, 2 * tp / (kept + self.num_gt)


def _interpolate(tp: np.ndarray, fp: np.ndarray, num_gt: int) -> tuple[np.ndarray, float]:
    """(R,) interpolated precision and the final recall from (D,) cumulative TP/FP counts."""
    q = np.zeros(len(RECALL_THRESHOLDS))
    if len(tp) == 0:
        return q, 0.0
    rc = tp / num_gt
    pr = tp / (tp + fp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
    ok = idx < len(pr)
    q[ok] = pr[idx[ok]]
    return q, float(rc[-1])


def class_pr(gts: list[ImageTargets], dets: list[ImageDetections], label: int,
             max_dets: int = MAX_DETS) -> ClassPR:
    """COCO precision/recall of model label ``label`` (see the module docstring).

    Detections of images that have no entry in ``gts`` count as false positives.
    """
    by_image = {int(d.image_id): d for d in dets}
    gt_by_image = {int(g.image_id): g for g in gts}
    scores_all: list[np.ndarray] = []
    match_all: list[np.ndarray] = []
    num_gt = 0
    for image_id in sorted(set(gt_by_image) | set(by_image)):
        g = gt_by_image.get(image_id)
        g_boxes = np.zeros((0, 4)) if g is None else np.asarray(g.boxes, np.float64).reshape(-1, 4)
        g_labels = np.zeros(0, np.int64) if g is None else np.asarray(g.labels).reshape(-1)
        g_boxes = g_boxes[g_labels == label]
        num_gt += len(g_boxes)
        d = by_image.get(image_id)
        if d is None:
            continue
        d_labels = np.asarray(d.labels).reshape(-1)
        sel = np.flatnonzero(d_labels == label)
        scores = np.asarray(d.scores, np.float64).reshape(-1)[sel]
        order = score_order(scores)[:max_dets]
        boxes = np.asarray(d.boxes, np.float64).reshape(-1, 4)[sel][order]
        scores_all.append(scores[order])
        match_all.append(greedy_match(box_iou(boxes, g_boxes), IOU_THRESHOLDS) >= 0)
    scores = np.concatenate(scores_all) if scores_all else np.zeros(0)
    matched = np.concatenate(match_all, axis=1) if match_all else np.zeros((len(IOU_THRESHOLDS), 0), bool)
    rank = score_order(scores)
    scores, matched = scores[rank], matched[:, rank]
    t_count = len(IOU_THRESHOLDS)
    if num_gt == 0:
        return ClassPR(np.full((t_count, len(RECALL_THRESHOLDS)), np.nan), np.full(t_count, np.nan), scores,
                       matched[0] if len(scores) else np.zeros(0, bool), 0)
    precision = np.zeros((t_count, len(RECALL_THRESHOLDS)))
    recall = np.zeros(t_count)
    tps = np.cumsum(matched, axis=1, dtype=np.float64)
    fps = np.cumsum(~matched, axis=1, dtype=np.float64)
    for t in range(t_count):
        precision[t], recall[t] = _interpolate(tps[t], fps[t], num_gt)
    return ClassPR(precision, recall, scores, matched[0].copy(), num_gt)
