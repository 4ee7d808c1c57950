"""Loss curves as pure numpy, for plotting in a loss explorer without torch.

All functions take and return float64 arrays of the same shape as their input (``softmax_ce``: a
float). ``p_t`` is the probability the model gives the true class, in (0, 1] (0 gives +inf); ``x`` is a
regression residual (prediction - target); ``z`` a logit vector (K,) over classes, ``y`` its 0/1
multi-label targets and ``target`` its single-label class index.
"""

from __future__ import annotations

import numpy as np


def ce_curve(p_t: np.ndarray) -> np.ndarray:
    """Cross-entropy ``-log p_t``."""
    p = np.asarray(p_t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -np.log(p)


def focal_curve(p_t: np.ndarray, gamma: float, alpha: float | None = None) -> np.ndarray:
    """Focal loss ``-alpha (1 - p_t)^gamma log p_t`` (alpha None or < 0: no alpha factor)."""
    p = np.asarray(p_t, dtype=np.float64)
    loss = np.power(np.clip(1.0 - p, 0.0, None), gamma) * ce_curve(p)
    if alpha is not None and alpha >= 0:
        loss = alpha * loss
    return loss


def smooth_l1_curve(x: np.ndarray, beta: float) -> np.ndarray:
    """Smooth L1 ``0.5 x^2 / beta`` for |x| < beta, else ``|x| - 0.5 beta``; beta == 0 is |x|."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    if beta <= 0:
        return a
    return np.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def smooth_l1_grad(x: np.ndarray, beta: float) -> np.ndarray:
    """d smooth_l1 / dx: ``x / beta`` for |x| < beta, else ``sign(x)``; beta == 0 is sign(x)."""
    v = np.asarray(x, dtype=np.float64)
    if beta <= 0:
        return np.sign(v)
    return np.where(np.abs(v) < beta, v / beta, np.sign(v))


def l1_curve(x: np.ndarray) -> np.ndarray:
    """``|x|``."""
    return np.abs(np.asarray(x, dtype=np.float64))


def l2_curve(x: np.ndarray) -> np.ndarray:
    """``0.5 x^2`` (matches ``box.l2_loss``)."""
    v = np.asarray(x, dtype=np.float64)
    return 0.5 * v * v


def l1_grad(x: np.ndarray) -> np.ndarray:
    """d|x| / dx = ``sign(x)`` (0 at 0, as torch)."""
    return np.sign(np.asarray(x, dtype=np.float64))


def l2_grad(x: np.ndarray) -> np.ndarray:
    """d(0.5 x^2) / dx = ``x``."""
    return np.asarray(x, dtype=np.float64).copy()


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Per-class probabilities of independent sigmoids (multi-label), numerically stable."""
    v = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis that sum to 1 (single-label), numerically stable."""
    v = np.asarray(z, dtype=np.float64)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid_bce(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-class binary cross-entropy of logits ``z`` against 0/1 targets ``y`` (torch: BCE with logits)."""
    v = np.asarray(z, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    return np.maximum(v, 0.0) - v * t + np.log1p(np.exp(-np.abs(v)))


def sigmoid_bce_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d sigmoid_bce / dz per class: ``sigmoid(z) - y`` (each class on its own)."""
    return sigmoid(z) - np.asarray(y, dtype=np.float64)


def softmax_ce(z: np.ndarray, target: int) -> float:
    """Cross-entropy ``-log softmax(z)[target]`` of one logit vector ``z`` (K,) and a class index."""
    v = np.asarray(z, dtype=np.float64)
    m = float(v.max())
    return float(m + np.log(np.exp(v - m).sum()) - v[int(target)])


def softmax_ce_grad(z: np.ndarray, target: int) -> np.ndarray:
    """d softmax_ce / dz: ``softmax(z) - onehot(target)`` (every class pulled by the one target)."""
    g = softmax(z)
    g[int(target)] -= 1.0
    return g
