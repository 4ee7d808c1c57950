"""Big images on the canvas: a 20,000 x 20,000 PNG through the tiled item, EXIF orientation on both paths,
unreadable files, stale results dropped, and the worker pool that decodes off the GUI thread."""

from __future__ import annotations

import math
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGraphicsPixmapItem

from engine.jobs import CancelToken, Collector
from engine.project.scan import add_folder_job
from engine.project.store import Store
from gui.canvas.image_loader import ImageLoader
from gui.canvas.tiled_image import TiledImageItem
from gui.main_window import MainWindow
from gui.workers import CURRENT_IMAGE, OTHER, THUMBNAILS, VISIBLE_TILES, WorkerPool

BIG = 20_000
PATCH = (12_000, 13_000, 300, 200)  # x, y, w, h of a dark patch in the big grey image
BG, INK = 200, 30


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_grey_png_in_strips(path: Path, w: int, h: int, rows: object, strip: int = 512) -> None:
    """A grey 8-bit PNG written strip by strip (never the whole image in memory); ``rows(y0, y1)`` -> (n, w)."""
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        z = zlib.compressobj(1)
        for y0 in range(0, h, strip):
            block = rows(y0, min(h, y0 + strip))  # type: ignore[operator]
            raw = np.zeros((block.shape[0], w + 1), np.uint8)  # filter byte 0 per row
            raw[:, 1:] = block
            if data := z.compress(raw.tobytes()):
                f.write(_chunk(b"IDAT", data))
        f.write(_chunk(b"IDAT", z.flush()) + _chunk(b"IEND", b""))


def _big_rows(y0: int, y1: int) -> np.ndarray:
    block = np.full((y1 - y0, BIG), BG, np.uint8)
    x, y, w, h = PATCH
    lo, hi = max(y0, y), min(y1, y + h)
    if lo < hi:
        block[lo - y0:hi - y0, x:x + w] = INK
    return block


def _window(qtbot, project: Path) -> MainWindow:
    w = MainWindow(project)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def _render(window: MainWindow) -> QImage:
    return window.canvas.viewport().grab().toImage()


