"""The annotation model: typed, numpy-backed, Qt-free.

Frame: image pixel coordinates, origin top-left, x right, y down; pixel (r, c) covers
[c, c+1) x [r, r+1). Boxes are float ``xyxy``. Points are one (x, y); lines are open polylines.

Masks are stored and edited CROPPED to their bounding box: a COCO RLE of the crop plus its pixel
offset and the image size, so decoding, painting and moving cost the mask's footprint, not the image.
``Mask.to_array()`` / ``Mask.from_array()`` still give and take full (H, W) masks: formats, datasets
and metrics use those at the boundary. A legacy full-image RLE (no offset) is read as a crop at (0, 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

Kind = Literal["box", "polygon", "mask", "point", "line"]
KINDS: tuple[str, ...] = ("box", "polygon", "mask", "point", "line")
REGION_KINDS: tuple[str, ...] = ("box", "polygon", "mask")  # what makes an object for training and exports


@dataclass(frozen=True)
class Box:
    """Axis-aligned box. ``xyxy``: (4,) float64, x1 <= x2, y1 <= y2."""

    xyxy: np.ndarray

    kind = "box"

    def __post_init__(self) -> None:
        a = np.asarray(self.xyxy, dtype=np.float64).reshape(4)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"box has non-finite coordinates: {a.tolist()}")
        x1, y1, x2, y2 = a
        a = np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])
        object.__setattr__(self, "xyxy", a)

    def bbox(self) -> np.ndarray:
        return self.xyxy.copy()

    def to_json(self) -> Any:
        return [float(v) for v in self.xyxy]

    def area(self) -> float:
        x1, y1, x2, y2 = self.xyxy
        return float((x2 - x1) * (y2 - y1))


@dataclass(frozen=True)
class Polygon:
    """Closed polygon. ``points``: (N, 2) float64 (x, y), N >= 3, not repeated at the end."""

    points: np.ndarray

    kind = "polygon"

    def __post_init__(self) -> None:
        p = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            raise ValueError(f"polygon needs at least 3 points, got {len(p)}")
        if not np.all(np.isfinite(p)):
            raise ValueError("polygon has non-finite coordinates")
        object.__setattr__(self, "points", p)

    def bbox(self) -> np.ndarray:
        return np.concatenate([self.points.min(0), self.points.max(0)])

    def to_json(self) -> Any:
        return self.points.reshape(-1).tolist()

    def area(self) -> float:
        x, y = self.points[:, 0], self.points[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)

    def to_mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise to a (H, W) uint8 {0,1} mask (COCO's polygon rasteriser)."""
        rles = mask_utils.frPyObjects([self.to_json()], height, width)
        return mask_utils.decode(mask_utils.merge(rles))


