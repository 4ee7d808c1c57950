"""Loading images off the GUI thread: the canvas's current image, big-image tiles and list thumbnails.

``WorkerPool`` is the hop: a few Python worker threads run decodes and only put ``(task, ok, value)`` on a
thread-safe queue; a GUI-thread QTimer (10 ms, running only while work is outstanding) drains it and calls
the submitter's callbacks there. That is the bridge's pattern: no signal is ever emitted from a worker, so
the PySide6 worker-signal trap cannot bite, and a pool deleted with its window leaves nothing dangling.
Pending work is LIFO by default (the tiles or thumbnails on screen *now* first) and capped (the oldest
pending tasks are dropped). Threads start on demand and exit after ``idle_s`` without work.

``ImageLoader`` shows the current image on the canvas and drops stale results; ``ThumbnailCache`` feeds
the image list's icons. Frames: EXIF-oriented image pixels (what ``imageio.read_rgb`` returns).
"""

from __future__ import annotations

import gc
import os
import queue
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from engine.jobs import Cancelled, CancelToken
from engine.project.imageio import ImageReadError, read_rgb
from engine.project.pyramid import BIG_PIXELS, BIG_SIDE, TILE, Pyramid, build_pyramid, is_big, oriented_size, thumbnail
from gui.canvas.tiled_image import TiledImageItem, array_qimage, tile_qimage
from gui.canvas.view import CanvasView


@dataclass
class _Task:
    key: Hashable
    fn: Callable[[], object]
    on_done: Callable[[Hashable, object], None]
    on_error: Callable[[Hashable, BaseException], None] | None
    cancelled: bool = False


_gc_timer: QTimer | None = None


def collect_garbage_on_gui_thread(interval_ms: int = 500) -> None:
    """Run Python's cyclic garbage collector only on the GUI thread (idempotent; needs a QCoreApplication).

    The collector runs in whichever thread happens to allocate. When that is a worker and the garbage holds
    a Qt object that Python owns (a closed top-level widget caught in a reference cycle), Qt deletes it off
    the GUI thread and the process segfaults (seen here: a worker decoding a thumbnail collected a closed
    panel). So automatic collection is switched off and a GUI-thread timer collects instead, generation by
    generation with the usual thresholds (pyqtgraph's ``GarbageCollector`` does the same).
    """
    global _gc_timer
    app = QCoreApplication.instance()
    if _gc_timer is not None or app is None:
        return
    _gc_timer = QTimer(app)
    _gc_timer.setInterval(interval_ms)
    _gc_timer.timeout.connect(_collect_garbage)
    gc.disable()
    _gc_timer.start()


def _collect_garbage() -> None:
    t0, t1, t2 = gc.get_threshold()
    c0, c1, c2 = gc.get_count()
    if c0 > t0:
        gc.collect(2 if c2 > t2 else 1 if c1 > t1 else 0)


