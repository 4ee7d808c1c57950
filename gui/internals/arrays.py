"""Qt-free numpy helpers of the Inside-the-CNN dock: feature-map tiles, colour maps, cell boxes, BN tables.

Frames follow docs/internals.md: ``feature`` (C, h, w) rows sorted by mean activation; ``rf_box0`` (4,)
xyxy, ``cell_center0`` (2,) (x, y) and ``cell_step`` (2,) (x, y) in ORIGINAL image pixels. Everything that
goes to Qt as an image is a C-contiguous uint8 array built here, before the hand-over, never in paint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BN_STATS = ("in_mean", "in_std", "run_mean", "run_var")
BN_SPLIT = "bn"


# -- feature-map grid -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridLayout:
    """Where the tiles of one page sit in the composed image (pixels = feature cells, ``gap`` between)."""

    first: int  # row of ``feature`` shown in tile 0
    count: int  # tiles on this page
    cols: int
    rows: int
    h: int  # cells per tile
    w: int
    gap: int = 1

    @property
    def width(self) -> int:
        return self.cols * self.w + (self.cols - 1) * self.gap

    @property
    def height(self) -> int:
        return self.rows * self.h + (self.rows - 1) * self.gap

    def origin(self, tile: int) -> tuple[int, int]:
        """(x, y) of tile ``tile``'s top-left pixel in the composed image."""
        r, c = divmod(tile, self.cols)
        return c * (self.w + self.gap), r * (self.h + self.gap)

    def hit(self, x: float, y: float) -> tuple[int, int, int] | None:
        """(feature row, cell row i, cell column j) under composed-image point (x, y); None in a gap/outside."""
        if x < 0 or y < 0:
            return None
        c, dx = divmod(int(math.floor(x)), self.w + self.gap)
        r, dy = divmod(int(math.floor(y)), self.h + self.gap)
        if c >= self.cols or r >= self.rows or dx >= self.w or dy >= self.h:
            return None
        tile = r * self.cols + c
        if tile >= self.count:
            return None
        return self.first + tile, dy, dx


