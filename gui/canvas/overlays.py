"""Overlay layers: ONE QGraphicsItem per layer, fed by numpy arrays, in image pixel coordinates.

``BoxLayer`` draws (N, 4) xyxy boxes, optionally split into colour groups (e.g. anchor label
fg / bg / ignored). Each paint culls the boxes to the exposed part of the device, then:

- few visible boxes (<= ``vector_limit``): batched ``QPainter.drawRects`` per colour group (cosmetic
  pens, crisp at any zoom, text labels when <= ``label_limit``);
- many (zoomed out on a 200k-anchor layer): level of detail — dense colour groups are rasterised with
  numpy (difference arrays + cumulative sums give each pixel's edge count; alpha ``1 - (1 - a) ** count``
  is what drawing every box with alpha ``a`` gives), at most ``raster_budget`` boxes (every k-th, alpha
  compensated) and at half resolution where the boxes are a haze (> ``lod_density`` per screen pixel);
  sparse groups (<= ``on_top_limit`` boxes, e.g. the foreground anchors) are drawn over them as solid
  vectors. The image is cached until the data, the view transform or the exposed region change, so
  repaints caused by other layers cost one ``drawImage``. Cost is O(boxes + screen pixels), whatever
  the box sizes. ``bench/bench_anchor_layer.py`` measures it.

``PointLayer`` draws (N, 2) points as round dots of a fixed screen size. No item per box, ever.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from gui.canvas.view import Z_OVERLAYS


def _pen(color: QColor, width: float, dashed: bool = False) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def visible_rect(painter: QPainter, option: QStyleOptionGraphicsItem, bounds: QRectF) -> QRectF:
    """The part of the item (item coordinates) that can reach the device: the exposed rectangle cut
    to the painter's device (and clip), so zoomed-in views only touch the boxes on screen."""
    r = option.exposedRect if not option.exposedRect.isEmpty() else bounds
    if painter.hasClipping():
        r = r.intersected(painter.clipBoundingRect())  # logical = item coordinates
    dev = painter.device()
    inv, ok = painter.worldTransform().inverted()
    if ok and dev is not None:
        r = r.intersected(inv.mapRect(QRectF(0, 0, dev.width(), dev.height())))
    return r


