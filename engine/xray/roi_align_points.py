"""Where RoI Align samples the feature map, as points in image pixels.

Mirrors torchvision's ``roi_align`` kernel: with ``offset = 0.5 if aligned else 0`` the RoI starts at
``x1 * scale - offset`` on the feature map, its width is ``(x2 - x1) * scale`` (at least 1 when not
aligned), each of the ``out_h x out_w`` bins holds ``grid_h x grid_w`` samples (``sampling_ratio``,
or ``ceil(roi_size / out)`` when it is <= 0) at ``start + bin * (p + (i + 0.5) / grid)``. Feature index
``f`` on a level of ``scale`` lies at image coordinate ``(f + offset) / scale``.
"""

from __future__ import annotations

import math

import numpy as np


def sampling_points(box: np.ndarray, spatial_scale: float, output_size: tuple[int, int] = (7, 7),
                    sampling_ratio: int = 2, aligned: bool = False, frame: str = "image") -> np.ndarray:
    """Sampling points of one RoI.

    ``box``: (4,) xyxy in the model's input frame (the frame the RoI pooler receives).
    Returns (out_h * out_w * grid_h * grid_w, 2) float64 (x, y), ordered (bin_row, bin_col,
    sample_row, sample_col); ``frame='image'`` gives input-frame pixels, ``'feature'`` feature-map
    coordinates (integer f = cell f of the level, what ``roi_align`` interpolates at).
    """
    out_h, out_w = (int(v) for v in output_size)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    s = float(spatial_scale)
    start_x, start_y = x1 * s - offset, y1 * s - offset
    roi_w, roi_h = x2 * s - offset - start_x, y2 * s - offset - start_y
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_w, bin_h = roi_w / out_w, roi_h / out_h
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
    py = np.arange(out_h)[:, None, None, None]
    px = np.arange(out_w)[None, :, None, None]
    iy = np.arange(grid_h)[None, None, :, None]
    ix = np.arange(grid_w)[None, None, None, :]
    ys = start_y + py * bin_h + (iy + 0.5) * bin_h / grid_h
    xs = start_x + px * bin_w + (ix + 0.5) * bin_w / grid_w
    shape = (out_h, out_w, grid_h, grid_w)
    pts = np.stack([np.broadcast_to(xs, shape), np.broadcast_to(ys, shape)], -1).reshape(-1, 2)
    if frame == "feature":
        return pts
    if frame != "image":
        raise ValueError(f"frame must be 'image' or 'feature', got {frame!r}")
    return (pts + offset) / s


def roi_points(arrays: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, int]:
    """Sampling points of captured RoI ``index`` in ORIGINAL pixels ((P, 2) float32) and its level.

    Uses the capture's ``rois``, ``roi_level``, ``roi_pool_scales``, ``roi_pool_params`` and ``scale``.
    """
    rois = arrays["rois"]
    if not 0 <= index < len(rois):
        raise IndexError(f"RoI index {index} out of range (capture has {len(rois)} RoIs)")
    level = int(arrays["roi_level"][index])
    out_h, out_w, ratio, aligned = (int(v) for v in arrays["roi_pool_params"])
    scale = np.asarray(arrays["scale"], np.float64)  # (sx, sy) original / input
    box_in = np.asarray(rois[index], np.float64) / np.concatenate([scale, scale])
    pts = sampling_points(box_in, float(arrays["roi_pool_scales"][level]), (out_h, out_w), ratio, bool(aligned))
    return (pts * scale).astype(np.float32), level


def sampling_bins(box: np.ndarray, spatial_scale: float, output_size: tuple[int, int] = (7, 7),
                  aligned: bool = False) -> np.ndarray:
    """The ``out_h x out_w`` RoI Align bins of one RoI as (out_h * out_w, 4) float64 xyxy boxes in the
    input frame, row-major (same maths as ``sampling_points``)."""
    out_h, out_w = (int(v) for v in output_size)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    s = float(spatial_scale)
    roi_w, roi_h = (x2 - x1) * s, (y2 - y1) * s
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_w, bin_h = roi_w / out_w, roi_h / out_h
    start_x, start_y = x1 * s - offset, y1 * s - offset
    ys = (start_y + np.arange(out_h) * bin_h + offset) / s
    xs = (start_x + np.arange(out_w) * bin_w + offset) / s
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx, gy, gx + bin_w / s, gy + bin_h / s], -1).reshape(-1, 4)


def roi_bins(arrays: dict[str, np.ndarray], index: int) -> np.ndarray:
    """The bins of captured RoI ``index`` as (out_h * out_w, 4) float32 xyxy ORIGINAL pixels."""
    level = int(arrays["roi_level"][index])
    out_h, out_w, _, aligned = (int(v) for v in arrays["roi_pool_params"])
    scale = np.asarray(arrays["scale"], np.float64)
    scale4 = np.concatenate([scale, scale])
    box_in = np.asarray(arrays["rois"][index], np.float64) / scale4
    bins = sampling_bins(box_in, float(arrays["roi_pool_scales"][level]), (out_h, out_w), bool(aligned))
    return (bins * scale4).astype(np.float32)
