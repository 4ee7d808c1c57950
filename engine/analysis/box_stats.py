"""Box shape statistics in log space: lines through (ln w, ln h), class and size histograms. Pure numpy.

Boxes are float ``xyxy`` in original image pixels (origin top-left, x right, y down). A box's
point is ``(ln w, ln h)``; a line through the cloud with slope 1 means "aspect ratio constant
across sizes", the intercept then being ln(h / w).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_wh(boxes: np.ndarray) -> np.ndarray:
    """``boxes``: (N, 4) xyxy -> (N, 2) float64 (w, h), clipped at 0."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (b[:, 2:] - b[:, :2]).clip(0)


def log_points(boxes: np.ndarray, min_side: float = 1.0) -> np.ndarray:
    """(N, 2) float64 points (ln w, ln h) of the boxes whose sides are both >= ``min_side`` pixels."""
    wh = box_wh(boxes)
    wh = wh[(wh >= min_side).all(1)]
    return np.log(wh)


def _check_points(points: np.ndarray, need: int = 2) -> np.ndarray:
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(p) < need:
        raise ValueError(f"a line needs at least {need} boxes, got {len(p)}")
    return p


def max_variance_line(points: np.ndarray) -> dict:
    """First principal component of (N, 2) points = the total-least-squares line.

    Returns ``{"mean": [mx, my], "direction": [dx, dy], "explained_variance_ratio": r}``: the line is
    ``mean + t * direction``; direction is a unit vector with dx >= 0 (dy >= 0 when dx == 0); r is
    the share of the total variance along it (0.5 for an isotropic cloud, 1 for points on a line).
    """
    p = _check_points(points)
    mean = p.mean(0)
    cov = np.cov(p, rowvar=False, bias=True)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    d = evecs[:, 1]
    if d[0] < 0 or (d[0] == 0 and d[1] < 0):
        d = -d
    total = float(evals.sum())
    ratio = float(evals[1] / total) if total > 0 else 1.0
    return {"mean": [float(mean[0]), float(mean[1])], "direction": [float(d[0]), float(d[1])],
            "explained_variance_ratio": ratio}


def ols_line(points: np.ndarray) -> dict:
    """Ordinary least squares of y on x for (N, 2) points: ``{"slope": cov(x, y) / var(x), "intercept"}``.

    Unlike the max-variance line it treats x as exact, so its slope is attenuated towards 0 by the
    spread of x relative to the noise (regression dilution)."""
    p = _check_points(points)
    x, y = p[:, 0], p[:, 1]
    vx = float(((x - x.mean()) ** 2).mean())
    if vx <= 0:
        raise ValueError("all boxes have the same width: ln h cannot be regressed on ln w")
    slope = float(((x - x.mean()) * (y - y.mean())).mean() / vx)
    return {"slope": slope, "intercept": float(y.mean() - slope * x.mean())}


def histogram(values: np.ndarray, bins: int = 20, log: bool = False) -> dict:
    """``{"edges": (bins + 1) floats, "counts": bins ints}``; log-spaced edges when ``log`` (values > 0)."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if len(v) == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo * 1.01 + 1e-9 if log else lo + 1.0
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(v, edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def size_stats(boxes: np.ndarray, bins: int = 20) -> dict:
    """Size sqrt(w h) and aspect ratio h / w of (N, 4) xyxy boxes: histograms (log bins) and quantiles."""
    wh = box_wh(boxes)
    wh = wh[(wh > 0).all(1)]
    size = np.sqrt(wh[:, 0] * wh[:, 1])
    aspect = wh[:, 1] / wh[:, 0] if len(wh) else np.zeros(0)
    q = (0.0, 0.1, 0.5, 0.9, 1.0)

    def quantiles(v: np.ndarray) -> dict[str, float]:
        return {f"p{int(round(p * 100))}": float(np.quantile(v, p)) for p in q} if len(v) else {}

    return {"size_histogram": histogram(size, bins, log=True), "aspect_histogram": histogram(aspect, bins, log=True),
            "size_quantiles": quantiles(size), "aspect_quantiles": quantiles(aspect)}


def class_histogram(category_ids: Sequence[int], names: dict[int, str]) -> dict[str, int]:
    """Objects per category name (every category in ``names`` appears, unused ones with 0)."""
    ids, counts = np.unique(np.asarray(category_ids, np.int64), return_counts=True)
    out = {name: 0 for name in names.values()}
    for i, c in zip(ids.tolist(), counts.tolist()):
        key = names.get(i, f"#{i}")
        out[key] = out.get(key, 0) + int(c)
    return out


def objects_per_image(counts: Sequence[int]) -> dict:
    """``{"mean", "max"}`` of per-image object counts (0 and 0 for no images)."""
    c = np.asarray(counts, np.float64)
    return {"mean": float(c.mean()) if len(c) else 0.0, "max": int(c.max()) if len(c) else 0}
