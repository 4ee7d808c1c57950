"""Image-tag metrics: average precision (scikit-learn's definition), mAP, F1 and per-tag thresholds.

Pure numpy. ``scores``: (N, T) float, higher = more likely (probabilities for thresholds to mean
anything); ``truth``: (N, T) bool. A prediction is positive when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (tp, fp) at each distinct score, descending, and those scores: three (D,) arrays."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(truth, bool).reshape(-1)
    if len(s) != len(y):
        raise ValueError(f"{len(s)} scores but {len(y)} truth values")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, np.int64)
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1) - tp
    return tp, fp, s[last]


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """AP of (N,) scores against (N,) bool truth: sum_n (R_n - R_{n-1}) P_n over the distinct scores in
    descending order (R_0 = 0), tied scores forming one threshold — ``sklearn.metrics.average_precision_score``.
    nan when there is no positive."""
    tp, fp, _ = _curve(scores, truth)
    if len(tp) == 0 or tp[-1] == 0:
        return float("nan")
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_tag_ap(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T,) float64 AP per tag of (N, T) scores/truth; nan for tags without a positive."""
    s, y = _check(scores, truth)
    return np.array([average_precision(s[:, t], y[:, t]) for t in range(s.shape[1])], np.float64)


def multilabel_map(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mean AP over the tags with at least one positive (nan if none has one)."""
    ap = per_tag_ap(scores, truth)
    ap = ap[np.isfinite(ap)]
    return float(ap.mean()) if len(ap) else float("nan")


def _check(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64)
    y = np.asarray(truth, bool)
    if s.ndim == 1:
        s, y = s[:, None], y.reshape(-1, 1)
    if s.shape != y.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and truth {y.shape} must both be (N, T)")
    return s, y


def tune_thresholds(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T,) float64 thresholds maximising each tag's F1 on (N, T) scores/truth.

    Each threshold lies halfway between the lowest score predicted positive and the next lower score
    (at that score if it is the lowest), so on this data ``scores >= t`` gives exactly the optimal set;
    among equal F1 the higher threshold wins. A tag without positives gets a threshold just above its
    highest score (predict none)."""
    s, y = _check(scores, truth)
    out = np.empty(s.shape[1], np.float64)
    for t in range(s.shape[1]):
        tp, fp, values = _curve(s[:, t], y[:, t])
        pos = tp[-1] if len(tp) else 0.0
        if pos == 0:
            out[t] = np.nextafter(values[0], np.inf) if len(values) else 0.5
            continue
        f1 = 2 * tp / (tp + fp + pos)  # 2TP / (2TP + FP + FN), FN = pos - TP
        i = int(np.argmax(f1))  # first maximum = highest threshold
        out[t] = (values[i] + values[i + 1]) / 2 if i + 1 < len(values) else values[i]
    return out


def f1_scores(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray | Sequence[float],
              names: Sequence[str] | None = None) -> dict:
    """F1 with per-tag ``thresholds`` (T,). Returns ``{"f1_macro", "f1_micro", "per_tag": {name: {f1,
    precision, recall, support}}}``; names default to the tag indices as strings. ``f1_macro`` is the
    mean over tags with at least one positive (nan if none), ``f1_micro`` pools all tags; an empty
    denominator counts as 0 (sklearn's zero_division=0)."""
    s, y = _check(scores, truth)
    thr = np.asarray(thresholds, np.float64).reshape(-1)
    if len(thr) != s.shape[1]:
        raise ValueError(f"{len(thr)} thresholds for {s.shape[1]} tags")
    names = [str(i) for i in range(s.shape[1])] if names is None else list(names)
    pred = s >= thr[None, :]
    tp = (pred & y).sum(0).astype(np.float64)
    fp = (pred & ~y).sum(0).astype(np.float64)
    fn = (~pred & y).sum(0).astype(np.float64)

    def ratio(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return np.divide(a, b, out=np.zeros_like(b), where=b > 0)

    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    support = y.sum(0)
    has_pos = support > 0
    per_tag = {names[t]: {"f1": float(f1[t]), "precision": float(precision[t]), "recall": float(recall[t]),
                          "support": int(support[t])} for t in range(s.shape[1])}
    return {"f1_macro": float(f1[has_pos].mean()) if has_pos.any() else float("nan"),
            "f1_micro": float(ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())),
            "per_tag": per_tag}


def tag_metrics(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray | Sequence[float] | None = None,
                names: Sequence[str] | None = None) -> dict[str, float]:
    """Flat metrics for a run: ``mAP``, ``f1_macro``, ``f1_micro`` (thresholds 0.5 when None)."""
    s, y = _check(scores, truth)
    thr = np.full(s.shape[1], 0.5) if thresholds is None else thresholds
    f1 = f1_scores(s, y, thr, names)
    return {"mAP": multilabel_map(s, y), "f1_macro": f1["f1_macro"], "f1_micro": f1["f1_micro"]}
