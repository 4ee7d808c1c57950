"""Semantic segmentation metrics (pure numpy): confusion matrix, IoU, mIoU, pixel accuracy, boundary F.

Conventions: ``truth`` and ``pred`` are (H, W) integer class maps of one image in the same pixel
frame; classes are ``0..C-1`` (0 = background, counted like any other class); truth pixels equal
to ``ignore_index`` (255) are left out of every metric. The confusion matrix has truth in rows,
prediction in columns.

- IoU of class c = TP / (TP + FP + FN) over the whole set (one confusion matrix summed over all
  images, as in PASCAL VOC); classes absent from both truth and prediction are NaN and left out of
  the mean (mIoU).
- Boundary F-score (BF, Csurka et al., BMVC 2013): per image and class, the boundary pixels of
  the predicted and true class masks (a pixel of the mask with a 4-neighbour of another class; the
  image border and ignored pixels are not a boundary) are matched within a tolerance of **0.75 %
  of the image diagonal** (``bf_tolerance``; at least 1 px) in Euclidean distance: precision =
  share of predicted boundary pixels near a true one, recall the reverse, F = 2PR / (P + R). Per
  image, BF is the mean over the classes present in its truth or prediction (a class in only one
  of them scores 0; a class present in both without any boundary, e.g. filling the image, scores
  1); the dataset BF is the mean over images that have valid pixels.
"""

from __future__ import annotations

import math

import numpy as np

IGNORE_INDEX = 255
BF_TOLERANCE_FRACTION = 0.0075  # of the image diagonal (Csurka et al.)


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(C, C) int64 counts: ``cm[t, p]`` = pixels of truth class t predicted as p.

    truth, pred: (H, W) integer maps of the same shape. Truth pixels equal to ``ignore_index`` are
    skipped; any other value outside ``0..C-1`` (in truth or pred) is a ValueError.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    valid = truth != ignore_index
    t = truth[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    for name, a in (("truth", t), ("prediction", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} holds class {int(a.max() if a.max() >= num_classes else a.min())} "
                             f"outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """(C,) float64 IoU per class from a confusion matrix; NaN where a class is in neither truth nor prediction."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean of ``iou_per_class`` over the classes that occur (0.0 when none does)."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0


def pixel_accuracy(cm: np.ndarray) -> float:
    """Correct pixels / valid pixels (0.0 without valid pixels)."""
    total = float(np.asarray(cm).sum())
    return float(np.trace(cm)) / total if total else 0.0


def bf_tolerance(height: int, width: int) -> float:
    """The boundary matching distance in pixels: 0.75 % of the diagonal, at least 1 px."""
    return max(1.0, BF_TOLERANCE_FRACTION * math.hypot(height, width))


def boundary(mask: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: valid pixels of ``mask`` with a valid 4-neighbour outside it.

    mask, valid: (H, W) bool; ``valid`` None = every pixel. The image border and ignored pixels
    never make a boundary.
    """
    m = np.asarray(mask, bool)
    v = np.ones_like(m) if valid is None else np.asarray(valid, bool)
    m = m & v
    out = np.pad(v & ~m, 1)  # valid pixels of other classes; outside the image counts as neither
    edge = out[:-2, 1:-1] | out[2:, 1:-1] | out[1:-1, :-2] | out[1:-1, 2:]
    return m & edge


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: pixels within Euclidean distance ``radius`` of a set pixel of ``mask``."""
    r = int(math.floor(radius))
    h, w = mask.shape
    p = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= radius * radius:
                out |= p[r + dy:r + dy + h, r + dx:r + dx + w]
    return out


def boundary_f1(truth_mask: np.ndarray, pred_mask: np.ndarray, tolerance: float,
                valid: np.ndarray | None = None) -> float:
    """BF of one class in one image: (H, W) bool masks, tolerance in pixels, ``valid`` (H, W) bool or None.

    Empty prediction or truth -> 0 unless both are empty of pixels (1); both present without any
    boundary pixel (e.g. the class fills the image) -> 1.
    """
    t, p = np.asarray(truth_mask, bool), np.asarray(pred_mask, bool)
    if not t.any() or not p.any():
        return 1.0 if not t.any() and not p.any() else 0.0
    bt, bp = boundary(t, valid), boundary(p, valid)
    if not bt.any() and not bp.any():
        return 1.0
    if not bt.any() or not bp.any():
        return 0.0
    precision = float((bp & _dilate(bt, tolerance)).sum()) / float(bp.sum())
    recall = float((bt & _dilate(bp, tolerance)).sum()) / float(bt.sum())
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def image_boundary_f(truth: np.ndarray, pred: np.ndarray, num_classes: int, tolerance: float | None = None,
                     ignore_index: int = IGNORE_INDEX) -> float | None:
    """Mean BF over the classes present in this image's valid truth or prediction; None without valid pixels.

    truth, pred: (H, W) integer maps; ``tolerance`` None = ``bf_tolerance(H, W)``.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    valid = truth != ignore_index
    if not valid.any():
        return None
    tol = bf_tolerance(*truth.shape) if tolerance is None else float(tolerance)
    counts = np.bincount(truth[valid].astype(np.int64), minlength=num_classes)[:num_classes]
    counts = counts + np.bincount(pred[valid].astype(np.int64), minlength=num_classes)[:num_classes]
    present = np.flatnonzero(counts).tolist()  # bincount: ~4x faster than np.unique here
    scores = [boundary_f1((truth == c) & valid, (pred == c) & valid, tol, valid) for c in present]
    return float(np.mean(scores)) if scores else None


class SegmentationMeter:
    """Accumulates a confusion matrix and per-image BF over a dataset.

    ``update(truth, pred)`` with (H, W) integer maps; ``compute()`` -> ``{"miou", "boundary_f",
    "pixel_acc", "iou_per_class": [C floats, NaN for absent classes], "images": n}``.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, tolerance: float | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.tolerance = tolerance
        self.cm = np.zeros((num_classes, num_classes), np.int64)
        self.bf: list[float] = []

    def update(self, truth: np.ndarray, pred: np.ndarray) -> None:
        self.cm += confusion_matrix(truth, pred, self.num_classes, self.ignore_index)
        bf = image_boundary_f(truth, pred, self.num_classes, self.tolerance, self.ignore_index)
        if bf is not None:
            self.bf.append(bf)

    def compute(self) -> dict:
        return {"miou": mean_iou(self.cm), "boundary_f": float(np.mean(self.bf)) if self.bf else 0.0,
                "pixel_acc": pixel_accuracy(self.cm), "iou_per_class": iou_per_class(self.cm).tolist(),
                "images": len(self.bf)}
