"""Shared import/export pieces: reports, options, parsed records and validation helpers.

Every importer parses one *unit* (one annotation file: a labelme JSON, a VOC XML, a YOLO label
txt, a whole COCO JSON) into ``ParsedImage`` records without touching the project, and hands it to
``session.ImportSession.commit``, which writes it in one transaction. Coordinates in parsed
records are image pixels, origin top-left, boxes ``xyxy`` with pixel edges (``engine.project.shapes``).
Validation helpers raise ``FormatError`` naming the field; clipping helpers warn instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.project.imageio import ImageReadError, image_size
from engine.project.shapes import Geometry
from engine.project.store import SPLITS

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]
SPLIT_ALIASES = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}


class FormatError(ValueError):
    """One annotation file is unusable; ``str(e)`` is the reason (the caller adds the file name)."""


def no_progress(done: int, total: int, message: str) -> None:
    """A progress callback that ignores everything."""


def never_cancel() -> bool:
    return False


@dataclass
class ImportReport:
    """What an import did. ``skipped``/``errors``/``warnings`` hold (file, reason) pairs."""

    format: str
    source: str
    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0  # image rows added to the project
    annotations: int = 0  # annotation rows added
    kept: int = 0  # with replace: annotations of an earlier import kept because they were edited in the app
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("skipped", "errors", "warnings"):
            d[k] = [list(p) for p in d[k]]
        return d

    def summary(self) -> str:
        head = (f"{self.format} import from {self.source}: {len(self.imported)} file(s) imported "
                f"({self.images} images, {self.annotations} annotations), {len(self.skipped)} skipped, "
                + (f"{self.kept} edited annotation(s) kept, " if self.kept else "") +
                f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
                + (" - cancelled" if self.cancelled else ""))
        return "\n".join([head, *_lines("skipped", self.skipped), *_lines("error", self.errors),
                          *_lines("warning", self.warnings)])


@dataclass
class ExportReport:
    """What an export wrote. ``files`` are paths relative to ``out``; warnings/errors (file, reason)."""

    format: str
    out: str
    files: list[str] = field(default_factory=list)
    images: int = 0
    annotations: int = 0  # objects written (one per instance, after group merging)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("warnings", "errors"):
            d[k] = [list(p) for p in d[k]]
        return d

    def summary(self) -> str:
        head = (f"{self.format} export to {self.out}: {self.images} images, {self.annotations} objects, "
                f"{len(self.files)} file(s) written, {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
                + (" - cancelled" if self.cancelled else ""))
        return "\n".join([head, *_lines("error", self.errors), *_lines("warning", self.warnings)])


def _lines(kind: str, pairs: list[tuple[str, str]], limit: int = 50) -> list[str]:
    out = [f"  {kind}: {f}: {r}" for f, r in pairs[:limit]]
    if len(pairs) > limit:
        out.append(f"  ... and {len(pairs) - limit} more {kind}(s)")
    return out


@dataclass
class ImportOptions:
    """``split`` overrides the format's split for imported images; ``images`` is an extra image root."""

    split: str | None = None
    images: Path | None = None
    replace: bool = False
    names: list[str] | None = None  # class names for formats that index classes (YOLO, class maps)


@dataclass
class ParsedShape:
    """One shape of one image. Shapes with the same non-None ``group`` become one object."""

    category: str
    geometry: Geometry
    group: object | None = None
    score: float | None = None
    attributes: dict = field(default_factory=dict)


@dataclass
class ParsedImage:
    """An image and its shapes. ``path`` absolute (None when only embedded ``data`` exists)."""

    path: Path | None
    name: str  # posix path relative to the dataset's image root: the copy destination under images/<source>/
    width: int
    height: int
    sha1: str
    shapes: list[ParsedShape] = field(default_factory=list)
    tags: dict[str, bool] = field(default_factory=dict)
    split: str | None = None
    data: bytes | None = None


@dataclass
class Unit:
    """One annotation file and the images it describes; committed atomically."""

    file: Path
    digest: str
    images: list[ParsedImage]
    categories: list[str] = field(default_factory=list)  # the file's class list: created in this order


# -- validation helpers ------------------------------------------------------------------------
def finite(values: object, what: str) -> np.ndarray:
    """``values`` as float64 array; FormatError if not numbers (strings and booleans too) or not finite."""
    try:
        raw = np.asarray(values)
        if raw.size and raw.dtype.kind not in "iuf":
            raise FormatError(f"{what}: expected numbers, got {values!r:.80}")
        a = raw.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise FormatError(f"{what}: expected numbers, got {values!r:.80}") from e
    if a.dtype == object or not np.all(np.isfinite(a)):
        raise FormatError(f"{what}: coordinates must be finite numbers, got {a.tolist()!r:.80}")
    return a


def number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{what}: expected a number, got {type(value).__name__} {value!r:.40}")
    if not math.isfinite(value):
        raise FormatError(f"{what}: must be finite, got {value}")
    return float(value)