def _pixel(window: MainWindow, img: QImage, x: float, y: float) -> tuple[int, int, int]:
    p = window.canvas.viewportTransform().map(QPointF(x, y))  # float: no rounding to the neighbour pixel
    c = img.pixelColor(math.floor(p.x()), math.floor(p.y()))
    return c.red(), c.green(), c.blue()


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("ANCHORLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_20000_px_png_opens_tiled_and_zoom_shows_real_pixels(qtbot, env: Path) -> None:
    proj = env / "proj"
    Store.create(proj).close()
    (proj / "scans").mkdir()
    write_grey_png_in_strips(proj / "scans" / "huge.png", BIG, BIG, _big_rows)
    res = add_folder_job({"project": str(proj), "folder": str(proj / "scans")}, Collector(), CancelToken())
    assert res["added"] == 1  # size from the header: a full decode here would take seconds and 1.2 GB
    with Store(proj) as s:
        assert (s.images()[0].width, s.images()[0].height) == (BIG, BIG)
    window = _window(qtbot, proj)
    assert window.canvas.image_size() == (BIG, BIG)  # placeholder of the right size at once
    loader = ImageLoader.of(window.canvas)
    assert loader.wait(120)
    item = loader.tiled
    assert isinstance(item, TiledImageItem) and item.scene() is window.canvas.scene()
    assert item.pyramid.channels == 1 and item.pyramid.num_levels == 7
    _render(window)  # whole image at fit: a coarse level
    assert item.last_level >= 4
    assert loader.wait(60)
    x, y, w, h = PATCH
    view = window.canvas
    view.resetTransform()  # 100 %: level 0, tiles cut from the full-resolution level
    view.centerOn(x, y)  # the patch's top-left corner in the middle of the view
    _render(window)
    assert item.last_level == 0
    assert loader.wait(60)
    img = _render(window)
    assert _pixel(window, img, x + 0.5, y + 0.5) == (INK, INK, INK)  # exact to the pixel
    assert _pixel(window, img, x + 30.5, y + 20.5) == (INK, INK, INK)
    assert _pixel(window, img, x - 0.5, y + 0.5) == (BG, BG, BG)
    assert _pixel(window, img, x + 0.5, y - 0.5) == (BG, BG, BG)
    assert _pixel(window, img, x - 30.5, y - 20.5) == (BG, BG, BG)
    assert all(pm.width() <= 512 and pm.height() <= 512 for pm in item._cache.values())  # never a giant pixmap


def _rotated_project(env: Path) -> tuple[Path, np.ndarray]:
    """A project with one PNG stored 60 x 40 with EXIF orientation 6 (shown 40 x 60): red marker at the
    stored top-left, which the user sees at the top-right."""
    proj = env / "proj"
    Store.create(proj).close()
    stored = np.full((40, 60, 3), (0, 90, 200), np.uint8)
    stored[:10, :12] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(proj / "rot.png", exif=exif.tobytes())
    cv2.imwrite(str(proj / "plain.png"), np.full((30, 30, 3), 128, np.uint8))
    add_folder_job({"project": str(proj), "folder": str(proj)}, Collector(), CancelToken())
    return proj, np.rot90(stored, -1)


@pytest.mark.parametrize("tiled", [False, True])
def test_exif_orientation_is_applied_for_display_and_coordinates(qtbot, env: Path, tiled: bool) -> None:
    proj, oriented = _rotated_project(env)
    with Store(proj) as s:
        rec = s.image_by_path("rot.png")
        assert rec is not None and (rec.width, rec.height) == (40, 60)
    window = _window(qtbot, proj)
    loader = ImageLoader.of(window.canvas)
    if tiled:  # force the tile path for this small image: both paths must agree
        loader.big_pixels, loader.tile = 100, 16
    window.images.select_image(rec.id)
    assert loader.wait(30)
    assert window.canvas.image_size() == (40, 60)
    assert (loader.tiled is not None) == tiled
    window.canvas.fit()
    img = _render(window)
    if tiled:
        assert loader.wait(30)
        img = _render(window)
    assert oriented[5, 33].tolist() == [255, 0, 0]
    assert _pixel(window, img, 33.5, 5.5) == (255, 0, 0)  # top-right in the oriented frame
    assert _pixel(window, img, 5.5, 5.5) == (0, 90, 200)
    assert _pixel(window, img, 33.5, 50.5) == (0, 90, 200)


def test_unreadable_images_show_a_message_and_the_app_keeps_working(qtbot, env: Path) -> None:
    proj = env / "proj"
    Store.create(proj).close()
    ok, buf = cv2.imencode(".png", np.full((120, 160, 3), 77, np.uint8))
    (proj / "truncated.png").write_bytes(buf.tobytes()[:60])  # header fine, pixels cut off
    (proj / "garbage.jpg").write_bytes(b"definitely not a jpeg")
    cv2.imwrite(str(proj / "good.png"), np.full((50, 70, 3), 77, np.uint8))
    with Store(proj) as s:
        ids = s.add_images([("truncated.png", 160, 120, "", "train"), ("garbage.jpg", 10, 10, "", "train"),
                            ("good.png", 70, 50, "", "train")])
    window = _window(qtbot, proj)
    loader = ImageLoader.of(window.canvas)
    failed: list = []
    loader.image_failed.connect(lambda i, m: failed.append((i, m)))
    window.images.select_image(ids[0])
    assert loader.wait(30)
    msg = window.canvas.message()
    assert "Cannot show this image" in msg and "truncated.png" in msg and "cannot decode" in msg
    window.images.select_image(ids[1])  # broken header: the message is there at once
    assert "garbage.jpg" in window.canvas.message() and "not a readable image" in window.canvas.message()
    window.images.select_image(ids[2])
    assert loader.wait(30)
    assert window.canvas.message() == "" and window.canvas.image_size() == (70, 50)
    assert [i for i, _ in failed] == [ids[0]] or [i for i, _ in failed] == [ids[0], ids[1]]


def test_stale_results_are_dropped(qtbot, env: Path) -> None:
    proj, _ = _rotated_project(env)
    cv2.imwrite(str(proj / "wide.png"), np.full((20, 90, 3), 10, np.uint8))
    add_folder_job({"project": str(proj), "folder": str(proj)}, Collector(), CancelToken())
    window = _window(qtbot, proj)
    loader = ImageLoader.of(window.canvas)
    assert loader.wait(30)
    loader.big_pixels = 100  # everything goes through tiles, which is slower than a plain decode
    with Store(proj) as s:
        rot, wide = s.image_by_path("rot.png"), s.image_by_path("wide.png")
    ready: list[int] = []
    loader.image_ready.connect(ready.append)
    window.images.select_image(rot.id)
    loader.big_pixels = 10**9
    window.images.select_image(wide.id)  # before the first result could be delivered
    assert loader.wait(30)
    assert ready == [wide.id]
    assert loader.tiled is None and window.canvas.image_size() == (90, 20)
    window.canvas.set_image(None)  # the canvas was cleared meanwhile: a late result must not reappear
    loader.load(rot.id, proj / "rot.png")
    window.canvas.set_image(None)
    assert loader.wait(30)
    assert ready == [wide.id]
    assert not [i for i in window.canvas.scene().items() if isinstance(i, QGraphicsPixmapItem)]


def test_worker_pool_runs_off_thread_delivers_on_gui_thread_newest_first(qtbot) -> None:
    pool = WorkerPool(max_workers=1, max_pending=3)
    gate = threading.Event()
    ran_on: list[str] = []
    done: list[tuple[object, object, bool]] = []

    def job(v: int) -> int:
        ran_on.append(threading.current_thread().name)
        if v == 0:
            gate.wait(10)
        if v == 99:
            raise ValueError("bad pixels")
        return v * 10

    def ok(key: object, value: object) -> None:
        done.append((key, value, threading.current_thread() is threading.main_thread()))

    def err(key: object, e: BaseException) -> None:
        done.append((key, str(e), threading.current_thread() is threading.main_thread()))

    pool.submit(0, lambda: job(0), ok, err, priority=THUMBNAILS)  # blocks the only worker
    qtbot.waitUntil(lambda: len(ran_on) == 1)
    for v in range(1, 7):  # only the newest 3 stay pending
        pool.submit(v, lambda v=v: job(v), ok, err, priority=THUMBNAILS)
    pool.submit(99, lambda: job(99), ok, err, priority=THUMBNAILS)
    pool.cancel_where(lambda k: k == 5)
    assert pool.is_pending(6) and not pool.is_pending(5) and not pool.is_pending(1)
    gate.set()
    assert pool.wait(10)
    assert done == [(0, 0, True), (99, "bad pixels", True), (6, 60, True)]
    assert all(name != threading.main_thread().name for name in ran_on)


def test_worker_pool_serves_the_current_image_first_and_keeps_a_thread_for_images(qtbot) -> None:
    pool = WorkerPool(max_workers=2)
    gate, long_gate = threading.Event(), threading.Event()
    order: list[str] = []

    def run(name: str, wait: threading.Event | None = None) -> str:
        if wait is not None:
            wait.wait(10)
        order.append(name)
        return name

    def done(_key: object, _value: object) -> None:
        pass

    pool.submit("training", lambda: run("training", long_gate), priority=OTHER)  # holds a thread for long
    pool.submit("blocker", lambda: run("blocker", gate), done, priority=THUMBNAILS)
    qtbot.waitUntil(lambda: len(pool._running) == 2)  # noqa: SLF001  training and blocker run
    pool.submit("export", lambda: run("export"), done, priority=OTHER)  # must not take the image thread
    pool.submit("thumb", lambda: run("thumb"), done, priority=THUMBNAILS)
    pool.submit("tile", lambda: run("tile"), done, priority=VISIBLE_TILES)
    pool.submit("image", lambda: run("image"), done, priority=CURRENT_IMAGE)
    gate.set()
    qtbot.waitUntil(lambda: len(order) == 4, timeout=10_000)
    assert order == ["blocker", "image", "tile", "thumb"]  # the export waits for the training's thread
    long_gate.set()
    assert pool.wait(10)
    assert order[4:] in (["training", "export"], ["export", "training"])
