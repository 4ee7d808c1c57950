"""Small icons of images for lists, decoded on the shared worker pool (priority ``THUMBNAILS``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap

from engine.project.pyramid import thumbnail
from gui.canvas.image_loader import default_cache_dir
from gui.canvas.tiled_image import array_qimage
from gui.workers import THUMBNAILS, WorkerPool, shared_pool


class ThumbnailCache(QObject):
    """Small icons of images, decoded on workers, kept in an LRU; ``on_ready(image_id)`` when one arrives.

    ``icon`` never blocks: it returns the cached icon or None (and queues the decode). Requests are LIFO
    and capped, so after a fast scroll only the rows now on screen are decoded. ``on_ready`` is a plain
    callback rather than a signal: with PySide6 6.12.0 every Python-side ``emit`` drops a reference to
    ``True`` (the process aborts after some 10^4 emits), and thumbnails arrive by the thousand.
    """

    def __init__(self, parent: QObject | None = None, size: int = 48, capacity: int = 2000,
                 cache_dir: str | Path | None = None, pool: WorkerPool | None = None) -> None:
        super().__init__(parent)
        self.on_ready: Callable[[int], None] | None = None
        self.size, self.capacity = size, capacity
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.pool = pool or shared_pool()
        self._icons: OrderedDict[int, QIcon] = OrderedDict()
        self.blank = self._plain_icon(QColor(0, 0, 0, 0))
        self.broken = self._plain_icon(QColor(120, 60, 60))
        self.too_big = self._plain_icon(QColor(70, 80, 110))

    def _plain_icon(self, color: QColor) -> QIcon:
        pm = QPixmap(self.size, self.size)
        pm.fill(color)
        return QIcon(pm)

    def icon(self, image_id: int, path: Path) -> QIcon | None:
        ic = self._icons.get(image_id)
        if ic is not None:
            self._icons.move_to_end(image_id)
            return ic
        key = ("thumb", id(self), image_id)
        if not self.pool.is_pending(key):
            size, cache = self.size, self.cache_dir
            self.pool.submit(key, lambda: self._make(path, size, cache), self._on_done, self._on_error,
                             priority=THUMBNAILS)
        return None

    @staticmethod
    def _make(path: Path, size: int, cache_dir: Path) -> QImage | None:
        rgb = thumbnail(path, size, cache_dir)
        return None if rgb is None else array_qimage(rgb)

    def _store(self, image_id: int, icon: QIcon) -> None:
        self._icons[image_id] = icon
        while len(self._icons) > self.capacity:
            self._icons.popitem(last=False)
        if self.on_ready is not None:
            self.on_ready(image_id)

    def _on_done(self, key: Hashable, img: object) -> None:
        icon = QIcon(QPixmap.fromImage(img)) if isinstance(img, QImage) else self.too_big
        self._store(int(key[2]), icon)  # type: ignore[index]

    def _on_error(self, key: Hashable, _error: BaseException) -> None:
        self._store(int(key[2]), self.broken)  # type: ignore[index]

    def clear(self) -> None:
        self.pool.cancel_where(self._is_mine)
        self._icons.clear()

    def _is_mine(self, key: Hashable) -> bool:
        return isinstance(key, tuple) and key[:2] == ("thumb", id(self))

    def busy(self) -> bool:
        return self.pool.busy(self._is_mine)

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Decode every requested icon and deliver it (tests, benchmarks); False on timeout."""
        return self.pool.wait(timeout_s, self._is_mine)
