"""A QGraphicsItem that draws a huge image from a tile pyramid, never from one giant pixmap.

Scene units are image pixels (the item covers (0, 0)-(width, height) of the EXIF-oriented image). Each
paint picks the pyramid level whose pixels are at least as fine as the screen's
(``QStyleOptionGraphicsItem.levelOfDetailFromTransform``), draws the cached 512 px tiles of that level that
intersect the exposed rect, and for each tile not cached yet draws the best coarser tile it has (the
coarsest level, one tile, is always there) and asks the worker pool for the real one; tiles arrive on
the GUI thread and repaint only their own rect. Tiles are cut from the memory-mapped levels and turned
into QImages on the workers; the GUI thread only turns them into QPixmaps and draws. An LRU bounds the
tile memory. Every QImage/QPixmap here is at most one tile, so Qt's 256 MB image limit and 32,767 px
side limit are never approached, whatever the image size.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.project.pyramid import Pyramid
from gui.workers import VISIBLE_TILES, WorkerPool

_UIDS = itertools.count(1)
_MISSING = QColor(58, 58, 62)


def array_qimage(a: np.ndarray) -> QImage:
    """(H, W) uint8 grey or (H, W, 3) uint8 RGB -> an RGB32 QImage that owns its pixels (any thread)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.convertToFormat(QImage.Format.Format_RGB32)  # a deep copy in the fastest format to draw


def tile_qimage(pyramid: Pyramid, level: int, tx: int, ty: int) -> QImage:
    """One tile as a QImage (runs on a worker: reads the memory-mapped level)."""
    return array_qimage(pyramid.tile_array(level, tx, ty))


class TiledImageItem(QGraphicsItem):
    """Draws ``pyramid`` at (0, 0) in image pixels; tiles are loaded through ``pool``."""

    def __init__(self, pyramid: Pyramid, pool: WorkerPool, top: QImage | None = None,
                 cache_bytes: int = 256 << 20) -> None:
        super().__init__()
        self.pyramid = pyramid
        self.pool = pool
        self.cache_bytes = cache_bytes
        self.uid = next(_UIDS)
        self._bounds = QRectF(0, 0, pyramid.width, pyramid.height)
        self._cache: OrderedDict[tuple[int, int, int], QPixmap] = OrderedDict()
        self._bytes = 0
        top_level = pyramid.num_levels - 1
        self._top_key = (top_level, 0, 0)
        self._top = QPixmap.fromImage(top if top is not None else tile_qimage(pyramid, top_level, 0, 0))
        self.last_level = -1  # level used by the latest paint (tests, status)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    # -- geometry -----------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def tile_rect(self, level: int, tx: int, ty: int) -> QRectF:
        """Scene (image pixel) rect covered by a tile."""
        x0, y0, x1, y1 = self.pyramid.tile_bounds(level, tx, ty)
        sx, sy = self.pyramid.scale(level)
        return QRectF(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)

    def _tile_range(self, level: int, rect: QRectF) -> tuple[range, range]:
        sx, sy = self.pyramid.scale(level)
        nx, ny = self.pyramid.grid(level)
        t = self.pyramid.tile
        x0 = max(0, int(rect.left() / sx) // t)
        y0 = max(0, int(rect.top() / sy) // t)
        x1 = min(nx, math.ceil(rect.right() / sx / t))
        y1 = min(ny, math.ceil(rect.bottom() / sy / t))
        return range(x0, x1), range(y0, y1)

    # -- tiles --------------------------------------------------------------------------------
    def cached(self, level: int, tx: int, ty: int) -> QPixmap | None:
        if (level, tx, ty) == self._top_key:
            return self._top
        pm = self._cache.get((level, tx, ty))
        if pm is not None:
            self._cache.move_to_end((level, tx, ty))
        return pm

    def _request(self, level: int, tx: int, ty: int) -> None:
        key = ("tile", self.uid, level, tx, ty)
        if not self.pool.is_pending(key):
            self.pool.submit(key, lambda: tile_qimage(self.pyramid, level, tx, ty), self._on_tile,
                             priority=VISIBLE_TILES)

    def _on_tile(self, key: Hashable, img: object) -> None:
        _, _, level, tx, ty = key  # type: ignore[misc]
        if not isinstance(img, QImage) or (level, tx, ty) in self._cache:
            return
        pm = QPixmap.fromImage(img)
        self._cache[(level, tx, ty)] = pm
        self._bytes += pm.width() * pm.height() * 4
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.width() * old.height() * 4
        if self.scene() is not None:
            self.update(self.tile_rect(level, tx, ty))

    def release(self) -> None:
        """Forget pending tile requests and cached tiles (the item is leaving the canvas)."""
        self.pool.cancel_where(self.owns)
        self._cache.clear()
        self._bytes = 0

    def owns(self, key: Hashable) -> bool:
        """A pool key of one of this item's tile requests."""
        return isinstance(key, tuple) and len(key) == 5 and key[:2] == ("tile", self.uid)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        level = self.pyramid.level_for(lod)
        self.last_level = level
        rect = option.exposedRect.intersected(self._bounds)
        if rect.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 1.0)
        xs, ys = self._tile_range(level, rect)
        missing: list[tuple[float, int, int]] = []
        cx, cy = rect.center().x(), rect.center().y()
        for ty in ys:
            for tx in xs:
                target = self.tile_rect(level, tx, ty)
                pm = self.cached(level, tx, ty)
                if pm is not None:
                    painter.drawPixmap(target, pm, QRectF(pm.rect()))
                    continue
                self._draw_fallback(painter, level, target)
                c = target.center()
                missing.append(((c.x() - cx) ** 2 + (c.y() - cy) ** 2, tx, ty))
        for _, tx, ty in sorted(missing, reverse=True):  # nearest to the centre submitted last = served first
            self._request(level, tx, ty)

    def _draw_fallback(self, painter: QPainter, level: int, target: QRectF) -> None:
        """Draw ``target`` from the finest coarser level that has the covering tile cached."""
        t = self.pyramid.tile
        for j in range(level + 1, self.pyramid.num_levels):
            sx, sy = self.pyramid.scale(j)
            lx, ly = target.left() / sx, target.top() / sy
            ptx, pty = int(lx // t), int(ly // t)
            pm = self.cached(j, ptx, pty)
            if pm is None:
                continue
            src = QRectF(lx - ptx * t, ly - pty * t, target.width() / sx, target.height() / sy)
            painter.drawPixmap(target, pm, src.intersected(QRectF(pm.rect())))
            return
        painter.fillRect(target, _MISSING)