def integer(value: object, what: str, minimum: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{what}: expected an integer, got {type(value).__name__} {value!r:.40}")
    if minimum is not None and value < minimum:
        raise FormatError(f"{what}: must be >= {minimum}, got {value}")
    return value


def load_json(text: str) -> object:
    """Parsed JSON, or FormatError. ``NaN``/``Infinity`` parse (as Python's json does): coordinates are then
    refused by ``finite``, attributes by ``plain_attributes``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(f"bad JSON: {e}") from e


def plain_attributes(attrs: dict, what: str) -> dict:
    """``attrs`` if it holds no NaN/Infinity (they would make every JSON export invalid), else FormatError."""
    _, bad = json_safe(attrs)
    if bad:
        raise FormatError(f"{what}: attributes hold {bad} NaN/Infinity value(s); only finite numbers are valid JSON")
    return attrs


def json_safe(value: object) -> tuple[object, int]:
    """(``value`` with every non-finite float replaced by None, how many were replaced): always valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, 1
    if isinstance(value, dict):
        out, n = {}, 0
        for k, v in value.items():
            out[k], m = json_safe(v)
            n += m
        return out, n
    if isinstance(value, list | tuple):
        items = [json_safe(v) for v in value]
        return [v for v, _ in items], sum(m for _, m in items)
    return value, 0


def check_names(names: list[str], fmt: str) -> None:
    """Refuse category names a line-based or XML format cannot hold (control characters, line breaks)."""
    for n in names:
        bad = next((ch for ch in n if unicodedata.category(ch) in ("Cc", "Cs")), None)
        if bad is not None:
            raise FormatError(f"category {n!r} contains the control character U+{ord(bad):04X}, which {fmt} "
                              "cannot hold; rename the category first")


def warning_text(w: warnings.WarningMessage) -> str:
    """A library warning (Pillow, numpy) in our words: which library, what it means."""
    msg = str(w.message).strip().splitlines()[0] if str(w.message).strip() else w.category.__name__
    lib = (getattr(w, "filename", "") or "").replace("\\", "/")
    origin = "Pillow" if "/PIL/" in lib else "numpy" if "/numpy/" in lib else "a library"
    if w.category.__name__ == "DecompressionBombWarning":
        return f"the image is very large and needs a lot of memory to decode ({msg})"
    if issubclass(w.category, RuntimeWarning) and origin == "numpy":
        return f"a computation produced invalid numbers ({msg}); check the values in this file"
    return f"{origin} warned while reading it: {msg}"


def clip_box(xyxy: np.ndarray, width: int, height: int, warn: Callable[[str], None],
             what: str) -> np.ndarray | None:
    """Clip a (4,) xyxy box to the image; warns when it moved; None (and a warning) if nothing is left."""
    b = np.asarray(xyxy, np.float64).reshape(4)
    b = np.array([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
    c = np.clip(b, 0, [width, height, width, height])
    if not np.array_equal(b, c):
        warn(f"{what}: box {np.round(b, 3).tolist()} lies outside the {width}x{height} image; "
             f"clipped to {np.round(c, 3).tolist()}")
    if c[2] <= c[0] or c[3] <= c[1]:
        warn(f"{what}: box is empty after clipping to the image; not imported")
        return None
    return c


def clip_points(points: np.ndarray, width: int, height: int, warn: Callable[[str], None],
                what: str) -> np.ndarray:
    """Clip (N, 2) x, y points to the image, warning when any moved."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    c = np.clip(p, 0, [width, height])
    if not np.array_equal(p, c):
        warn(f"{what}: {int(np.any(p != c, axis=1).sum())} point(s) outside the {width}x{height} image; clipped")
    return c


def split_name(value: str | None) -> str | None:
    """A split name from a file/folder name (``valid`` -> ``val``); None if it is not a split."""
    if not value:
        return None
    v = SPLIT_ALIASES.get(value.lower(), value.lower())
    return v if v in SPLITS else None


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def sha1_file(path: Path) -> str:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError as e:
        raise FormatError(f"cannot read image {path} ({e.strerror or e})") from e


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved: no ``..`` or symlink escapes) lies in ``root``."""
    return path.resolve().is_relative_to(_resolved(str(root)))


@functools.lru_cache(maxsize=64)
def _resolved(root: str) -> Path:
    return Path(root).resolve()


def image_file(path: Path, name: str, declared: tuple[int | None, int | None] = (None, None)) -> ParsedImage:
    """A ``ParsedImage`` for an image on disk: checks it exists, is readable and matches ``declared`` (w, h)."""
    if not path.is_file():
        raise FormatError(f"image not found: {path}")
    try:
        w, h = image_size(path)
    except ImageReadError as e:
        raise FormatError(str(e)) from e
    dw, dh = declared
    if (dw is not None and dw != w) or (dh is not None and dh != h):
        raise FormatError(f"image size mismatch: the file declares {dw}x{dh} but {path.name} is {w}x{h}")
    return ParsedImage(path.resolve(), name, w, h, sha1_file(path))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"cannot read {path.name}: {e}") from e


def relative_name(path: Path, roots: list[Path]) -> str:
    """``path`` relative to the first root that contains it (posix), else its file name."""
    for r in roots:
        if inside(path, r):
            return path.resolve().relative_to(r.resolve()).as_posix()
    return path.name