def page_count(channels: int, per_page: int) -> int:
    return max(1, -(-int(channels) // max(1, int(per_page))))


def best_cols(count: int, h: int, w: int, view_w: float, view_h: float, gap: int = 1) -> int:
    """Columns that make ``count`` tiles of h × w cells biggest in a view_w × view_h area (ties: squarer)."""
    count = max(1, int(count))
    if view_w <= 0 or view_h <= 0:
        return max(1, math.ceil(math.sqrt(count)))
    best, best_scale = 1, -1.0
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        scale = min(view_w / (cols * w + (cols - 1) * gap), view_h / (rows * h + (rows - 1) * gap))
        if scale > best_scale * 1.0001:
            best, best_scale = cols, scale
    return best


def grid_layout(shape: tuple[int, int, int], page: int, per_page: int, gap: int = 1,
                cols: int | None = None) -> GridLayout:
    """Layout of page ``page`` (0-based, clamped) of a (C, h, w) feature map, ``per_page`` channels a page,
    in ``cols`` columns (default: as square a grid as the count allows)."""
    c, h, w = (int(v) for v in shape)
    page = min(max(0, page), page_count(c, per_page) - 1)
    first = page * per_page
    count = max(0, min(per_page, c - first))
    cols = max(1, min(int(cols), max(count, 1))) if cols else max(1, math.ceil(math.sqrt(max(count, 1))))
    rows = max(1, math.ceil(max(count, 1) / cols))
    return GridLayout(first, count, cols, rows, h, w, gap)


def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colour table of a pyqtgraph colour map (``viridis``, ``inferno``, ``gray``)."""
    if name == "gray":
        v = np.arange(256, dtype=np.uint8)
        return np.ascontiguousarray(np.stack([v, v, v], 1))
    import pyqtgraph as pg  # the colour tables only; no widget

    return np.ascontiguousarray(pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False), dtype=np.uint8)


def compose_grid(feature: np.ndarray, layout: GridLayout, table: np.ndarray, shared: bool = False,
                 background: tuple[int, int, int] = (40, 40, 44)) -> np.ndarray:
    """(height, width, 3) uint8 C-contiguous RGB: the page's channels side by side, each scaled to its own
    min..max (``shared``: to the page's common min..max) and coloured through ``table`` (256, 3)."""
    out = np.empty((layout.height, layout.width, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    if layout.count == 0:
        return out
    tiles = np.asarray(feature[layout.first:layout.first + layout.count], np.float32)
    finite = np.where(np.isfinite(tiles), tiles, 0.0)
    if shared:
        lo = np.full(len(tiles), finite.min())
        hi = np.full(len(tiles), finite.max())
    else:
        lo, hi = finite.min(axis=(1, 2)), finite.max(axis=(1, 2))
    span = np.where(hi > lo, hi - lo, 1.0)
    idx = np.clip((finite - lo[:, None, None]) / span[:, None, None] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    for t in range(layout.count):
        x, y = layout.origin(t)
        out[y:y + layout.h, x:x + layout.w] = table[idx[t]]
    return np.ascontiguousarray(out)


# -- cells on the image ---------------------------------------------------------------------------------
def cell_rf_box(arrays: dict, i: int, j: int) -> np.ndarray:
    """(4,) float64 xyxy ORIGINAL pixels: the theoretical receptive field of cell (row i, column j)
    (``rf_box0`` moved by ``(j, i) * cell_step``; docs/internals.md). Not clipped to the image."""
    sx, sy = (float(v) for v in arrays["cell_step"])
    return np.asarray(arrays["rf_box0"], np.float64) + np.array([j * sx, i * sy, j * sx, i * sy])


def cell_step_box(arrays: dict, i: int, j: int) -> np.ndarray:
    """(4,) float64 xyxy ORIGINAL pixels: one stride step around cell (i, j)'s centre (the image area per cell)."""
    cx0, cy0 = (float(v) for v in arrays["cell_center0"])
    sx, sy = (float(v) for v in arrays["cell_step"])
    cx, cy = cx0 + j * sx, cy0 + i * sy
    return np.array([cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2], np.float64)


# -- Grad-CAM -------------------------------------------------------------------------------------------
def heatmap_rgba(cam: np.ndarray, table: np.ndarray, floor: float = 0.15) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 4) uint8 C-contiguous RGBA (not premultiplied): colour from ``table``,
    alpha ``floor + (1 - floor) * cam`` so that cold pixels let the image through."""
    c = np.clip(np.nan_to_num(np.asarray(cam, np.float32)), 0.0, 1.0)
    idx = (c * 255.0 + 0.5).astype(np.uint8)
    out = np.empty((*c.shape, 4), np.uint8)
    out[..., :3] = table[idx]
    out[..., 3] = np.clip((floor + (1.0 - floor) * c) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


# -- layer tree -------------------------------------------------------------------------------------------
def tree_parents(names: list[str]) -> list[int]:
    """Index of each name's parent in ``names`` (its longest dotted prefix present before it), -1 for a root."""
    seen: dict[str, int] = {}
    parents = []
    for k, name in enumerate(names):
        parts = name.split(".")
        parent = -1
        for cut in range(len(parts) - 1, 0, -1):
            p = seen.get(".".join(parts[:cut]))
            if p is not None:
                parent = p
                break
        parents.append(parent)
        seen[name] = k
    return parents


def pair_text(v: np.ndarray | list | None, digits: int = 0) -> str:
    """'4' for (4, 4), '4 × 8' (y × x) otherwise; '—' for NaN / None."""
    if v is None:
        return "—"
    a = np.asarray(v, np.float64).reshape(-1)
    if a.size < 2 or not np.isfinite(a).all():
        return "—"
    fmt = f"{{:.{digits}f}}" if digits else "{:g}"
    return fmt.format(a[0]) if a[0] == a[1] else f"{fmt.format(a[0])} × {fmt.format(a[1])}"


def shape_text(shape: list | tuple | None) -> str:
    return "—" if not shape else " × ".join(str(int(v)) for v in shape)


# -- BatchNorm statistics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BNTable:
    """One run's normalisation statistics: ``values[stat]`` (L, S) float64, NaN where not recorded."""

    run_id: int
    layers: list[str]  # module names, in the order the recorder wrote them (module order)
    steps: np.ndarray  # (S,) float64, ascending
    values: dict[str, np.ndarray]

    @property
    def empty(self) -> bool:
        return not self.layers or not len(self.steps)


def bn_table(run_id: int, rows: list[tuple]) -> BNTable:
    """``BNTable`` from a run's metric rows ``(step, epoch, split, name, value)`` (``Store.metrics``); rows of
    other splits and names other than ``bn/<layer>/<stat>`` are left out."""
    layers: dict[str, int] = {}
    picked = []
    for step, _epoch, split, name, value in rows:
        if split != BN_SPLIT or not name.startswith("bn/"):
            continue
        layer, _, stat = name[3:].rpartition("/")
        if not layer or stat not in BN_STATS:
            continue
        layers.setdefault(layer, len(layers))
        picked.append((layers[layer], stat, float(step), float(value)))
    steps = np.unique(np.asarray([p[2] for p in picked], np.float64))
    col = {s: k for k, s in enumerate(steps.tolist())}
    values = {s: np.full((len(layers), len(steps)), np.nan) for s in BN_STATS}
    for li, stat, step, value in picked:
        values[stat][li, col[step]] = value
    return BNTable(int(run_id), list(layers), steps, values)


def short_names(names: list[str]) -> list[str]:
    """Names without their common dotted prefix ('backbone.stem.1' -> 'stem.1' when all start 'backbone.')."""
    if len(names) < 2:
        return list(names)
    split = [n.split(".") for n in names]
    k = 0
    while all(len(s) > k + 1 for s in split) and len({s[k] for s in split}) == 1:
        k += 1
    return [".".join(s[k:]) for s in split]
