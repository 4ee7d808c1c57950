"""Loss curves as pure numpy, for plotting in a loss explorer without torch.

All functions take and return float64 arrays of the same shape as their input. ``p_t`` is the
probability the model gives the true class, in (0, 1] (0 gives +inf); ``x`` is a regression residual
(prediction - target).
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
