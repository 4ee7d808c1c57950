"""Anchor bookkeeping: which level/size/ratio each anchor has, and which anchors sit at a pixel.

torchvision's ``AnchorGenerator`` orders anchors level by level; inside a level location by
location (row-major over the feature grid), and at each location ratio-major: cell anchor
``a = ratio_index * len(sizes) + size_index``. A location (row, col) is centred at
``(col * stride_x, row * stride_y)`` in the input frame, with ``stride = padded_size // grid``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import boxes as box_ops


def anchor_meta(sizes: Sequence[Sequence[float]], ratios: Sequence[Sequence[float]],
                grid_sizes: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Per-anchor ids for an AnchorGenerator config and the feature grids (one (H, W) per level).

    Returns ``anchor_level`` (A,) int32, ``anchor_size`` (A,) float32 (nominal side, input pixels),
    ``anchor_ratio`` (A,) float32 (height / width), ``level_anchors`` (L,) int32 per location,
    ``level_start`` (L,) int64 first anchor index of each level.
    """
    levels, size_l, ratio_l, per_loc, starts = [], [], [], [], []
    start = 0
    for lvl, ((gh, gw), s, r) in enumerate(zip(grid_sizes, sizes, ratios)):
        s_arr = np.asarray(s, np.float32)
        r_arr = np.asarray(r, np.float32)
        cell_size = np.tile(s_arr, len(r_arr))  # ratio-major, size-minor
        cell_ratio = np.repeat(r_arr, len(s_arr))
        n_loc = int(gh) * int(gw)
        levels.append(np.full(n_loc * len(cell_size), lvl, np.int32))
        size_l.append(np.tile(cell_size, n_loc))
        ratio_l.append(np.tile(cell_ratio, n_loc))
        per_loc.append(len(cell_size))
        starts.append(start)
        start += n_loc * len(cell_size)
    def cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

    return {"anchor_level": cat(levels, np.int32), "anchor_size": cat(size_l, np.float32),
            "anchor_ratio": cat(ratio_l, np.float32), "level_anchors": np.asarray(per_loc, np.int32),
            "level_start": np.asarray(starts, np.int64)}


def anchors_at(arrays: dict[str, np.ndarray], x: float, y: float) -> np.ndarray:
    """Indices into ``arrays['anchors']`` of every anchor centred nearest to (x, y) original pixels,
    one location per level (all sizes and ratios there), level by level. (K,) int64."""
    sx, sy = (float(v) for v in arrays["scale"])
    xi, yi = x / sx, y / sy  # input frame
    out = []
    for lvl in range(len(arrays["level_grid"])):
        gh, gw = (int(v) for v in arrays["level_grid"][lvl])
        st_y, st_x = (int(v) for v in arrays["level_stride"][lvl])
        col = int(np.clip(np.floor(xi / st_x + 0.5), 0, gw - 1))
        row = int(np.clip(np.floor(yi / st_y + 0.5), 0, gh - 1))
        a = int(arrays["level_anchors"][lvl])
        base = int(arrays["level_start"][lvl]) + (row * gw + col) * a
        out.append(np.arange(base, base + a, dtype=np.int64))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M) float64 (0 where the union is empty).

    ``torchvision.ops.box_iou`` (the one IoU of the project) on float64 copies."""
    ta = torch.as_tensor(np.asarray(a, np.float64).reshape(-1, 4))
    tb = torch.as_tensor(np.asarray(b, np.float64).reshape(-1, 4))
    return torch.nan_to_num(box_ops.box_iou(ta, tb), nan=0.0).numpy()


def smallest_box_at(boxes: np.ndarray, x: float, y: float, mask: np.ndarray | None = None) -> int:
    """Index of the smallest-area box in (N, 4) xyxy containing (x, y) (restricted to ``mask``), or -1."""
    b = np.asarray(boxes).reshape(-1, 4)
    inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
    if mask is not None:
        inside &= mask
    idx = np.flatnonzero(inside)
    if len(idx) == 0:
        return -1
    area = (b[idx, 2] - b[idx, 0]) * (b[idx, 3] - b[idx, 1])
    return int(idx[np.argmin(area)])
