"""Edits of shape geometry, Qt-free: translate, clamp, resize handles, vertex edits, brush strokes.

The GUI's tools and commands are thin adapters over these functions (``gui.labeling``). Frame: image
pixels, origin top-left, x right, y down; pixel (r, c) covers [c, c+1) x [r, r+1). Masks are (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.project.shapes import Box, Geometry, Line, Mask, Point, Polygon


def clamp_point(x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """(x, y) clamped into the image [0, width] x [0, height] (pixel edges)."""
    return min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))


def shift_mask(mask: Mask, dx: int, dy: int) -> Mask:
    """The mask translated by whole pixels (dx, dy); pixels leaving the image are dropped (cost: the crop)."""
    x0, y0, crop = mask.crop()
    return Mask.from_crop(x0 + int(dx), y0 + int(dy), crop, mask.size)


def mask_with_patch(mask: Mask, x0: int, y0: int, patch: np.ndarray) -> Mask:
    """``mask`` with the (h, w) bool ``patch`` written at (x0, y0); cost: the union of crop and patch boxes."""
    mx, my, crop = mask.crop()
    ph, pw = patch.shape
    if not crop.any():
        return Mask.from_crop(x0, y0, patch, mask.size)
    ux0, uy0 = min(mx, x0), min(my, y0)
    ux1, uy1 = max(mx + crop.shape[1], x0 + pw), max(my + crop.shape[0], y0 + ph)
    out = np.zeros((uy1 - uy0, ux1 - ux0), np.uint8)
    out[my - uy0:my - uy0 + crop.shape[0], mx - ux0:mx - ux0 + crop.shape[1]] = crop
    out[y0 - uy0:y0 - uy0 + ph, x0 - ux0:x0 - ux0 + pw] = patch
    return Mask.from_crop(ux0, uy0, out, mask.size)


def mask_window(mask: Mask, x0: int, y0: int, h: int, w: int) -> np.ndarray:
    """(h, w) bool: the mask's pixels in the window at (x0, y0) (cost: the crop and the window)."""
    mx, my, crop = mask.crop()
    out = np.zeros((h, w), bool)
    ix0, iy0 = max(x0, mx), max(y0, my)
    ix1, iy1 = min(x0 + w, mx + crop.shape[1]), min(y0 + h, my + crop.shape[0])
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = crop[iy0 - my:iy1 - my, ix0 - mx:ix1 - mx].astype(bool)
    return out


def translate(g: Geometry, dx: float, dy: float) -> Geometry:
    """``g`` moved by (dx, dy) image pixels (masks by whole pixels, rounded)."""
    if isinstance(g, Box):
        return Box(g.xyxy + [dx, dy, dx, dy])
    if isinstance(g, Polygon):
        return Polygon(g.points + [dx, dy])
    if isinstance(g, Point):
        return Point(g.xy + [dx, dy])
    if isinstance(g, Line):
        return Line(g.points + [dx, dy])
    return shift_mask(g, round(dx), round(dy))


def move_delta(bounds: np.ndarray, dx: float, dy: float, width: int, height: int,
               whole_pixels: bool = False) -> tuple[float, float]:
    """The move (dx, dy) of shapes whose union box is ``bounds`` (4,) xyxy, limited so it stays in the image.

    ``whole_pixels`` (a mask moves along): the move is rounded to whole pixels, still inside the image.
    """
    x1, y1, x2, y2 = (float(v) for v in bounds)
    dx = min(max(dx, -x1), width - x2)
    dy = min(max(dy, -y1), height - y2)
    if whole_pixels:
        dx = float(np.clip(round(dx), np.ceil(-x1), np.floor(width - x2)))
        dy = float(np.clip(round(dy), np.ceil(-y1), np.floor(height - y2)))
    return dx, dy


def resize_box(origin: np.ndarray, handle: int, x: float, y: float) -> np.ndarray:
    """(4,) xyxy after dragging resize handle ``handle`` of the box ``origin`` to (x, y).

    Handles: 0-3 corners (tl, tr, br, bl), 4-7 edge midpoints (top, right, bottom, left).
    """
    x1, y1, x2, y2 = (float(v) for v in origin)
    x1 = x if handle in (0, 3, 7) else x1
    x2 = x if handle in (1, 2, 5) else x2
    y1 = y if handle in (0, 1, 4) else y1
    y2 = y if handle in (2, 3, 6) else y2
    return Box(np.array([x1, y1, x2, y2])).xyxy


