"""Box IoU and COCO's greedy detection-to-ground-truth matching (pure numpy).

Boxes are float ``xyxy`` in original image pixels. The matching rule is COCO's ``evaluateImg``
(pycocotools), without crowd or area-ignored objects: detections are visited in descending score
(ties keep their input order: a stable sort); each takes the still-unmatched ground truth with the
highest IoU ``>= threshold`` among those it is ``allowed`` to match (same class, for AP), the last
one winning an exact IoU tie as in pycocotools. A detection's match therefore depends only on the
detections scored above it, never on a score threshold below it.
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's 10 IoU thresholds .50:.05:.95
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCO's 101 recall points 0:.01:1


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) float64 IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), both xyxy; 0 where a union is empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def score_order(scores: np.ndarray) -> np.ndarray:
    """(N,) int64 indices sorting ``scores`` descending, ties in input order (COCO's mergesort)."""
    return np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="mergesort")


def greedy_match(ious: np.ndarray, thresholds: np.ndarray | float, allowed: np.ndarray | None = None,
                 taken: np.ndarray | None = None) -> np.ndarray:
    """COCO's greedy matching at each IoU threshold (see the module docstring).

    ious: (D, G) float, rows already in descending score order. thresholds: (T,) or a scalar.
    allowed: (D, G) bool or None (all pairs). taken: (T, G) or (G,) bool ground truths matched
    before this call (left unchanged). Returns (T, D) int64: the ground-truth index each detection
    matched at each threshold, -1 for none (shape (D,) when ``thresholds`` is a scalar).
    """
    scalar = np.ndim(thresholds) == 0
    thr = np.minimum(np.atleast_1d(np.asarray(thresholds, np.float64)), 1 - 1e-10)
    ious = np.asarray(ious, np.float64)
    if ious.ndim != 2:
        raise ValueError(f"ious must be (D, G), got shape {ious.shape}")
    d_count, g_count = ious.shape
    out = np.full((len(thr), d_count), -1, np.int64)
    free = np.ones((len(thr), g_count), bool)
    if taken is not None:
        free &= ~np.broadcast_to(np.asarray(taken, bool), free.shape)
    if g_count == 0:
        return out[0] if scalar else out
    ok = np.ones_like(ious, bool) if allowed is None else np.asarray(allowed, bool)
    rows = np.arange(len(thr))
    for d in range(d_count):
        cand = free & ok[d][None, :] & (ious[d][None, :] >= thr[:, None])
        vals = np.where(cand, ious[d][None, :], -1.0)
        last = g_count - 1 - np.argmax(vals[:, ::-1], axis=1)  # highest IoU, the last one on a tie
        hit = vals[rows, last] >= 0
        out[hit, d] = last[hit]
        free[rows[hit], last[hit]] = False
    return out[0] if scalar else out
