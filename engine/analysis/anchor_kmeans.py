"""Anchor shapes by k-means on box (w, h) with distance 1 - IoU (YOLOv2), and their fit to Faster R-CNN.

Shapes only: every box and anchor is centred at the origin, so the IoU of (w1, h1) and (w2, h2) is
``min(w1, w2) min(h1, h2) / (w1 h1 + w2 h2 - min(w1, w2) min(h1, h2))``, independent of position and
stride. Sizes are in whatever pixel frame the caller uses (original or model input); IoU is
scale-invariant only if boxes and anchors are in the same frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def wh_iou(boxes_wh: np.ndarray, anchors_wh: np.ndarray) -> np.ndarray:
    """(N, 2) and (K, 2) float (w, h) -> (N, K) float64 IoU of centre-aligned boxes."""
    b = np.asarray(boxes_wh, np.float64).reshape(-1, 2)
    a = np.asarray(anchors_wh, np.float64).reshape(-1, 2)
    inter = np.minimum(b[:, None, 0], a[None, :, 0]) * np.minimum(b[:, None, 1], a[None, :, 1])
    union = (b[:, 0] * b[:, 1])[:, None] + (a[:, 0] * a[:, 1])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def mean_best_iou(boxes_wh: np.ndarray, anchors_wh: np.ndarray) -> float:
    """Mean over boxes of the best centre-aligned IoU with any anchor (nan without boxes)."""
    iou = wh_iou(boxes_wh, anchors_wh)
    return float(iou.max(1).mean()) if iou.size else float("nan")


def recall_at(boxes_wh: np.ndarray, anchors_wh: np.ndarray, threshold: float = 0.5) -> float:
    """Share of boxes whose best centre-aligned IoU with an anchor is >= ``threshold`` (nan without boxes)."""
    iou = wh_iou(boxes_wh, anchors_wh)
    return float((iou.max(1) >= threshold).mean()) if iou.size else float("nan")


def _init_pp(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with distance 1 - IoU: each next centre drawn with probability ~ d^2."""
    centres = [wh[rng.integers(len(wh))]]
    d = 1.0 - wh_iou(wh, centres[0][None])[:, 0]
    for _ in range(1, k):
        w = d**2
        total = w.sum()
        i = rng.choice(len(wh), p=w / total) if total > 0 else rng.integers(len(wh))
        centres.append(wh[i])
        d = np.minimum(d, 1.0 - wh_iou(wh, wh[i][None])[:, 0])
    return np.array(centres, np.float64)


def _lloyd(wh: np.ndarray, centres: np.ndarray, max_iter: int) -> tuple[np.ndarray, float]:
    """Assign to the nearest centre (max IoU), move centres to the mean (w, h); returns centres, mean best IoU."""
    assign = None
    for _ in range(max_iter):
        iou = wh_iou(wh, centres)
        new = iou.argmax(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(len(centres)):
            members = wh[assign == j]
            if len(members):
                centres[j] = members.mean(0)
            else:  # empty cluster: restart it on the worst-covered box
                centres[j] = wh[int(iou.max(1).argmin())]
    return centres, float(wh_iou(wh, centres).max(1).mean())


def kmeans_anchors(boxes_wh: np.ndarray, k: int, seed: int = 0, n_init: int = 3, max_iter: int = 300) -> np.ndarray:
    """(N, 2) box (w, h) -> (k, 2) float64 anchor (w, h) sorted by area (ascending).

    k-means with distance 1 - IoU (YOLOv2), k-means++ seeding, ``n_init`` seeded restarts; the run
    with the highest mean best IoU wins. Raises ValueError when there are fewer boxes than ``k``."""
    wh = np.asarray(boxes_wh, np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(1) & np.isfinite(wh).all(1)]
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(wh) < k:
        raise ValueError(f"k={k} anchors need at least {k} boxes, the data has {len(wh)}")
    rng = np.random.default_rng(seed)
    best, best_score = None, -1.0
    for _ in range(max(1, n_init)):
        centres, score = _lloyd(wh, _init_pp(wh, k, rng), max_iter)
        if score > best_score:
            best, best_score = centres, score
    assert best is not None
    return best[np.argsort(best[:, 0] * best[:, 1], kind="stable")]


def faster_rcnn_anchor_wh(anchor_sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[float]) -> np.ndarray:
    """(L * S * R, 2) float64 (w, h) of torchvision's ``AnchorGenerator`` cell anchors.

    ``anchor_sizes``: sizes per FPN level; ``aspect_ratios``: h / w. As torchvision: h = size sqrt(r),
    w = size / sqrt(r), corners rounded to integers (float32, round half to even), so w = 2 round(w / 2)."""
    out = []
    r = np.asarray(aspect_ratios, np.float32)
    h_ratio = np.sqrt(r)
    w_ratio = np.float32(1) / h_ratio
    for level in anchor_sizes:
        s = np.asarray(level, np.float32)
        ws = (w_ratio[:, None] * s[None, :]).reshape(-1)
        hs = (h_ratio[:, None] * s[None, :]).reshape(-1)
        half = np.round(np.stack([ws, hs], 1) / np.float32(2))
        out.append(2 * half.astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, 2))


def anchors_to_faster_rcnn(anchors_wh: np.ndarray, levels: int, sizes_per_level: int = 2, max_ratios: int = 3
                           ) -> tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]:
    """Turn suggested anchors (K, 2) (w, h) into a Faster R-CNN configuration (sizes per level, ratios h / w).

    The RPN head predicts the same number of anchors at every location of every level, so the K shapes
    are approximated, not copied: up to ``max_ratios`` aspect ratios (groups of log h / w, each the
    geometric mean of its group, 2 decimals), and ``levels * sizes_per_level`` sizes on a geometric
    ladder from the smallest to the largest suggested sqrt(w h), smallest sizes on the finest level."""
    a = np.asarray(anchors_wh, np.float64).reshape(-1, 2)
    a = a[(a > 0).all(1)]
    if len(a) == 0:
        raise ValueError("no anchors to convert")
    if levels < 1 or sizes_per_level < 1 or max_ratios < 1:
        raise ValueError("levels, sizes_per_level and max_ratios must be at least 1")
    log_r = np.sort(np.log(a[:, 1] / a[:, 0]))
    groups = np.array_split(log_r, min(max_ratios, len(log_r)))
    ratios = sorted({round(float(np.exp(g.mean())), 2) for g in groups if len(g)})
    scale = np.sqrt(a[:, 0] * a[:, 1])
    n = levels * sizes_per_level
    ladder = np.geomspace(scale.min(), scale.max(), n) if n > 1 else np.array([np.exp(np.log(scale).mean())])
    sizes = [max(1, int(round(v))) for v in ladder]
    for i in range(1, n):  # torchvision needs positive sizes; keep the ladder strictly increasing
        sizes[i] = max(sizes[i], sizes[i - 1] + 1)
    per_level = tuple(tuple(sizes[i * sizes_per_level:(i + 1) * sizes_per_level]) for i in range(levels))
    return per_level, tuple(ratios)