@dataclass(frozen=True)
class Point:
    """One point. ``xy``: (2,) float64."""

    xy: np.ndarray

    kind = "point"

    def __post_init__(self) -> None:
        a = np.asarray(self.xy, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError("point has non-finite coordinates")
        object.__setattr__(self, "xy", a)

    @property
    def points(self) -> np.ndarray:
        return self.xy.reshape(1, 2)

    def bbox(self) -> np.ndarray:
        return np.concatenate([self.xy, self.xy])

    def to_json(self) -> Any:
        return [float(v) for v in self.xy]

    def area(self) -> float:
        return 0.0


@dataclass(frozen=True)
class Line:
    """Open polyline (labelme's line / linestrip). ``points``: (N, 2) float64, N >= 2."""

    points: np.ndarray

    kind = "line"

    def __post_init__(self) -> None:
        p = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        if len(p) < 2:
            raise ValueError(f"a line needs at least 2 points, got {len(p)}")
        if not np.all(np.isfinite(p)):
            raise ValueError("line has non-finite coordinates")
        object.__setattr__(self, "points", p)

    def bbox(self) -> np.ndarray:
        return np.concatenate([self.points.min(0), self.points.max(0)])

    def to_json(self) -> Any:
        return self.points.reshape(-1).tolist()

    def area(self) -> float:
        return 0.0

    def length(self) -> float:
        return float(np.hypot(*np.diff(self.points, axis=0).T).sum())


def _encode(crop: np.ndarray) -> dict:
    m = np.asfortranarray(np.asarray(crop, dtype=np.uint8))
    rle = mask_utils.encode(m)
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


@dataclass(frozen=True)
class Mask:
    """Instance mask, cropped: ``rle`` is the COCO RLE (``{"size": [h, w], "counts": str}``) of the crop at
    pixel ``offset`` (x0, y0) of an image of ``image_size`` (H, W). ``image_size`` None: the crop IS the image
    (a legacy full-image RLE)."""

    rle: dict
    offset: tuple[int, int] = (0, 0)
    image_size: tuple[int, int] | None = None

    kind = "mask"

    @staticmethod
    def from_array(mask: np.ndarray) -> Mask:
        """``mask``: (H, W) bool/uint8 array; stored cropped to its bounding box."""
        m = np.asarray(mask)
        return Mask.from_crop(0, 0, m, (int(m.shape[0]), int(m.shape[1])))

    @staticmethod
    def from_crop(x0: int, y0: int, crop: np.ndarray, size: tuple[int, int]) -> Mask:
        """The mask whose pixels are ``crop`` ((h, w) bool/uint8) at (x0, y0) of an (H, W) = ``size`` image.

        The crop is tightened to its set pixels (cost: the crop's size) and clipped to the image.
        """
        H, W = int(size[0]), int(size[1])
        c = np.asarray(crop)
        h, w = c.shape
        cx0, cy0 = max(0, -int(x0)), max(0, -int(y0))
        cx1, cy1 = min(w, W - int(x0)), min(h, H - int(y0))
        c = c[cy0:max(cy0, cy1), cx0:max(cx0, cx1)]
        rows = np.flatnonzero(c.any(1)) if c.size else np.zeros(0, np.int64)
        if len(rows) == 0:
            return Mask(_encode(np.zeros((1, 1), np.uint8)), (0, 0), (H, W))
        cols = np.flatnonzero(c.any(0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        return Mask(_encode(c[r0:r1, c0:c1]), (int(x0) + cx0 + c0, int(y0) + cy0 + r0), (H, W))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        if self.image_size is not None:
            return int(self.image_size[0]), int(self.image_size[1])
        return self.crop_size

    @property
    def crop_size(self) -> tuple[int, int]:
        """(h, w) of the stored crop."""
        h, w = self.rle["size"]
        return int(h), int(w)

    def _rle_bytes(self) -> dict:
        counts = self.rle["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            return mask_utils.frPyObjects(self.rle, *self.crop_size)
        return {"size": list(self.crop_size), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}

    def crop(self) -> tuple[int, int, np.ndarray]:
        """(x0, y0, (h, w) uint8 {0,1}): the stored crop, decoded (cost: the crop, not the image)."""
        return int(self.offset[0]), int(self.offset[1]), mask_utils.decode(self._rle_bytes())

    def to_array(self) -> np.ndarray:
        """(H, W) uint8 {0,1}, column-major (the full image: use at the boundary only)."""
        x0, y0, c = self.crop()
        if self.image_size is None and (x0, y0) == (0, 0):
            return c
        out = np.zeros(self.size, np.uint8, order="F")
        h, w = c.shape
        out[y0:y0 + h, x0:x0 + w] = c
        return out

    def bbox(self) -> np.ndarray:
        """Tight xyxy box of the set pixels (pixel edges); zeros if empty."""
        x, y, w, h = mask_utils.toBbox(self._rle_bytes())
        if w <= 0 or h <= 0:
            return np.zeros(4, np.float64)
        x0, y0 = self.offset
        return np.array([x + x0, y + y0, x + x0 + w, y + y0 + h], dtype=np.float64)

    def area(self) -> float:
        return float(mask_utils.area(self._rle_bytes()))

    def to_json(self) -> Any:
        if self.image_size is None:
            return dict(self.rle)
        return {**self.rle, "offset": [int(v) for v in self.offset], "image": [int(v) for v in self.image_size]}


Geometry = Box | Polygon | Mask | Point | Line


def geometry_from_json(kind: str, data: Any) -> Geometry:
    """Inverse of ``Geometry.to_json``; raises ValueError on malformed data."""
    if isinstance(data, str):
        data = json.loads(data)
    if kind == "box":
        return Box(np.asarray(data, dtype=np.float64))
    if kind == "polygon":
        return Polygon(np.asarray(data, dtype=np.float64).reshape(-1, 2))
    if kind == "mask":
        if not isinstance(data, dict) or "size" not in data or "counts" not in data:
            raise ValueError("mask geometry must be an RLE dict with 'size' and 'counts'")
        if "offset" in data and "image" in data:
            x0, y0 = (int(v) for v in data["offset"])
            H, W = (int(v) for v in data["image"])
            return Mask({"size": [int(v) for v in data["size"]], "counts": data["counts"]}, (x0, y0), (H, W))
        return Mask(dict(data))
    if kind == "point":
        return Point(np.asarray(data, dtype=np.float64))
    if kind == "line":
        return Line(np.asarray(data, dtype=np.float64).reshape(-1, 2))
    raise ValueError(f"unknown annotation kind {kind!r}")


@dataclass(frozen=True)
class Annotation:
    """One shape on one image. ``id`` is None until stored."""

    image_id: int
    category_id: int
    geometry: Geometry
    provenance: str = "manual"
    score: float | None = None
    group_id: int | None = None
    attributes: dict = field(default_factory=dict)
    id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    edited_at: float | None = None  # set by in-app corrections (``Store.update_annotation``); None if never

    @property
    def kind(self) -> str:
        return self.geometry.kind

    def bbox(self) -> np.ndarray:
        return self.geometry.bbox()

    def with_(self, **changes: Any) -> Annotation:
        return replace(self, **changes)


@dataclass(frozen=True)
class Instance:
    """One object: annotations merged by ``group_id``. ``box`` (4,) xyxy; ``mask`` (H, W) or None."""

    category_id: int
    box: np.ndarray
    mask: np.ndarray | None
    annotation_ids: tuple[int, ...]


def group_annotations(anns: list[Annotation]) -> list[list[Annotation]]:
    """Annotations grouped into objects (same ``group_id``; ungrouped ones alone), in order of first appearance.

    Only region shapes (box, polygon, mask) make objects; points and lines are skipped.
    """
    groups: dict[object, list[Annotation]] = {}
    for a in anns:
        if a.kind not in REGION_KINDS:
            continue
        key = ("g", a.group_id) if a.group_id is not None else ("a", a.id if a.id is not None else id(a))
        groups.setdefault(key, []).append(a)
    return list(groups.values())


def object_box(members: list[Annotation]) -> np.ndarray:
    """(4,) xyxy of one object: its box annotation's if it has one, else the bbox of the union of its shapes."""
    boxes = [m for m in members if m.kind == "box"]
    return boxes[0].bbox() if boxes else _union_bbox([m.bbox() for m in members])


def instances(anns: list[Annotation], height: int, width: int, with_masks: bool = False) -> list[Instance]:
    """Group annotations into objects: same ``group_id`` = same object; ungrouped ones stand alone.

    The box is the box annotation's if there is one, else the bbox of the union of the shapes.
    With ``with_masks`` the mask is the union of polygon/mask shapes (None if only a box).
    """
    out = []
    for members in group_annotations(anns):
        box = object_box(members)
        mask = None
        if with_masks:
            parts = [m.geometry for m in members if m.kind != "box"]
            if parts:
                mask = np.zeros((height, width), np.uint8)
                for g in parts:
                    mask |= g.to_mask(height, width) if isinstance(g, Polygon) else g.to_array()
        out.append(Instance(members[0].category_id, box, mask,
                            tuple(m.id for m in members if m.id is not None)))
    return out


def _union_bbox(boxes: list[np.ndarray]) -> np.ndarray:
    b = np.stack(boxes)
    return np.concatenate([b[:, :2].min(0), b[:, 2:].max(0)])
