"""Brush and eraser strokes on instance masks, kept on the undo stack as CROPPED deltas.

A stroke only changes pixels inside its bounding box, so the command keeps the before/after
patch of that box (bit-packed, 1 bit per pixel), never the whole (H, W) mask: a 60 x 400 px
stroke costs ~6 KB of undo memory on any image size. The mask itself is a cropped COCO RLE in the store
(``engine.project.shapes.Mask``): applying a stroke decodes and re-encodes only the union of the mask's
box and the stroke's box, never the (H, W) image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.project.geometry import mask_window, mask_with_patch, stroke_delta
from engine.project.shapes import Annotation, Mask
from engine.project.store import StoreError
from gui.labeling.commands import Change, CommandRunner, StoreCommand


@dataclass(frozen=True)
class Patch:
    """A bit-packed (h, w) bool crop at pixel offset (x0, y0) of an (H, W) mask."""

    x0: int
    y0: int
    shape: tuple[int, int]
    bits: np.ndarray  # packed uint8, ceil(h*w/8) bytes

    @staticmethod
    def pack(x0: int, y0: int, crop: np.ndarray) -> Patch:
        crop = np.asarray(crop, dtype=bool)
        return Patch(int(x0), int(y0), (int(crop.shape[0]), int(crop.shape[1])), np.packbits(crop, axis=None))

    def unpack(self) -> np.ndarray:
        h, w = self.shape
        return np.unpackbits(self.bits, count=h * w).reshape(h, w).astype(bool)

    def window(self) -> tuple[slice, slice]:
        h, w = self.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def nbytes(self) -> int:
        return int(self.bits.nbytes)


class PaintStroke(StoreCommand):
    """Paint (or erase) one stroke into a mask annotation, creating or deleting it as needed.

    ``before``/``after``: (h, w) bool crops at (x0, y0) of the target mask before and after the stroke.
    ``ann``: the target mask annotation, or None to create a new one from ``after``
    (``category_id`` then names its category). ``rest_empty``: no target pixel lies outside the crop,
    so an ``after`` crop with no pixels deletes the annotation (and undo restores it).
    """

    def __init__(self, runner: CommandRunner, image_id: int, size: tuple[int, int], x0: int, y0: int,
                 before: np.ndarray, after: np.ndarray, ann: Annotation | None = None,
                 category_id: int | None = None, rest_empty: bool = False, erase: bool = False,
                 current: np.ndarray | None = None) -> None:
        super().__init__(runner, "Erase mask" if erase else "Paint mask")
        if ann is None and category_id is None:
            raise StoreError("a new mask needs a category")
        self.image_id = image_id
        self.size = (int(size[0]), int(size[1]))  # (H, W)
        self.before = Patch.pack(x0, y0, before)
        self.after = Patch.pack(x0, y0, after)
        self.ann_id = None if ann is None else ann.id
        self.existed = ann is not None
        self.exists_after = bool(np.any(after)) or (self.existed and not rest_empty)
        self._current = current  # the target's decoded (H, W) mask, used once by the first apply, then dropped
        # metadata to re-create the annotation (the pixels come from the patch)
        self.meta = dict(category_id=ann.category_id if ann else category_id,
                         provenance=ann.provenance if ann else "manual", score=ann.score if ann else None,
                         group_id=ann.group_id if ann else None, attributes=dict(ann.attributes) if ann else {},
                         created_at=ann.created_at if ann else 0.0)

    def nbytes(self) -> int:
        """Undo memory held by this command's pixels."""
        return self.before.nbytes() + self.after.nbytes()

    def _only_patch(self, patch: Patch) -> Mask:
        return Mask.from_crop(patch.x0, patch.y0, patch.unpack(), self.size)

    def _recreate(self, patch: Patch) -> None:
        ann = Annotation(image_id=self.image_id, geometry=self._only_patch(patch), id=self.ann_id, **self.meta)
        self.ann_id = self.store.add_annotation(ann)

    def _rewrite(self, expect: Patch, new: Patch) -> None:
        assert self.ann_id is not None
        geom = self.store.annotation(self.ann_id).geometry
        if not isinstance(geom, Mask) or geom.size != self.size:
            raise StoreError(f"annotation {self.ann_id} is no longer a {self.size[1]}x{self.size[0]} mask")
        self._current = None
        if not np.array_equal(mask_window(geom, new.x0, new.y0, *new.shape), expect.unpack()):
            raise StoreError(f"mask {self.ann_id} was changed elsewhere; this stroke cannot be replayed")
        self.store.update_annotation(self.ann_id, geometry=mask_with_patch(geom, new.x0, new.y0, new.unpack()))

    def apply(self) -> None:
        with self.store.transaction():
            if not self.existed:
                self._recreate(self.after)
            elif self.exists_after:
                self._rewrite(self.before, self.after)
            else:
                self._rewrite(self.before, self.after)  # checks the store still matches, then
                self.store.delete_annotations([self.ann_id])  # an emptied mask is removed

    def revert(self) -> None:
        with self.store.transaction():
            if not self.existed:
                self.store.delete_annotations([self.ann_id])
            elif self.exists_after:
                self._rewrite(self.after, self.before)
            else:
                self._recreate(self.before)

    def change(self) -> Change:
        return Change({self.image_id}, {self.ann_id} if self.ann_id is not None else set())


def stroke_command(runner: CommandRunner, image_id: int, size: tuple[int, int], points: np.ndarray, radius: float,
                   erase: bool, target: Annotation | None, category_id: int | None) -> PaintStroke | None:
    """The command for one stroke on an (H, W) = ``size`` image, or None if it would change nothing.

    ``target``: the mask annotation painted into (None: a new instance of ``category_id``). The pixels
    come from ``engine.project.geometry.stroke_delta``; this only wraps them in an undoable command.
    """
    if target is not None and (not isinstance(target.geometry, Mask) or target.geometry.size != tuple(size)):
        raise StoreError(f"annotation {target.id} is not a mask of this image's size {size[1]}x{size[0]}")
    mask = target.geometry if target is not None else None
    d = stroke_delta(size, points, radius, erase, mask)  # type: ignore[arg-type]
    if d is None:
        return None
    return PaintStroke(runner, image_id, size, d.x0, d.y0, d.before, d.after, target, category_id, d.rest_empty,
                       erase, current=d.full)

