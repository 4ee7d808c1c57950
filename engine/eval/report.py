"""The detection evaluation report: COCO stats, per-class AP, PR / F1 curves, a confusion matrix.

Built from per-image ground truth and detections (``engine.eval.detection`` records: original
image pixels, xyxy, model labels 1..K, 0 = background). Pure maths; running a model is the job's
business (``engine.inference.report``). The GUI plots the arrays; ``to_json`` / ``to_csv`` export.

- COCO's 12 stats (``STAT_NAMES``) over all detections, by faster-coco-eval (``coco_map``).
- Per class, COCO's own way (``engine.eval.pr``, equal to pycocotools' per-class precision array):
  AP@[.5:.95], AP50, AP75, and the PR curve at IoU .5 — precision at COCO's 101 recall points,
  interpolated. Precision, recall and F1 against the score threshold at IoU .5 (101 thresholds).
- The **confusion matrix** ``(K+1, K+1)`` at IoU ``iou`` and score ``score``: truth in rows,
  prediction in columns, index = model label (0 = background). Rule, per image, over the
  detections scored ``>= score``: (1) in descending score, each detection takes the unmatched
  ground truth **of its own class** with the highest IoU ``>= iou`` (COCO's greedy rule — the
  diagonal is the TP count of ``engine.eval.errors``); (2) the detections still unmatched, again in
  descending score, take the unmatched ground truth of **another** class with the highest IoU
  ``>= iou`` (class confusions, off the diagonal); (3) detections left over count in row 0
  (background FP), ground truth left over in column 0 (missed, FN). Ultralytics' ConfusionMatrix
  matches class-agnostically by IoU instead (the highest-IoU pair first); both rules agree whenever
  every object overlaps at most one detection at IoU ``>= iou``. Here FP of class p = column p
  minus the diagonal, FN of class t = row t minus the diagonal, as in the error list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.eval.detection import STAT_NAMES, ImageDetections, ImageTargets, coco_map
from engine.eval.export import confusion_rows, json_safe, slugs, write_csv
from engine.eval.matching import RECALL_THRESHOLDS, box_iou, greedy_match, score_order
from engine.eval.pr import SCORE_THRESHOLDS, class_pr


def detection_confusion(gts: list[ImageTargets], dets: list[ImageDetections], num_labels: int,
                        iou: float = 0.5, score: float = 0.25) -> np.ndarray:
    """(K+1, K+1) int64 confusion matrix, ``num_labels`` = K (see the module docstring for the rule)."""
    k1 = num_labels + 1
    cm = np.zeros((k1, k1), np.int64)
    by_image = {int(d.image_id): d for d in dets}
    known = {int(g.image_id) for g in gts}
    extra = [ImageTargets(i, 0, 0, np.zeros((0, 4)), np.zeros(0, np.int64)) for i in sorted(set(by_image) - known)]
    for g in [*gts, *extra]:  # detections of images without an entry in gts: background FPs
        g_labels = np.asarray(g.labels, np.int64).reshape(-1)
        g_boxes = np.asarray(g.boxes, np.float64).reshape(-1, 4)
        d = by_image.get(int(g.image_id))
        if d is None:
            d_labels, d_boxes = np.zeros(0, np.int64), np.zeros((0, 4))
        else:
            s = np.asarray(d.scores, np.float64).reshape(-1)
            order = score_order(s)
            order = order[s[order] >= score]
            d_labels = np.asarray(d.labels, np.int64).reshape(-1)[order]
            d_boxes = np.asarray(d.boxes, np.float64).reshape(-1, 4)[order]
        for name, lab in (("ground truth", g_labels), ("detection", d_labels)):
            if lab.size and (lab.min() < 1 or lab.max() > num_labels):
                raise ValueError(f"{name} label {int(lab.min() if lab.min() < 1 else lab.max())} "
                                 f"outside 1..{num_labels}")
        ious = box_iou(d_boxes, g_boxes)
        same = d_labels[:, None] == g_labels[None, :]
        first = greedy_match(ious, iou, allowed=same)
        taken = np.zeros(len(g_labels), bool)
        taken[first[first >= 0]] = True
        rest = np.flatnonzero(first < 0)
        second = greedy_match(ious[rest], iou, allowed=~same[rest], taken=taken)
        match = first.copy()
        match[rest] = second
        for di, gi in enumerate(match):
            cm[g_labels[gi] if gi >= 0 else 0, d_labels[di]] += 1
        hit = np.zeros(len(g_labels), bool)
        hit[match[match >= 0]] = True
        np.add.at(cm, (g_labels[~hit], 0), 1)
    return cm


@dataclass(frozen=True)
class DetectionReport:
    """Everything the report view plots, for K classes (model label k -> ``class_names[k - 1]``).

    stats: COCO's 12 stats. ap, ap50, ap75, num_gt: (K,) per class (NaN AP without ground truth).
    recall_points: (R,) = 0, .01, ..., 1; pr_precision: (K, R) interpolated precision at IoU .5.
    score_points: (S,) thresholds; p_curve, r_curve, f1_curve: (K, S) at IoU .5 (NaN where undefined).
    confusion: (K+1, K+1) int64 at ``iou`` / ``score``, truth rows, prediction columns, 0 = background.
    """

    class_names: tuple[str, ...]
    images: int
    iou: float
    score: float
    stats: dict[str, float]
    ap: np.ndarray
    ap50: np.ndarray
    ap75: np.ndarray
    num_gt: np.ndarray
    recall_points: np.ndarray
    pr_precision: np.ndarray
    score_points: np.ndarray
    p_curve: np.ndarray
    r_curve: np.ndarray
    f1_curve: np.ndarray
    confusion: np.ndarray
    kind: str = field(default="detection")

    @property
    def tp(self) -> np.ndarray:
        """(K,) int64 true positives at ``iou`` / ``score`` (the diagonal)."""
        return np.diag(self.confusion)[1:].copy()

    @property
    def fp(self) -> np.ndarray:
        """(K,) int64 detections of each class that matched no object of their class."""
        return self.confusion.sum(0)[1:] - self.tp

    @property
    def fn(self) -> np.ndarray:
        """(K,) int64 objects of each class that no detection of their class matched."""
        return self.confusion.sum(1)[1:] - self.tp

    def pr_curve(self, label: int) -> tuple[np.ndarray, np.ndarray]:
        """(recall (R,), precision (R,)) of model label ``label`` at IoU .5."""
        return self.recall_points, self.pr_precision[label - 1]

    def f1_vs_score(self, label: int) -> tuple[np.ndarray, np.ndarray]:
        """(score thresholds (S,), F1 (S,)) of model label ``label`` at IoU .5."""
        return self.score_points, self.f1_curve[label - 1]

    def best_f1(self, label: int) -> tuple[float, float]:
        """(score threshold, F1) where the class's F1 is highest (the highest threshold on a tie); NaN without truth."""
        f1 = self.f1_curve[label - 1]
        if not np.isfinite(f1).any():
            return float("nan"), float("nan")
        i = len(f1) - 1 - int(np.nanargmax(f1[::-1]))
        return float(self.score_points[i]), float(f1[i])

    def per_class(self) -> list[dict]:
        """One row per class: counts and P/R/F1 at ``iou``/``score``, AP, best F1 and its threshold."""
        rows = []
        tp, fp, fn = self.tp, self.fp, self.fn
        for k, name in enumerate(self.class_names):
            p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else float("nan")
            r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else float("nan")
            f1 = 2 * tp[k] / (2 * tp[k] + fp[k] + fn[k]) if tp[k] + fp[k] + fn[k] else float("nan")
            thr, best = self.best_f1(k + 1)
            rows.append({"label": k + 1, "class": name, "gt": int(self.num_gt[k]), "ap": self.ap[k],
                         "ap50": self.ap50[k], "ap75": self.ap75[k], "tp": int(tp[k]), "fp": int(fp[k]),
                         "fn": int(fn[k]), "precision": p, "recall": r, "f1": f1, "best_f1": best,
                         "best_f1_score": thr})
        return json_safe(rows)

    def summary(self) -> dict:
        """The headline numbers: COCO stats, TP/FP/FN totals and per-class AP50 (JSON-able)."""
        return json_safe({**self.stats, "tp": int(self.tp.sum()), "fp": int(self.fp.sum()),
                          "fn": int(self.fn.sum()), "iou": self.iou, "score": self.score,
                          "per_class_ap50": dict(zip(self.class_names, self.ap50))})

    def to_json(self) -> dict:
        """The whole report as JSON-able data (NaN as null)."""
        labels = ["background", *self.class_names]
        return json_safe({
            "kind": self.kind, "images": self.images, "iou": self.iou, "score": self.score,
            "classes": list(self.class_names), "stats": self.stats, "per_class": self.per_class(),
            "confusion": {"labels": labels, "rows": "truth", "columns": "prediction",
                          "matrix": self.confusion},
            "pr_curves": {"iou": 0.5, "recall": self.recall_points,
                          "precision": dict(zip(self.class_names, self.pr_precision))},
            "score_curves": {"iou": 0.5, "score": self.score_points,
                             "precision": dict(zip(self.class_names, self.p_curve)),
                             "recall": dict(zip(self.class_names, self.r_curve)),
                             "f1": dict(zip(self.class_names, self.f1_curve))}})

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """per_class.csv, confusion.csv, pr_<class>.csv and f1_<class>.csv in ``out_dir``; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.per_class()
        paths = [write_csv(out / "per_class.csv", list(rows[0]) if rows else ["label", "class"],
                           [list(r.values()) for r in rows])]
        paths.append(write_csv(out / "confusion.csv", *confusion_rows(self.confusion,
                                                                      ["background", *self.class_names])))
        for k, stem in enumerate(slugs(self.class_names)):
            paths.append(write_csv(out / f"pr_{stem}.csv", ["recall", "precision"],
                                   zip(self.recall_points, self.pr_precision[k])))
            paths.append(write_csv(out / f"f1_{stem}.csv", ["score", "precision", "recall", "f1"],
                                   zip(self.score_points, self.p_curve[k], self.r_curve[k], self.f1_curve[k])))
        return paths


def build_detection_report(gts: list[ImageTargets], dets: list[ImageDetections], class_names: Sequence[str],
                           iou: float = 0.5, score: float = 0.25) -> DetectionReport:
    """The report of detections ``dets`` against ``gts`` for K = len(class_names) classes."""
    if not 0 < iou <= 1 or not 0 <= score <= 1:
        raise ValueError(f"iou must be in (0, 1] and score in [0, 1] (got iou={iou}, score={score})")
    k = len(class_names)
    stats = coco_map(gts, dets, k + 1) if k else dict.fromkeys(STAT_NAMES, 0.0)
    prs = [class_pr(gts, dets, label) for label in range(1, k + 1)]
    curves = [p.threshold_curves(SCORE_THRESHOLDS) for p in prs]
    s_count, r_count = len(SCORE_THRESHOLDS), len(RECALL_THRESHOLDS)

    def stack(rows: list[np.ndarray], width: int) -> np.ndarray:
        return np.stack(rows) if rows else np.zeros((0, width))

    return DetectionReport(
        class_names=tuple(str(n) for n in class_names), images=len(gts), iou=float(iou), score=float(score),
        stats=dict(stats), ap=np.array([p.ap for p in prs]), ap50=np.array([p.ap50 for p in prs]),
        ap75=np.array([p.ap75 for p in prs]), num_gt=np.array([p.num_gt for p in prs], np.int64),
        recall_points=RECALL_THRESHOLDS.copy(), pr_precision=stack([p.precision[0] for p in prs], r_count),
        score_points=SCORE_THRESHOLDS.copy(), p_curve=stack([c[0] for c in curves], s_count),
        r_curve=stack([c[1] for c in curves], s_count), f1_curve=stack([c[2] for c in curves], s_count),
        confusion=detection_confusion(gts, dets, k, iou, score))
