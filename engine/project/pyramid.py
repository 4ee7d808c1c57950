"""Big images: header-only oriented size, full decode off the GUI thread, and a tile pyramid on disk.

Frame: every array here is in the EXIF-oriented frame (what the user sees, what annotations use), exactly
as ``imageio.read_rgb`` orients it. Level ``k`` of a pyramid is the image downsampled by ``2**k``
(``cv2.INTER_AREA``), stored as a raw C-contiguous uint8 file, ``(h_k, w_k)`` for grey images and
``(h_k, w_k, 3)`` RGB otherwise, and read back through ``np.memmap``: the decoded image is freed once the
levels are written, so a 20,000 x 20,000 scan costs the process one decode (1.2 GB RGB) while the pyramid
is built and then only the tiles being read. Pyramids are cached under ``cache_dir/<key>/`` (key = path,
size, mtime), written to a temporary folder and renamed when complete; the cache is pruned oldest-first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.jobs import CancelToken
from engine.project.imageio import ImageReadError, exif_orientation, orientation_of, oriented_size, read_rgb  # noqa: F401

TILE = 512
BIG_SIDE = 4096  # wider or taller than this -> tiles (Qt's own limit is 32,767 px a side)
BIG_PIXELS = 16_000_000  # more pixels than this -> tiles (Qt refuses QImages over 256 MB)
CACHE_BYTES = 8 << 30  # default cap of the pyramid cache
VERSION = 1


def is_big(width: int, height: int, big_side: int = BIG_SIDE, big_pixels: int = BIG_PIXELS) -> bool:
    """True when an image of this size should be shown from tiles rather than one pixmap."""
    return max(width, height) > big_side or width * height > big_pixels


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Orient an (H, W[, C]) array like ``PIL.ImageOps.exif_transpose`` (returns a view)."""
    return {
        2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1], 4: lambda: a[::-1], 5: lambda: a.swapaxes(0, 1),
        6: lambda: np.rot90(a, -1), 7: lambda: np.rot90(a, 2).swapaxes(0, 1), 8: lambda: np.rot90(a, 1),
    }.get(orientation, lambda: a)()


def decode_full(path: str | Path) -> np.ndarray:
    """Decode a whole image: (H, W) uint8 grey or (H, W, 3) uint8 RGB, oriented, C-contiguous.

    OpenCV decodes without Pillow's 4-bytes-per-pixel intermediate and keeps grey images grey (a third of
    the memory); anything OpenCV cannot read goes through ``read_rgb``. Raises ImageReadError.
    """
    orientation = exif_orientation(path)
    try:
        a = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, OSError, ValueError):
        a = None
    if a is None or a.dtype not in (np.uint8, np.uint16) or a.ndim not in (2, 3):
        return read_rgb(path)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[:, :, 0]
        elif a.shape[2] == 3:
            a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB, dst=a)
        elif a.shape[2] == 4:
            a = cv2.cvtColor(a, cv2.COLOR_BGRA2RGB)
        else:
            return read_rgb(path)
    return np.ascontiguousarray(apply_orientation(a, orientation))


