"""The annotation model: typed, numpy-backed, Qt-free.

Frame: image pixel coordinates, origin top-left, x right, y down; pixel (r, c) covers
[c, c+1) x [r, r+1). Boxes are float ``xyxy``. Masks are COCO RLE over the full image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

Kind = Literal["box", "polygon", "mask"]
KINDS: tuple[str, ...] = ("box", "polygon", "mask")


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
class Mask:
    """Instance mask as COCO RLE: ``rle = {"size": [H, W], "counts": str}`` (compressed)."""

    rle: dict

    kind = "mask"

    @staticmethod
    def from_array(mask: np.ndarray) -> Mask:
        """``mask``: (H, W) bool/uint8 array."""
        m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
        rle = mask_utils.encode(m)
        counts = rle["counts"]
        return Mask({"size": [int(s) for s in rle["size"]],
                     "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts})

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        h, w = self.rle["size"]
        return int(h), int(w)

    def _rle_bytes(self) -> dict:
        counts = self.rle["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            return mask_utils.frPyObjects(self.rle, *self.size)
        return {"size": list(self.size), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}

    def to_array(self) -> np.ndarray:
        """(H, W) uint8 {0,1}."""
        return mask_utils.decode(self._rle_bytes())

    def bbox(self) -> np.ndarray:
        """Tight xyxy box of the set pixels (pixel edges); zeros if empty."""
        x, y, w, h = mask_utils.toBbox(self._rle_bytes())
        return np.array([x, y, x + w, y + h], dtype=np.float64)

    def area(self) -> float:
        return float(mask_utils.area(self._rle_bytes()))

    def to_json(self) -> Any:
        return dict(self.rle)


Geometry = Box | Polygon | Mask


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
        return Mask(dict(data))
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
    """Annotations grouped into objects (same ``group_id``; ungrouped ones alone), in order of first appearance."""
    groups: dict[object, list[Annotation]] = {}
    for a in anns:
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
