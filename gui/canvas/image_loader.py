"""Showing images on the canvas without decoding on the GUI thread: the current image and big-image tiles.

Decodes run on the shared ``gui.workers`` pool (priority ``CURRENT_IMAGE``; tiles ``VISIBLE_TILES``),
whose callbacks arrive on the GUI thread. ``ImageLoader`` drops stale results. Frames: EXIF-oriented
image pixels (what ``imageio.read_rgb`` returns).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Hashable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from engine.jobs import Cancelled, CancelToken
from engine.project.imageio import ImageReadError, read_rgb
from engine.project.pyramid import BIG_PIXELS, BIG_SIDE, TILE, Pyramid, build_pyramid, is_big, oriented_size
from gui.canvas.tiled_image import TiledImageItem, array_qimage, tile_qimage
from gui.canvas.view import CanvasView
from gui.workers import CURRENT_IMAGE, WorkerPool, shared_pool


def default_cache_dir() -> Path:
    """Where tile pyramids are cached: ``$ANCHORLAB_CACHE_DIR/pyramids`` or the user's cache folder."""
    env = os.environ.get("ANCHORLAB_CACHE_DIR")
    if env:
        return Path(env) / "pyramids"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation)
    return Path(base or tempfile.gettempdir()) / "anchorlab" / "pyramids"


class _Placeholder(QGraphicsRectItem):
    """Stands in for the image (right size, so fit and coordinates are right) while it decodes."""

    def __init__(self, w: int, h: int, text: str) -> None:
        super().__init__(0, 0, w, h)
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setBrush(QBrush(QColor(52, 52, 56)))
        label = QGraphicsSimpleTextItem(text, self)
        label.setBrush(QColor(200, 200, 205))
        label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        b = label.boundingRect()
        label.setTransform(QTransform.fromTranslate(-b.width() / 2, -b.height() / 2))
        label.setPos(w / 2, h / 2)


def _decode_small(path: Path) -> QImage:
    """Decode and convert on the worker: the GUI thread only wraps the RGB32 QImage in a pixmap
    (12 Mpx: ~15 ms instead of ~150 ms for ``CanvasView.set_image`` converting an RGB array)."""
    return array_qimage(read_rgb(path))


def _prepare_big(path: Path, cache_dir: Path | None, tile: int, cancel: CancelToken) -> tuple[Pyramid, QImage]:
    pyr = build_pyramid(path, cache_dir, tile, cancel)
    return pyr, tile_qimage(pyr, pyr.num_levels - 1, 0, 0)


class ImageLoader(QObject):
    """Shows images on a ``CanvasView`` without decoding on the GUI thread.

    ``load(image_id, path)`` reads the header at once (size, EXIF orientation; a broken header shows its
    message at once), puts a placeholder of the right size on the canvas, and decodes on a worker.
    Small images then go to ``canvas.set_image``; big ones (> ``big_side`` px a side or > ``big_pixels``)
    get a tile pyramid and a ``TiledImageItem``. A result for an image that is no longer the current
    one (the user pressed D again, or the canvas was cleared) is dropped.
    """

    image_ready = Signal(int)  # image id: its pixels are on the canvas
    image_failed = Signal(int, str)  # image id, message shown on the canvas

    def __init__(self, canvas: CanvasView, cache_dir: str | Path | None = None, big_side: int = BIG_SIDE,
                 big_pixels: int = BIG_PIXELS, tile: int = TILE, pool: WorkerPool | None = None) -> None:
        super().__init__(canvas)
        self.setObjectName("image_loader")
        self.canvas = canvas
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.big_side, self.big_pixels, self.tile = big_side, big_pixels, tile
        self.pool = pool or shared_pool()
        self.image_id: int | None = None
        self.tiled: TiledImageItem | None = None
        self._token = 0
        self._cancel = CancelToken()
        self._placeholder: _Placeholder | None = None
        self._size = (0, 0)

    @staticmethod
    def of(canvas: CanvasView) -> ImageLoader:
        """The canvas's loader, created on first use."""
        loader = getattr(canvas, "_image_loader", None)
        if loader is None:
            loader = ImageLoader(canvas)
            canvas._image_loader = loader  # type: ignore[attr-defined]
        return loader

    def load(self, image_id: int, path: str | Path) -> bool:
        """Start showing an image; False (message already on the canvas) when its header is unreadable."""
        self._token += 1
        self._cancel.cancel()
        self._cancel = CancelToken()
        token, path = self._token, Path(path)
        self.pool.cancel_where(self._is_decode)
        self._drop_tiles()
        self.image_id = image_id
        try:
            w, h = oriented_size(path)
        except Exception as e:  # ImageReadError, or anything a hostile header raises: the canvas says so
            self._fail(image_id, str(e) if isinstance(e, ImageReadError) else f"{path}: {e}")
            return False
        self._size = (w, h)
        big = is_big(w, h, self.big_side, self.big_pixels)
        text = f"Preparing {w} × {h} image…" if big else "Loading…"
        self._placeholder = _Placeholder(w, h, text)
        self.canvas.set_image_item(self._placeholder, w, h, fit=True)  # type: ignore[arg-type]
        if big:
            job = partial(_prepare_big, path, self.cache_dir, self.tile, self._cancel)
        else:
            job = partial(_decode_small, path)
        self.pool.submit(("decode", id(self), token, image_id), job, self._on_decoded, self._on_failed,
                         priority=CURRENT_IMAGE)
        return True

    def _is_decode(self, key: Hashable) -> bool:
        return isinstance(key, tuple) and key[:2] == ("decode", id(self))

    def _is_mine(self, key: Hashable) -> bool:
        tiled = self.tiled
        return self._is_decode(key) or (tiled is not None and tiled.owns(key))

    def busy(self) -> bool:
        return self.pool.busy(self._is_mine)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the current image and its requested tiles are shown (tests, benchmarks)."""
        return self.pool.wait(timeout_s, self._is_mine)

    def _current(self, key: Hashable) -> bool:
        token = key[2]  # type: ignore[index]
        ph = self._placeholder
        return token == self._token and ph is not None and ph.scene() is self.canvas.scene()

    def _on_decoded(self, key: Hashable, result: object) -> None:
        if not self._current(key):
            return
        self._placeholder = None
        if isinstance(result, QImage):
            w, h = result.width(), result.height()
            item = QGraphicsPixmapItem(QPixmap.fromImage(result))
            item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # as CanvasView.set_image
            self.canvas.set_image_item(item, w, h, fit=(w, h) != self._size)
        else:
            pyr, top = result  # type: ignore[misc]
            self.tiled = TiledImageItem(pyr, self.pool, top)
            self.canvas.set_image_item(self.tiled, pyr.width, pyr.height,  # type: ignore[arg-type]
                                       fit=(pyr.width, pyr.height) != self._size)
        self.image_ready.emit(key[3])  # type: ignore[index]

    def _on_failed(self, key: Hashable, error: BaseException) -> None:
        if self._current(key) and not isinstance(error, Cancelled):
            self._placeholder = None
            self._fail(key[3], str(error))  # type: ignore[index]

    def _fail(self, image_id: int, message: str) -> None:
        self._placeholder = None
        self.canvas.show_message(f"Cannot show this image:\n{message}")
        self.image_failed.emit(image_id, message)

    def _drop_tiles(self) -> None:
        if self.tiled is not None:
            self.tiled.release()
            self.tiled = None