class OverlayLayer(QGraphicsItem):
    """Base: a named layer with a colour, drawn above annotations; subclasses hold the arrays."""

    def __init__(self, name: str, color: QColor | str, z: float = Z_OVERLAYS) -> None:
        super().__init__()
        self.name = name
        self._color = QColor(color)
        self._bounds = QRectF()
        self.last_paint: dict = {"mode": "none", "drawn": 0}
        self.setZValue(z)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor | str) -> None:
        self._color = QColor(color)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def _set_bounds(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.prepareGeometryChange()
        margin = 2.0 + 0.01 * max(x2 - x1, y2 - y1, 0.0)
        self._bounds = QRectF(x1 - margin, y1 - margin, x2 - x1 + 2 * margin, y2 - y1 + 2 * margin)


class BoxLayer(OverlayLayer):
    """(N, 4) float xyxy boxes in image pixels; ``groups`` (N,) int indexes ``palette`` (colour per group)."""

    def __init__(self, name: str, color: QColor | str, z: float = Z_OVERLAYS, width: float = 1.0,
                 dashed: bool = False, alpha: int = 255, vector_limit: int = 3000,
                 raster_budget: int = 60_000, on_top_limit: int = 500, lod_density: float = 0.1) -> None:
        super().__init__(name, color, z)
        self.width, self.dashed, self.alpha, self.vector_limit = width, dashed, alpha, vector_limit
        self.raster_budget, self.on_top_limit, self.lod_density = raster_budget, on_top_limit, lod_density
        self.label_limit = 60  # text labels only when at most this many boxes are in view
        self._version = 0
        self._cache: tuple | None = None  # (key, QImage, its numpy buffer)
        self._boxes = np.zeros((0, 4), np.float64)
        self._groups: np.ndarray | None = None
        self._palette: list[QColor] = []
        self._labels: list[str] | None = None

    def set_boxes(self, boxes: np.ndarray, groups: np.ndarray | None = None,
                  palette: Sequence[QColor | str] | None = None, labels: Sequence[str] | None = None) -> None:
        """Replace the data. ``labels`` (N,) strings are drawn next to boxes when at most ``label_limit``
        are in view."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        if groups is not None and len(groups) != len(b):
            raise ValueError(f"{len(groups)} groups for {len(b)} boxes")
        self._boxes = b
        self._groups = None if groups is None else np.asarray(groups, np.int64)
        if palette is not None:
            self._palette = [QColor(c) for c in palette]
        self._labels = None if labels is None else list(labels)
        self._changed()
        if len(b):
            self._set_bounds(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        else:
            self._set_bounds(0, 0, 0, 0)
        self.update()

    def set_palette(self, palette: Sequence[QColor | str]) -> None:
        self._palette = [QColor(c) for c in palette]
        self._changed()
        self.update()

    def set_color(self, color: QColor | str) -> None:
        self._changed()
        super().set_color(color)

    def _changed(self) -> None:
        self._version += 1
        self._cache = None

    def boxes(self) -> np.ndarray:
        """The layer's (N, 4) float64 boxes (a view: do not modify)."""
        return self._boxes

    def groups(self) -> np.ndarray | None:
        return self._groups

    def _group_colors(self) -> list[QColor]:
        colors = self._palette or [self._color]
        out = []
        for c in colors:
            c = QColor(c)
            c.setAlpha(self.alpha)
            out.append(c)
        return out

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        b = self._boxes
        if not len(b):
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        t = painter.worldTransform()
        r = visible_rect(painter, option, self._bounds)
        vis = (b[:, 2] >= r.left()) & (b[:, 0] <= r.right()) & (b[:, 3] >= r.top()) & (b[:, 1] <= r.bottom())
        idx = np.flatnonzero(vis)
        axis_aligned = t.type().value <= QTransform.TransformationType.TxScale.value and t.m11() > 0 and t.m22() > 0
        if len(idx) <= self.vector_limit or not axis_aligned:
            self._paint_vector(painter, idx[: max(self.vector_limit, 20_000)])
        else:
            self._paint_raster(painter, r, idx, t)

    def _paint_vector(self, painter: QPainter, idx: np.ndarray, opaque: bool = False) -> None:
        colors = self._group_colors()
        if opaque:  # sparse groups over a rasterised dense one: solid, so they stand out (and draw fast)
            colors = [QColor(c.red(), c.green(), c.blue()) for c in colors]
        groups = self._groups[idx] if self._groups is not None else np.zeros(len(idx), np.int64)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        sel = self._boxes[idx]
        for g in np.unique(groups):
            rows = sel[groups == g]
            painter.setPen(_pen(colors[int(g) % len(colors)], self.width, self.dashed))
            painter.drawRects([QRectF(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in rows.tolist()])
        if self._labels is not None and len(idx) <= self.label_limit:
            painter.setPen(_pen(QColor(255, 255, 255), 1))
            font = painter.font()
            font.setPointSizeF(8)
            painter.setFont(font)
            t = painter.worldTransform()
            painter.save()
            painter.resetTransform()
            for i in idx.tolist():
                p = t.map(QPointF(self._boxes[i, 0], self._boxes[i, 1]))
                painter.drawText(p + QPointF(2, -3), self._labels[i])
            painter.restore()
        self.last_paint = {"mode": "vector", "drawn": int(len(idx))}

    def _paint_raster(self, painter: QPainter, exposed: QRectF, idx: np.ndarray, t: QTransform) -> None:
        """Level of detail: dense colour groups are rasterised with numpy into one image that is cached
        until the data, the view transform or the exposed region change. At most ``raster_budget``
        boxes are rasterised (every step-th, alpha compensated) and, where boxes are denser than
        ``lod_density`` per screen pixel (a haze of outlines), at half resolution. Sparse groups (e.g.
        the few foreground anchors) are drawn over them as solid vectors, crisp at any zoom."""
        groups = self._groups[idx] if self._groups is not None else np.zeros(len(idx), np.int64)
        per_group = np.bincount(groups)
        sparse = per_group <= self.on_top_limit
        if sparse.all():  # nothing dense: rasterise the biggest group anyway
            sparse[np.argmax(per_group)] = False
        on_top = sparse[groups]
        dense_idx = idx[~on_top]
        dev = painter.device()
        dpr = float(dev.devicePixelRatioF()) if hasattr(dev, "devicePixelRatioF") else 1.0
        region = t.mapRect(exposed).toAlignedRect().intersected(QRect(0, 0, dev.width(), dev.height()))
        step = max(1, -(-len(dense_idx) // max(1, self.raster_budget)))
        res = 0.5 if len(dense_idx) > self.lod_density * max(1, region.width() * region.height()) else 1.0
        cached = True
        if not region.isEmpty():
            key = (self._version, t.m11(), t.m22(), t.dx(), t.dy(), region.getRect(), dpr, step, res, len(idx))
            if self._cache is None or self._cache[0] != key:
                cached = False
                img, buf = self._rasterise(dense_idx[::step], groups[~on_top][::step], step, t, region, dpr * res)
                if on_top.any() and res == 1.0:  # bake the crisp vectors into the cached image
                    p = QPainter(img)
                    p.setTransform(t * QTransform.fromTranslate(-region.x(), -region.y()))
                    self._paint_vector(p, idx[on_top], opaque=True)
                    p.end()
                self._cache = (key, img, buf)
            img = self._cache[1]
            painter.save()
            painter.resetTransform()
            painter.drawImage(QRectF(region), img, QRectF(0, 0, img.width(), img.height()))
            painter.restore()
            if on_top.any() and res != 1.0:
                self._paint_vector(painter, idx[on_top], opaque=True)
        self.last_paint = {"mode": "raster", "drawn": int(len(idx)), "rasterised": int(len(dense_idx)),
                           "decimation": step, "resolution": res, "cached": cached}

    def _rasterise(self, idx: np.ndarray, groups: np.ndarray, step: int, t: QTransform, region: QRect,
                   scale: float) -> tuple[QImage, np.ndarray]:
        """Outlines of boxes ``idx`` as an image of ``region`` at ``scale`` image pixels per logical device
        pixel (and its numpy buffer). With ``step`` > 1 only every step-th box is given, so alpha is raised
        to 1 - (1 - a) ** step: the density of ink on screen stays the same."""
        w, h = int(np.ceil(region.width() * scale)), int(np.ceil(region.height() * scale))
        b = self._boxes[idx]
        dev_boxes = np.empty_like(b)
        dev_boxes[:, 0::2] = (b[:, 0::2] * t.m11() + t.dx() - region.x()) * scale
        dev_boxes[:, 1::2] = (b[:, 1::2] * t.m22() + t.dy() - region.y()) * scale
        colors = [(c.redF(), c.greenF(), c.blueF(), 1.0 - (1.0 - c.alphaF()) ** step) for c in self._group_colors()]
        bgra = raster_outlines(dev_boxes, groups, colors, w, h)
        img = QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(scale)  # so vectors baked into it use logical device coordinates
        return img, bgra


class PointLayer(OverlayLayer):
    """(N, 2) float (x, y) points in image pixels, drawn as dots of ``size`` screen pixels."""

    def __init__(self, name: str, color: QColor | str, z: float = Z_OVERLAYS, size: float = 4.0) -> None:
        super().__init__(name, color, z)
        self.size = size
        self._points = np.zeros((0, 2), np.float64)

    def set_points(self, points: np.ndarray) -> None:
        p = np.asarray(points, np.float64).reshape(-1, 2)
        self._points = p
        if len(p):
            self._set_bounds(p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())
        else:
            self._set_bounds(0, 0, 0, 0)
        self.update()

    def points(self) -> np.ndarray:
        return self._points

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        p = self._points
        if not len(p):
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        pen = _pen(self._color, self.size)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawPoints([QPointF(x, y) for x, y in p.tolist()])
        self.last_paint = {"mode": "vector", "drawn": int(len(p))}


def raster_outlines(boxes: np.ndarray, groups: np.ndarray, colors: Sequence[tuple[float, float, float, float]],
                    width: int, height: int) -> np.ndarray:
    """Rasterise 1-px box outlines. ``boxes`` (N, 4) xyxy in device pixels, ``groups`` (N,) into
    ``colors`` (r, g, b, a) floats in [0, 1]; later groups are composited over earlier ones.
    Returns (height, width, 4) uint8 premultiplied BGRA (QImage.Format_ARGB32_Premultiplied)."""
    if width <= 0 or height <= 0 or not len(boxes):
        return np.zeros((max(height, 0), max(width, 0), 4), np.uint8)
    sizes = np.bincount(groups)
    present = np.flatnonzero(sizes)
    present = present[np.argsort(-sizes[present], kind="stable")]  # densest first: sparser groups on top
    remap = np.zeros(len(sizes), np.int64)
    remap[present] = np.arange(len(present))
    counts = _edge_counts(np.floor(boxes).astype(np.int64), remap[groups], len(present), width, height)
    luts = [_alpha_lut(colors[int(g) % len(colors)]) for g in present]
    lut32 = luts[0].view(np.uint32).reshape(256)  # one 4-byte pixel per count: a flat gather
    out = np.take(lut32, np.minimum(counts[0], 255, out=counts[0]).astype(np.uint8)).view(np.uint8)
    out = out.reshape(height, width, 4)
    flat = out.reshape(-1, 4)
    for count, lut in zip(counts[1:], luts[1:]):  # premultiplied "over" in integers, where the group has ink
        count = count.reshape(-1)
        nz = np.flatnonzero(count)
        src = lut[np.minimum(count[nz], 255).astype(np.uint8)].astype(np.uint16)
        dst = flat[nz].astype(np.uint16)
        flat[nz] = (src + (dst * (255 - src[:, 3:4]) + 127) // 255).astype(np.uint8)
    return out


def _alpha_lut(color: tuple[float, float, float, float]) -> np.ndarray:
    """(256, 4) uint8 premultiplied BGRA of ``n`` overlapping strokes of ``color``: alpha 1 - (1 - a) ** n."""
    r, g, b, a = color
    alpha = 1.0 - (1.0 - a) ** np.arange(256, dtype=np.float64)
    lut = np.stack([b * alpha, g * alpha, r * alpha, alpha], 1)
    return np.clip(lut * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _edge_counts(b: np.ndarray, groups: np.ndarray, n_groups: int, w: int, h: int) -> np.ndarray:
    """(G, h, w) float64 (integer valued): how many box edges of each group cover each pixel.
    ``b``: (N, 4) integer xyxy device pixels; ``groups`` (N,) in [0, G).

    Difference arrays: +1 where an edge starts, -1 one past its end (one weighted bincount for all
    groups and both directions; off-screen edges go to a dummy bin), then a cumulative sum along the
    edge: along x for horizontal edges (rows y1, y2; columns x1..x2), along y for vertical edges
    (columns x1, x2; rows strictly between), the latter row by row (contiguous, much faster than
    numpy's strided axis-0 cumsum).
    """
    w1 = w + 1
    plane = (h + 1) * w1
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    base_h = groups * (2 * plane)
    base_v = base_h + plane
    dummy = n_groups * 2 * plane
    starts, ends = [], []
    cs, ce = np.clip(x1, 0, w), np.clip(x2 + 1, 0, w)
    for row in (y1, y2):
        ok = (row >= 0) & (row < h) & (ce > cs)
        off = base_h + row * w1
        starts.append(np.where(ok, off + cs, dummy))
        ends.append(np.where(ok, off + ce, dummy))
    rs, re = np.clip(y1 + 1, 0, h), np.clip(y2, 0, h)
    for col in (x1, x2):
        ok = (col >= 0) & (col < w) & (re > rs)
        off = base_v + col
        starts.append(np.where(ok, off + rs * w1, dummy))
        ends.append(np.where(ok, off + re * w1, dummy))
    n = 4 * len(b)
    weights = np.ones(2 * n)
    weights[n:] = -1.0
    diff = np.bincount(np.concatenate(starts + ends), weights=weights, minlength=dummy + 1)[:dummy]
    diff = diff.reshape(n_groups, 2, h + 1, w1)
    out = np.cumsum(diff[:, 0, :h, :], axis=2)[:, :, :w]
    vertical = diff[:, 1]
    for y in range(1, h):
        vertical[:, y] += vertical[:, y - 1]
    out += vertical[:, :h, :w]
    return out
