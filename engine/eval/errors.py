"""Every prediction as TP or FP (with its cause) and every missed ground truth as FN, for the error browser.

Inputs are ``engine.eval.detection`` records (original image pixels, xyxy, model labels 1..K).
Only predictions scored ``>= score`` take part. Per image, predictions are matched in descending
score with COCO's greedy rule (``engine.eval.matching``) to ground truth **of their own class** at
IoU ``>= iou``: a match is a **TP** (the same rule as AP, so the TP count is the diagonal of the
report's confusion matrix). An unmatched prediction is an **FP**, its cause the first that applies:

1. ``duplicate``: IoU ``>= iou`` with a same-class ground truth already taken by a higher-scored
   prediction;
2. ``class_confusion``: IoU ``>= iou`` with a ground truth of another class;
3. ``localisation``: IoU in ``[bg_iou, iou)`` (``bg_iou`` = 0.1) with a same-class ground truth;
4. ``background``: none of these (IoU ``< bg_iou`` with its class, ``< iou`` with the others).

An unmatched ground truth is an **FN**, its cause: ``class_confusion`` (a prediction of another
class covers it at IoU ``>= iou``), ``localisation`` (a same-class prediction overlaps it in
``[bg_iou, iou)``), ``low_score`` (a same-class prediction below ``score`` overlaps it at IoU
``>= iou``) or ``missed``.

Each record names the prediction (``box``, ``score``) and the ground truth (``gt_box``,
``gt_label``) its cause refers to, and their IoU (for a background FP: its best IoU with any ground
truth, and no ``gt_box``).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.eval.detection import ImageDetections, ImageTargets
from engine.eval.matching import box_iou, greedy_match, score_order

Box4 = tuple[float, float, float, float]
KINDS = ("TP", "FP", "FN")
FP_CAUSES = ("duplicate", "class_confusion", "localisation", "background")
FN_CAUSES = ("class_confusion", "localisation", "low_score", "missed")
BG_IOU = 0.1


@dataclass(frozen=True)
class ErrorRecord:
    """One prediction (TP/FP) or one missed ground truth (FN) of one image.

    label: model label 1..K of the prediction (TP/FP) or of the ground truth (FN). cause: None for
    a TP, else one of FP_CAUSES / FN_CAUSES. score: the prediction's, None when there is none.
    box / gt_box: xyxy original pixels of the prediction / ground truth involved, or None.
    iou: between ``box`` and ``gt_box`` (see the module docstring for background FPs and missed FNs).
    """

    image_id: int
    kind: str
    cause: str | None
    label: int
    score: float | None
    iou: float
    box: Box4 | None
    gt_box: Box4 | None
    gt_label: int | None = None

    def to_dict(self, names: Sequence[str] | None = None) -> dict:
        """JSON-able dict; with ``names`` (K names, label k -> names[k - 1]) adds ``category`` / ``gt_category``."""
        d = asdict(self)
        d["box"] = list(self.box) if self.box is not None else None
        d["gt_box"] = list(self.gt_box) if self.gt_box is not None else None
        if names is not None:
            d["category"] = _name(names, self.label)
            d["gt_category"] = _name(names, self.gt_label) if self.gt_label is not None else None
        return d


def _name(names: Sequence[str], label: int) -> str:
    return names[label - 1] if 1 <= label <= len(names) else str(label)


def _box(b: np.ndarray) -> Box4:
    return (round(float(b[0]), 3), round(float(b[1]), 3), round(float(b[2]), 3), round(float(b[3]), 3))


def _best(ious: np.ndarray, mask: np.ndarray) -> tuple[int, float]:
    """Index and value of the highest IoU where ``mask``; (-1, 0.0) when the mask is empty."""
    if not mask.any():
        return -1, 0.0
    vals = np.where(mask, ious, -1.0)
    i = int(np.argmax(vals))
    return i, float(vals[i])


def image_errors(gt: ImageTargets, det: ImageDetections | None, iou: float = 0.5, score: float = 0.25,
                 bg_iou: float = BG_IOU) -> list[ErrorRecord]:
    """The records of one image: its predictions in descending score, then its FNs in GT order."""
    g_boxes = np.asarray(gt.boxes, np.float64).reshape(-1, 4)
    g_labels = np.asarray(gt.labels, np.int64).reshape(-1)
    if det is None:
        det = ImageDetections(gt.image_id, np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    all_boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
    all_scores = np.asarray(det.scores, np.float64).reshape(-1)
    all_labels = np.asarray(det.labels, np.int64).reshape(-1)
    order = score_order(all_scores)
    order = order[all_scores[order] >= score]
    low = np.setdiff1d(np.arange(len(all_scores)), order)
    boxes, scores, labels = all_boxes[order], all_scores[order], all_labels[order]
    ious = box_iou(boxes, g_boxes)
    same = labels[:, None] == g_labels[None, :]
    match = greedy_match(ious, iou, allowed=same)
    out: list[ErrorRecord] = []
    image_id = int(gt.image_id)
    for d in range(len(boxes)):
        lab, s, m = int(labels[d]), float(scores[d]), int(match[d])
        if m >= 0:
            out.append(ErrorRecord(image_id, "TP", None, lab, s, float(ious[d, m]), _box(boxes[d]),
                                   _box(g_boxes[m]), int(g_labels[m])))
            continue
        g_same, v_same = _best(ious[d], same[d])
        g_other, v_other = _best(ious[d], ~same[d])
        if g_same >= 0 and v_same >= iou:
            cause, g, v = "duplicate", g_same, v_same
        elif g_other >= 0 and v_other >= iou:
            cause, g, v = "class_confusion", g_other, v_other
        elif g_same >= 0 and v_same >= bg_iou:
            cause, g, v = "localisation", g_same, v_same
        else:
            cause, g, v = "background", -1, float(ious[d].max(initial=0.0))
        out.append(ErrorRecord(image_id, "FP", cause, lab, s, v, _box(boxes[d]),
                               _box(g_boxes[g]) if g >= 0 else None, int(g_labels[g]) if g >= 0 else None))
    matched = set(match[match >= 0].tolist())
    low_ious = box_iou(all_boxes[low], g_boxes)
    low_same = all_labels[low][:, None] == g_labels[None, :]
    for g in range(len(g_boxes)):
        if g in matched:
            continue
        d_same, v_same = _best(ious[:, g], same[:, g])
        d_other, v_other = _best(ious[:, g], ~same[:, g])
        d_low, v_low = _best(low_ious[:, g], low_same[:, g])
        if d_other >= 0 and v_other >= iou:
            cause, src, d, v = "class_confusion", "kept", d_other, v_other
        elif d_same >= 0 and v_same >= bg_iou:
            cause, src, d, v = "localisation", "kept", d_same, v_same
        elif d_low >= 0 and v_low >= iou:
            cause, src, d, v = "low_score", "low", d_low, v_low
        else:
            cause, src, d, v = "missed", "", -1, float(ious[:, g].max(initial=0.0))
        if src == "kept":
            p_box, p_score = _box(boxes[d]), float(scores[d])
        elif src == "low":
            p_box, p_score = _box(all_boxes[low[d]]), float(all_scores[low[d]])
        else:
            p_box, p_score = None, None
        out.append(ErrorRecord(image_id, "FN", cause, int(g_labels[g]), p_score, v, p_box, _box(g_boxes[g]),
                               int(g_labels[g])))
    return out


def detection_errors(gts: list[ImageTargets], dets: list[ImageDetections], iou: float = 0.5,
                     score: float = 0.25, bg_iou: float = BG_IOU) -> list[ErrorRecord]:
    """All records over a dataset, image by image in ``gts`` order (see the module docstring).

    Detections of an image absent from ``gts`` are matched against no ground truth (background FPs).
    """
    if not 0 < bg_iou < iou <= 1:
        raise ValueError(f"need 0 < bg_iou < iou <= 1 (got bg_iou={bg_iou}, iou={iou})")
    by_image = {int(d.image_id): d for d in dets}
    known = {int(g.image_id) for g in gts}
    extra = [ImageTargets(i, 0, 0, np.zeros((0, 4)), np.zeros(0, np.int64)) for i in sorted(set(by_image) - known)]
    out: list[ErrorRecord] = []
    for g in [*gts, *extra]:
        out.extend(image_errors(g, by_image.get(int(g.image_id)), iou, score, bg_iou))
    return out


def filter_errors(records: Iterable[ErrorRecord], kind: str | Sequence[str] | None = None,
                  cause: str | Sequence[str] | None = None, label: int | Sequence[int] | None = None,
                  image_id: int | None = None, min_score: float | None = None,
                  max_iou: float | None = None) -> list[ErrorRecord]:
    """The records that pass every given filter (a str/int or a sequence of accepted values).

    ``min_score`` drops records without a score; ``max_iou`` keeps ``iou <= max_iou``.
    """
    def accepted(value: object, wanted: object) -> bool:
        if wanted is None:
            return True
        return value in wanted if isinstance(wanted, list | tuple | set | frozenset) else value == wanted

    return [r for r in records if accepted(r.kind, kind) and accepted(r.cause, cause)
            and accepted(r.label, label) and (image_id is None or r.image_id == image_id)
            and (min_score is None or (r.score is not None and r.score >= min_score))
            and (max_iou is None or r.iou <= max_iou)]


def sort_errors(records: Iterable[ErrorRecord], by: str = "score", descending: bool = True) -> list[ErrorRecord]:
    """Sorted by ``score`` or ``iou`` (stable; records without a score go last either way)."""
    if by not in ("score", "iou"):
        raise ValueError(f"sort by 'score' or 'iou', not {by!r}")
    items = list(records)
    present = [r for r in items if getattr(r, by) is not None]
    absent = [r for r in items if getattr(r, by) is None]
    return sorted(present, key=lambda r: getattr(r, by), reverse=descending) + absent


def error_counts(records: Iterable[ErrorRecord]) -> dict:
    """``{"TP": n, "FP": n, "FN": n, "FP_causes": {cause: n}, "FN_causes": {cause: n}}`` (every cause listed)."""
    items = list(records)
    kinds = Counter(r.kind for r in items)
    fp = Counter(r.cause for r in items if r.kind == "FP")
    fn = Counter(r.cause for r in items if r.kind == "FN")
    return {**{k: kinds.get(k, 0) for k in KINDS}, "FP_causes": {c: fp.get(c, 0) for c in FP_CAUSES},
            "FN_causes": {c: fn.get(c, 0) for c in FN_CAUSES}}


CSV_FIELDS = ("image_id", "kind", "cause", "label", "category", "score", "iou", "x1", "y1", "x2", "y2",
              "gt_label", "gt_category", "gt_x1", "gt_y1", "gt_x2", "gt_y2")


def write_errors_csv(records: Iterable[ErrorRecord], path: str | Path, names: Sequence[str] | None = None) -> Path:
    """One row per record (CSV_FIELDS; empty cells for missing values); returns the path."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in records:
            box = list(r.box) if r.box is not None else [""] * 4
            gt = list(r.gt_box) if r.gt_box is not None else [""] * 4
            w.writerow([r.image_id, r.kind, r.cause or "", r.label, _name(names or (), r.label),
                        "" if r.score is None else round(r.score, 6), round(r.iou, 6), *box,
                        "" if r.gt_label is None else r.gt_label,
                        "" if r.gt_label is None else _name(names or (), r.gt_label), *gt])
    return path
