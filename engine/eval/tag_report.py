"""The image-tag evaluation report: per-tag AP / F1, PR curves and F1 against the threshold.

Maths from ``engine.eval.tags`` (AP = scikit-learn's average precision; a tag is predicted when
``score >= threshold``). ``scores``: (N, T) float probabilities; ``truth``: (N, T) bool.
The PR curve of a tag: precision and recall at each distinct score, highest first (not
interpolated: it is the curve AP sums over).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.eval.export import json_safe, slugs, write_csv
from engine.eval.tags import f1_scores, multilabel_map, per_tag_ap

SCORE_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def tag_pr_curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall (D,), precision (D,), thresholds (D,)) over the D distinct scores of one tag, descending."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(truth, bool).reshape(-1)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, np.int64)
    tp = np.cumsum(y)[last].astype(np.float64)
    kept = (last + 1).astype(np.float64)
    pos = float(y.sum())
    recall = tp / pos if pos else np.full(len(tp), np.nan)
    return recall, tp / kept, s[last]


@dataclass(frozen=True)
class TagReport:
    """T tags: ap, f1, precision, recall (T,) float64 at ``thresholds`` (T,); support (T,) int64
    positives. score_points: (S,); f1_curve: (T, S) F1 if every image scored ``>= s`` were tagged.
    pr_curves: per tag (recall (D,), precision (D,)) — lengths differ."""

    tag_names: tuple[str, ...]
    images: int
    thresholds: np.ndarray
    ap: np.ndarray
    f1: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray
    map: float
    f1_macro: float
    f1_micro: float
    score_points: np.ndarray
    f1_curve: np.ndarray
    pr_curves: tuple[tuple[np.ndarray, np.ndarray], ...]
    kind: str = field(default="classification")

    def per_class(self) -> list[dict]:
        return json_safe([{"label": t, "tag": n, "ap": self.ap[t], "f1": self.f1[t], "precision": self.precision[t],
                           "recall": self.recall[t], "support": int(self.support[t]),
                           "threshold": self.thresholds[t]} for t, n in enumerate(self.tag_names)])

    def summary(self) -> dict:
        return json_safe({"map": self.map, "f1_macro": self.f1_macro, "f1_micro": self.f1_micro,
                          "per_tag_ap": dict(zip(self.tag_names, self.ap))})

    def to_json(self) -> dict:
        return json_safe({"kind": self.kind, "images": self.images, "tags": list(self.tag_names), "map": self.map,
                          "f1_macro": self.f1_macro, "f1_micro": self.f1_micro, "per_class": self.per_class(),
                          "pr_curves": {n: {"recall": r, "precision": p}
                                        for n, (r, p) in zip(self.tag_names, self.pr_curves)},
                          "score_curves": {"score": self.score_points, "f1": dict(zip(self.tag_names, self.f1_curve))}})

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """per_class.csv, pr_<tag>.csv and f1_<tag>.csv in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.per_class()
        paths = [write_csv(out / "per_class.csv", list(rows[0]) if rows else ["label", "tag"],
                           [list(r.values()) for r in rows])]
        for t, stem in enumerate(slugs(self.tag_names)):
            paths.append(write_csv(out / f"pr_{stem}.csv", ["recall", "precision"], zip(*self.pr_curves[t])))
            paths.append(write_csv(out / f"f1_{stem}.csv", ["score", "f1"], zip(self.score_points, self.f1_curve[t])))
        return paths


def build_tag_report(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray | Sequence[float],
                     tag_names: Sequence[str]) -> TagReport:
    """The report of (N, T) ``scores`` against (N, T) bool ``truth`` at per-tag ``thresholds`` (T,)."""
    s = np.asarray(scores, np.float64).reshape(-1, len(tag_names))
    y = np.asarray(truth, bool).reshape(-1, len(tag_names))
    thr = np.asarray(thresholds, np.float64).reshape(-1)
    names = [str(n) for n in tag_names]
    f1 = f1_scores(s, y, thr, names) if len(s) else {"f1_macro": float("nan"), "f1_micro": float("nan"),
                                                     "per_tag": {}}
    per = [f1["per_tag"].get(n, {}) for n in names]
    curve = np.zeros((len(names), len(SCORE_THRESHOLDS)))
    pos = y.sum(0)
    for t in range(len(names)):
        pred = s[:, t][:, None] >= SCORE_THRESHOLDS[None, :]
        tp = (pred & y[:, t][:, None]).sum(0)
        denom = pred.sum(0) + pos[t]
        curve[t] = np.divide(2 * tp, denom, out=np.full(len(SCORE_THRESHOLDS), np.nan), where=denom > 0)
    nan = float("nan")
    return TagReport(
        tag_names=tuple(names), images=len(s), thresholds=thr.copy(),
        ap=per_tag_ap(s, y) if len(s) else np.full(len(names), np.nan),
        f1=np.array([p.get("f1", nan) for p in per]), precision=np.array([p.get("precision", nan) for p in per]),
        recall=np.array([p.get("recall", nan) for p in per]), support=pos.astype(np.int64),
        map=multilabel_map(s, y) if len(s) else nan, f1_macro=float(f1["f1_macro"]), f1_micro=float(f1["f1_micro"]),
        score_points=SCORE_THRESHOLDS.copy(), f1_curve=curve,
        pr_curves=tuple(tag_pr_curve(s[:, t], y[:, t])[:2] for t in range(len(names))))