def box_handles(xyxy: np.ndarray) -> np.ndarray:
    """(8, 2) resize handles of a box: corners (tl, tr, br, bl) then edge midpoints (top, right, bottom, left)."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [mx, y1], [x2, my], [mx, y2], [x1, my]])


def nearest_edge(points: np.ndarray, p: np.ndarray) -> tuple[int, np.ndarray, float]:
    """For a closed polygon (N, 2): (index of the edge i -> i+1, closest point on it, distance)."""
    a, b = points, np.roll(points, -1, axis=0)
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    q = a + t[:, None] * ab
    d = np.hypot(*(q - p).T)
    i = int(np.argmin(d))
    return i, q[i], float(d[i])


def rasterize_stroke(points: np.ndarray, radius: float, size: tuple[int, int]) -> tuple[int, int, np.ndarray] | None:
    """Pixels within ``radius`` of the polyline ``points`` ((N, 2) float image pixels x, y).

    Returns (x0, y0, crop) with ``crop`` an (h, w) bool array placed at (x0, y0) of an (H, W) = ``size``
    image, cropped to the stroke's bounding box; None if the stroke misses the image.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    height, width = size
    x0, y0 = (max(0, int(np.floor(v - radius - 1))) for v in pts.min(0))
    x1, y1 = (int(min(lim, np.ceil(v + radius + 1))) for v, lim in zip(pts.max(0), (width, height)))
    if x1 <= x0 or y1 <= y0:
        return None
    crop = np.zeros((y1 - y0, x1 - x0), np.uint8)
    q = np.round((pts - [x0 + 0.5, y0 + 0.5]) * 16).astype(np.int32)  # pixel centres, 4 fractional bits
    r16 = max(1, round(radius * 16))
    for a, b in zip(q[:-1], q[1:]):
        cv2.line(crop, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, max(1, round(2 * radius)), cv2.LINE_8, 4)
    for a in q:
        cv2.circle(crop, (int(a[0]), int(a[1])), r16, 1, -1, cv2.LINE_8, 4)
    return x0, y0, crop.astype(bool)


@dataclass(frozen=True)
class StrokeDelta:
    """What one brush/eraser stroke changes in a mask: (h, w) bool crops at pixel offset (x0, y0).

    ``rest_empty``: the target has no pixel outside the crop (an empty ``after`` deletes it).
    ``full``: always None now (masks are cropped; kept for callers that pass it on).
    """

    x0: int
    y0: int
    before: np.ndarray
    after: np.ndarray
    rest_empty: bool
    full: np.ndarray | None


def stroke_delta(size: tuple[int, int], points: np.ndarray, radius: float, erase: bool,
                 target: Mask | None) -> StrokeDelta | None:
    """The change a stroke makes to ``target`` (None: a new instance) on an (H, W) image; None if none.

    Raises ``ValueError`` if ``target`` is not of this image's size.
    """
    raster = rasterize_stroke(points, radius, size)
    if raster is None:
        return None
    x0, y0, stroke = raster
    if target is not None:
        if target.size != tuple(size):
            raise ValueError(f"mask is {target.size[1]}x{target.size[0]}, the image {size[1]}x{size[0]}")
        before = mask_window(target, x0, y0, *stroke.shape)
        rest_empty = int(target.area()) == int(np.count_nonzero(before))
    else:
        before, rest_empty = np.zeros_like(stroke), True
    full = None
    after = before & ~stroke if erase else before | stroke
    if np.array_equal(before, after):
        return None
    return StrokeDelta(x0, y0, before, after, rest_empty, full)


def paste(size: tuple[int, int], x0: int, y0: int, crop: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """An (H, W) uint8 mask: ``base`` (or zeros, column-major for RLE) with ``crop`` written at (x0, y0)."""
    m = np.zeros(size, np.uint8, order="F") if base is None else base
    h, w = crop.shape
    m[y0:y0 + h, x0:x0 + w] = crop
    return m


def fit_geometry(g: Geometry, width: int, height: int) -> Geometry | None:
    """``g`` made to fit an image of ``width`` x ``height`` (clipped); None if nothing of it is left."""
    lim = np.array([width, height], np.float64)
    if isinstance(g, Box):
        xyxy = np.concatenate([np.clip(g.xyxy[:2], 0, lim), np.clip(g.xyxy[2:], 0, lim)])
        return Box(xyxy) if min(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]) > 0 else None
    if isinstance(g, Polygon):
        p = Polygon(np.clip(g.points, 0, lim))
        return p if p.area() > 0 else None
    if isinstance(g, Line):
        return Line(np.clip(g.points, 0, lim))
    if isinstance(g, Point):
        return Point(np.clip(g.xy, 0, lim))
    if isinstance(g, Mask):
        x0, y0, crop = g.crop()
        m = Mask.from_crop(x0, y0, crop, (height, width))
        return m if m.area() > 0 else None
    return None
