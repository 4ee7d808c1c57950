"""Reading images from disk: header-only size, content hash, decode with EXIF orientation.

Every function raises ``ImageReadError`` (with the path and the reason) instead of a library error.
Arrays are (H, W, 3) uint8 RGB, C-contiguous, in the EXIF-oriented frame (what the user sees).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

EXIF_FORMATS = ("JPEG", "MPO", "TIFF", "WEBP")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
Image.MAX_IMAGE_PIXELS = 1_000_000_000  # 20k x 20k scans are legitimate; we tile them for display


class ImageReadError(OSError):
    """An image file could not be read; ``str(e)`` names the file and the reason."""


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header without decoding pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            # PNG's getexif() decodes the whole file; only formats that carry EXIF up front are asked
            orientation = im.getexif().get(0x0112, 1) if im.format in EXIF_FORMATS else 1
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from e
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


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
