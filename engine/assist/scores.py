"""Uncertainty of one prediction, in [0, 1] (1 = the model knows least). Pure numpy.

- detection: ``1 - max score`` (the lowest max score first; no detection at all scores 1);
- segmentation: mean per-pixel entropy of the class probabilities, divided by ``log C``;
- classification (tags): mean binary entropy of the per-tag scores, in bits (0.5 everywhere scores 1).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def detection_uncertainty(scores: np.ndarray) -> float:
    """``scores`` (N,) float: 1 - the highest score, 1.0 for no detection."""
    s = np.asarray(scores, np.float64).reshape(-1)
    return 1.0 if s.size == 0 else float(np.clip(1.0 - s.max(), 0.0, 1.0))


def segmentation_uncertainty(probs: np.ndarray) -> float:
    """``probs`` (C, H, W) float, summing to 1 over C: mean entropy / log C (0 for C < 2)."""
    p = np.asarray(probs, np.float32)
    if p.ndim != 3 or p.shape[0] < 2 or p[0].size == 0:
        return 0.0
    p = np.clip(p, EPS, 1.0)
    entropy = -(p * np.log(p)).sum(0)  # (H, W)
    return float(np.clip(entropy.mean() / np.log(p.shape[0]), 0.0, 1.0))


def tag_uncertainty(scores: np.ndarray) -> float:
    """``scores`` (T,) float in [0, 1]: mean binary entropy in bits (0 for no tags)."""
    s = np.clip(np.asarray(scores, np.float64).reshape(-1), EPS, 1 - EPS)
    if s.size == 0:
        return 0.0
    h = -(s * np.log2(s) + (1 - s) * np.log2(1 - s))
    return float(np.clip(h.mean(), 0.0, 1.0))