class WorkerPool(QObject):
    """``submit(key, fn, on_done, on_error)``: ``fn()`` runs on a worker; callbacks run on the GUI thread.

    Creating one moves cyclic garbage collection to the GUI thread (``collect_garbage_on_gui_thread``).
    """

    def __init__(self, parent: QObject | None = None, max_workers: int = 2, max_pending: int = 256,
                 lifo: bool = True, idle_s: float = 5.0) -> None:
        super().__init__(parent)
        self.max_workers, self.max_pending, self.lifo, self.idle_s = max_workers, max_pending, lifo, idle_s
        self._cond = threading.Condition()
        self._pending: OrderedDict[Hashable, _Task] = OrderedDict()
        self._running: dict[int, _Task] = {}  # id(task) -> task
        self._threads = 0
        self._idle = 0
        self._results: queue.Queue[tuple[_Task, bool, object]] = queue.Queue()
        self._timer = QTimer(self)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._drain)
        collect_garbage_on_gui_thread()

    # -- GUI thread -----------------------------------------------------------------------------
    def submit(self, key: Hashable, fn: Callable[[], object], on_done: Callable[[Hashable, object], None],
               on_error: Callable[[Hashable, BaseException], None] | None = None) -> None:
        """Queue ``fn``; a pending task with the same key is replaced (and becomes the newest)."""
        task = _Task(key, fn, on_done, on_error)
        with self._cond:
            self._pending.pop(key, None)
            self._pending[key] = task
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
            if len(self._pending) > self._idle and self._threads < self.max_workers:
                self._threads += 1
                threading.Thread(target=self._work, name="anchorlab-decode", daemon=True).start()
            self._cond.notify()
        if not self._timer.isActive():
            self._timer.start()

    def cancel_where(self, pred: Callable[[Hashable], bool]) -> None:
        """Drop pending tasks whose key matches; running ones finish but their result is dropped."""
        with self._cond:
            for key in [k for k in self._pending if pred(k)]:
                del self._pending[key]
            for task in self._running.values():
                if pred(task.key):
                    task.cancelled = True

    def is_pending(self, key: Hashable) -> bool:
        """Queued or running (and not cancelled)."""
        with self._cond:
            return key in self._pending or any(t.key == key and not t.cancelled for t in self._running.values())

    def busy(self) -> bool:
        with self._cond:
            return bool(self._pending or self._running) or not self._results.empty()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Process work and deliver results until idle (tests, benchmarks); False on timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self._drain()
            QCoreApplication.processEvents()
            if not self.busy():
                return True
            time.sleep(0.002)
        return False

    def _drain(self) -> None:
        while True:
            try:
                task, ok, value = self._results.get_nowait()
            except queue.Empty:
                break
            if task.cancelled:
                continue
            try:
                if ok:
                    task.on_done(task.key, value)
                elif task.on_error is not None:
                    task.on_error(task.key, value)  # type: ignore[arg-type]
            except RuntimeError as e:  # the receiver's C++ object is gone (window closed)
                if "already deleted" not in str(e):
                    raise
        with self._cond:
            idle = not self._pending and not self._running
        if idle and self._results.empty():
            self._timer.stop()

    # -- worker threads ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                deadline = time.monotonic() + self.idle_s
                while not self._pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._idle -= 1
                        self._threads -= 1
                        return
                    self._cond.wait(left)
                self._idle -= 1
                _, task = self._pending.popitem(last=self.lifo)
                self._running[id(task)] = task
            try:
                value, ok = task.fn(), True
            except Exception as e:  # delivered to on_error on the GUI thread
                value, ok = e, False
            with self._cond:
                self._running.pop(id(task), None)
                self._results.put((task, ok, value))


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
                 big_pixels: int = BIG_PIXELS, tile: int = TILE) -> None:
        super().__init__(canvas)
        self.setObjectName("image_loader")
        self.canvas = canvas
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.big_side, self.big_pixels, self.tile = big_side, big_pixels, tile
        self.decode_pool = WorkerPool(self, max_workers=2, max_pending=1)
        self.tile_pool = WorkerPool(self, max_workers=2, max_pending=512)
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
        self.decode_pool.cancel_where(lambda _k: True)
        self._drop_tiles()
        self.image_id = image_id
        try:
            w, h = oriented_size(path)
        except ImageReadError as e:
            self._fail(image_id, str(e))
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
        self.decode_pool.submit((token, image_id), job, self._on_decoded, self._on_failed)
        return True

    def busy(self) -> bool:
        return self.decode_pool.busy() or self.tile_pool.busy()

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the current image and its requested tiles are shown (tests, benchmarks)."""
        return self.decode_pool.wait(timeout_s) and self.tile_pool.wait(timeout_s)

    def _current(self, key: Hashable) -> bool:
        token = key[0]  # type: ignore[index]
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
            self.tiled = TiledImageItem(pyr, self.tile_pool, top)
            self.canvas.set_image_item(self.tiled, pyr.width, pyr.height,  # type: ignore[arg-type]
                                       fit=(pyr.width, pyr.height) != self._size)
        self.image_ready.emit(key[1])  # type: ignore[index]

    def _on_failed(self, key: Hashable, error: BaseException) -> None:
        if self._current(key) and not isinstance(error, Cancelled):
            self._placeholder = None
            self._fail(key[1], str(error))  # type: ignore[index]

    def _fail(self, image_id: int, message: str) -> None:
        self._placeholder = None
        self.canvas.show_message(f"Cannot show this image:\n{message}")
        self.image_failed.emit(image_id, message)

    def _drop_tiles(self) -> None:
        if self.tiled is not None:
            self.tiled.release()
            self.tiled = None


class ThumbnailCache(QObject):
    """Small icons of images, decoded on workers, kept in an LRU; ``on_ready(image_id)`` when one arrives.

    ``icon`` never blocks: it returns the cached icon or None (and queues the decode). Requests are LIFO
    and capped, so after a fast scroll only the rows now on screen are decoded. ``on_ready`` is a plain
    callback rather than a signal: with PySide6 6.12.0 every Python-side ``emit`` drops a reference to
    ``True`` (the process aborts after some 10^4 emits), and thumbnails arrive by the thousand.
    """

    def __init__(self, parent: QObject | None = None, size: int = 48, capacity: int = 2000,
                 cache_dir: str | Path | None = None) -> None:
        super().__init__(parent)
        self.on_ready: Callable[[int], None] | None = None
        self.size, self.capacity = size, capacity
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.pool = WorkerPool(self, max_workers=2, max_pending=128)
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
        if not self.pool.is_pending(image_id):
            size, cache = self.size, self.cache_dir
            self.pool.submit(image_id, lambda: self._make(path, size, cache), self._on_done, self._on_error)
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
        self._store(int(key), icon)  # type: ignore[call-overload]

    def _on_error(self, key: Hashable, _error: BaseException) -> None:
        self._store(int(key), self.broken)  # type: ignore[call-overload]

    def clear(self) -> None:
        self.pool.cancel_where(lambda _k: True)
        self._icons.clear()
