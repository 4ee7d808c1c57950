"""Reading images from disk: header-only size, content hash, decode with EXIF orientation.

Every function raises ``ImageReadError`` (with the path and the reason) instead of a library error.
Arrays are (H, W, 3) uint8 RGB, C-contiguous, in the EXIF-oriented frame (what the user sees).
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_ORIENTATION = 0x0112
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
Image.MAX_IMAGE_PIXELS = 1_000_000_000  # 20k x 20k scans are legitimate; we tile them for display


class ImageReadError(OSError):
    """An image file could not be read; ``str(e)`` names the file and the reason."""


def _png_tail_exif(f: BinaryIO, tail: int = 256 << 10) -> bytes | None:
    """The last eXIf chunk found in the file's final ``tail`` bytes (after IDAT), CRC-checked."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - tail))
    buf = f.read()
    found, start = None, 0
    while (p := buf.find(b"eXIf", start)) >= 4:
        start = p + 4
        (n,) = struct.unpack(">I", buf[p - 4:p])
        data, crc = buf[p + 4:p + 4 + n], buf[p + 4 + n:p + 8 + n]
        if len(data) == n and len(crc) == 4 and struct.unpack(">I", crc)[0] == zlib.crc32(b"eXIf" + data):
            found = data
    return found


def orientation_of(im: Image.Image, path: str | Path) -> int:
    """EXIF orientation 1..8 of an opened image, without decoding pixels.

    Pillow decodes a whole PNG to look for an eXIf chunk stored after the pixel data; we look for it
    in the file's tail instead and hand it to Pillow, so ``getexif`` stays header-only.
    """
    if im.format == "PNG" and "exif" not in im.info:
        if im.fp is not None:  # Pillow seeks before it reads pixels, so moving its file pointer is safe
            raw = _png_tail_exif(im.fp)
        else:
            with open(path, "rb") as f:
                raw = _png_tail_exif(f)
        im.info["exif"] = b"Exif\x00\x00" + raw if raw else b""
    o = int(im.getexif().get(_ORIENTATION, 1) or 1)
    return o if 1 <= o <= 8 else 1


def exif_orientation(path: str | Path) -> int:
    """EXIF orientation tag (1 = as stored) read from the header; raises ImageReadError."""
    try:
        with Image.open(path) as im:
            return orientation_of(im, path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from e


def oriented_size(path: str | Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header only (never decodes the pixels).

    A header claiming more pixels than AnchorLab handles (Pillow's decompression-bomb guard, e.g. a
    60,000 x 60,000 PNG) is an ``ImageReadError`` like any unreadable file: reported and skipped.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            o = orientation_of(im, path)
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: image too large to open ({e})") from e
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from e
    if w <= 0 or h <= 0:
        raise ImageReadError(f"{path}: image has no pixels ({w} x {h})")
    return (h, w) if o in (5, 6, 7, 8) else (w, h)


image_size = oriented_size


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode to (H, W, 3) uint8 RGB with EXIF orientation applied."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            arr = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{path}: cannot decode image ({e})") from e
    return np.ascontiguousarray(arr)


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha1 of the file's bytes (hex)."""
    h = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read file ({e})") from e
    return h.hexdigest()


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