# -- the pyramid ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pyramid:
    """Levels of one image; level k is ``(h_k, w_k[, 3])`` uint8 with ``h_0, w_0 = height, width``."""

    width: int
    height: int
    channels: int  # 1 (grey) or 3 (RGB)
    tile: int
    levels: tuple[np.ndarray, ...]
    folder: Path | None = None  # cache folder (None: levels held in memory)

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def level_size(self, k: int) -> tuple[int, int]:
        """(w_k, h_k) in level pixels."""
        h, w = self.levels[k].shape[:2]
        return w, h

    def scale(self, k: int) -> tuple[float, float]:
        """Image pixels per level pixel, (sx, sy) (about 2**k)."""
        w, h = self.level_size(k)
        return self.width / w, self.height / h

    def grid(self, k: int) -> tuple[int, int]:
        """Number of tiles (nx, ny) of level k."""
        w, h = self.level_size(k)
        return -(-w // self.tile), -(-h // self.tile)

    def tile_bounds(self, k: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of tile (tx, ty) in level-k pixels, clipped to the level."""
        w, h = self.level_size(k)
        t = self.tile
        return tx * t, ty * t, min(w, (tx + 1) * t), min(h, (ty + 1) * t)

    def tile_array(self, k: int, tx: int, ty: int) -> np.ndarray:
        """A C-contiguous copy of one tile: (th, tw) or (th, tw, 3) uint8."""
        x0, y0, x1, y1 = self.tile_bounds(k, tx, ty)
        return np.ascontiguousarray(self.levels[k][y0:y1, x0:x1])

    def level_for(self, lod: float) -> int:
        """The coarsest level that still has at least one level pixel per screen pixel at zoom ``lod``."""
        if lod <= 0:
            return self.num_levels - 1
        k = int(np.floor(np.log2(1.0 / lod))) if lod < 1 else 0
        return max(0, min(self.num_levels - 1, k))


def level_shapes(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """(w_k, h_k) per level, halving (rounding up) until the level fits in one tile."""
    shapes = [(width, height)]
    while max(shapes[-1]) > tile:
        w, h = shapes[-1]
        shapes.append(((w + 1) // 2, (h + 1) // 2))
    return shapes


def pyramid_key(path: str | Path, tile: int = TILE) -> str:
    """Cache key of an image file: its resolved path, size and modification time."""
    p = Path(path).resolve()
    st = p.stat()
    return hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}|{tile}|v{VERSION}".encode()).hexdigest()[:24]


def _read_folder(folder: Path) -> Pyramid | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != VERSION:
            return None
        c = int(meta["channels"])
        levels = []
        for k, (w, h) in enumerate(meta["levels"]):
            shape = (h, w) if c == 1 else (h, w, c)
            f = folder / f"level{k}.u8"
            if f.stat().st_size != int(np.prod(shape)):
                return None
            levels.append(np.memmap(f, dtype=np.uint8, mode="r", shape=shape))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Pyramid(int(meta["width"]), int(meta["height"]), c, int(meta["tile"]), tuple(levels), folder)


def open_cached(path: str | Path, cache_dir: str | Path, tile: int = TILE) -> Pyramid | None:
    """The cached pyramid of ``path`` if a complete one exists (and mark it recently used)."""
    try:
        folder = Path(cache_dir) / pyramid_key(path, tile)
    except OSError:
        return None
    pyr = _read_folder(folder)
    if pyr is not None:
        with contextlib.suppress(OSError):
            os.utime(folder / "meta.json")
    return pyr


def _downsample(a: np.ndarray, shapes: list[tuple[int, int]], cancel: CancelToken | None) -> list[np.ndarray]:
    levels = [a]
    for w, h in shapes[1:]:
        if cancel is not None:
            cancel.check()
        levels.append(cv2.resize(levels[-1], (w, h), interpolation=cv2.INTER_AREA))
    return levels


def _write_levels(folder: Path, levels: list[np.ndarray], width: int, height: int, tile: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, lv in enumerate(levels):
        with open(folder / f"level{k}.u8", "wb") as f:
            for y in range(0, lv.shape[0], 1024):  # strips: bounded extra memory, plain sequential writes
                f.write(np.ascontiguousarray(lv[y:y + 1024]).data)
    c = 1 if levels[0].ndim == 2 else levels[0].shape[2]
    meta = {"version": VERSION, "width": width, "height": height, "channels": c, "tile": tile,
            "levels": [[int(lv.shape[1]), int(lv.shape[0])] for lv in levels]}
    (folder / "meta.json").write_text(json.dumps(meta))


def build_pyramid(path: str | Path, cache_dir: str | Path | None, tile: int = TILE,
                  cancel: CancelToken | None = None, max_cache_bytes: int = CACHE_BYTES) -> Pyramid:
    """Open the cached pyramid of ``path`` or build it (decode once, downsample, write, free).

    Runs for seconds on a 20k x 20k image: call it on a worker thread. Without a usable ``cache_dir``
    (None, or a write fails, e.g. disk full) the levels stay in memory. Raises ImageReadError, Cancelled.
    """
    if cache_dir is not None and (cached := open_cached(path, cache_dir, tile)) is not None:
        return cached
    a = decode_full(path)
    if cancel is not None:
        cancel.check()
    h, w = a.shape[:2]
    levels = _downsample(a, level_shapes(w, h, tile), cancel)
    del a
    c = 1 if levels[0].ndim == 2 else 3
    if cache_dir is None:
        return Pyramid(w, h, c, tile, tuple(levels))
    root = Path(cache_dir)
    key = pyramid_key(path, tile)
    tmp = root / f"{key}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        _write_levels(tmp, levels, w, h, tile)
        try:
            os.rename(tmp, root / key)
        except OSError:  # built meanwhile by someone else: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return Pyramid(w, h, c, tile, tuple(levels))
    del levels
    prune_cache(root, max_cache_bytes, keep={key})
    pyr = _read_folder(root / key)
    if pyr is None:
        raise ImageReadError(f"{path}: tile cache {root / key} is unreadable after writing it")
    return pyr


def prune_cache(cache_dir: str | Path, max_bytes: int, keep: Collection[str] = ()) -> int:
    """Delete least recently used pyramids (and stale temporary folders) until under ``max_bytes``.

    Returns the bytes left. Folders named in ``keep`` are never deleted.
    """
    root = Path(cache_dir)
    entries = []
    for d in root.iterdir() if root.is_dir() else ():
        if not d.is_dir() or d.name in keep:
            continue
        meta = d / "meta.json"
        if ".tmp-" in d.name:
            pid = d.name.split(".tmp-")[1].split("-")[0]
            if pid != str(os.getpid()):  # a crashed build of another process
                shutil.rmtree(d, ignore_errors=True)
            continue
        try:
            size = sum(f.stat().st_size for f in d.iterdir())
            entries.append((meta.stat().st_mtime if meta.exists() else 0.0, size, d))
        except OSError:
            continue
    total = sum(e[1] for e in entries) + sum(
        f.stat().st_size for k in keep if (root / k).is_dir() for f in (root / k).iterdir())
    for _, size, d in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        shutil.rmtree(d, ignore_errors=True)
        total -= size
    return total


# -- thumbnails -----------------------------------------------------------------------------------
def thumbnail(path: str | Path, max_side: int, cache_dir: str | Path | None = None,
              big_side: int = BIG_SIDE, big_pixels: int = BIG_PIXELS) -> np.ndarray | None:
    """(h, w, 3) uint8 RGB, oriented, longest side ``max_side``; None when only a full decode of a big image
    could make it (a big PNG/TIFF without a cached pyramid). JPEGs decode at a reduced scale. Raises
    ImageReadError."""
    try:
        with Image.open(path) as im:
            o = orientation_of(im, path)
            w, h = im.size
            big = is_big(w, h, big_side, big_pixels)
            pyr = open_cached(path, cache_dir) if big and cache_dir is not None else None
            if pyr is not None:
                rgb = np.asarray(pyr.levels[-1])
            elif big and im.format != "JPEG":
                return None
            else:
                if im.format == "JPEG":
                    im.draft("RGB", (max_side * 2, max_side * 2))
                rgb = apply_orientation(np.asarray(im.convert("RGB")), o)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{path}: cannot make a thumbnail ({e})") from e
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)
