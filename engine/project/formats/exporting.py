"""Shared export helpers: output folder checks, image naming/copying, objects from grouped annotations.

An *object* is what every exporter writes once: the annotations of one image that share a
``group_id`` (ungrouped annotations stand alone). Its box is its box annotation's ``xyxy`` (pixel
edges) when it has one, else the bbox of its shapes. Exports never overwrite: the output folder
must be new or empty. Exports hold accepted annotations only (model suggestions live apart, see
``engine.project.suggestions``); ``export_view(store, include_suggested=True)`` adds the pending ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from engine.project.shapes import Annotation, Box, Mask, Polygon, group_annotations, object_box
from engine.project.store import ImageRecord, Store, Suggestion

from .common import CancelCheck, ExportReport, FormatError, Progress, inside

INCOMPLETE = ".anchorlab-export-incomplete"


@dataclass
class ObjectOut:
    """One object. ``box`` (4,) float64 xyxy; ``polygons`` list of (N, 2) float64; ``masks`` RLE masks."""

    category_id: int
    box: np.ndarray
    has_box: bool
    polygons: list[np.ndarray] = field(default_factory=list)
    masks: list[Mask] = field(default_factory=list)
    score: float | None = None
    attributes: dict = field(default_factory=dict)

    @property
    def segmented(self) -> bool:
        return bool(self.polygons or self.masks)

    def mask(self, height: int, width: int) -> np.ndarray | None:
        """(H, W) uint8 {0,1} union of the object's polygons and masks; None for a box-only object."""
        if not self.segmented:
            return None
        m = np.zeros((height, width), np.uint8)
        for p in self.polygons:
            m |= Polygon(p).to_mask(height, width)
        for k in self.masks:
            m |= k.to_array()
        return m


def objects(anns: list[Annotation]) -> list[ObjectOut]:
    """Merge annotations into objects by ``group_id``, in order of first appearance."""
    out = []
    for members in group_annotations(anns):
        has_box = any(isinstance(m.geometry, Box) for m in members)
        polys = [m.geometry.points for m in members if isinstance(m.geometry, Polygon)]
        masks = [m.geometry for m in members if isinstance(m.geometry, Mask)]
        box = object_box(members)
        attrs: dict = {}
        for m in members:
            for k, v in m.attributes.items():
                attrs.setdefault(k, v)
        score = next((m.score for m in members if m.score is not None), None)
        out.append(ObjectOut(members[0].category_id, box, has_box, polys, masks, score, attrs))
    return out


def region_objects(anns: list[Annotation], report: ExportReport, path: str) -> list[ObjectOut]:
    """``objects(anns)`` for a detection format; its points and lines (COCO, VOC and YOLO have no place for
    them) are reported in one warning for ``path``, never dropped silently."""
    marks = sum(a.kind in ("point", "line") for a in anns)
    if marks:
        report.warnings.append((path, f"{marks} point/line annotation(s) not exported: {report.format} has no "
                                      "point or line shapes (the labelme export keeps them)"))
    return objects(anns)


class WithSuggestions:
    """A read view of a store for exporters: ``annotations`` and ``image_tags`` also hold the pending
    suggestions (shapes as ungrouped annotations with their score, tags switched on); everything else
    is the store's own."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _pending(self, image_id: int | None) -> list[Suggestion]:
        return self._store.suggestions(image_id, state="suggested")

    def annotations(self, image_id: int | None = None) -> list[Annotation]:
        shapes = [s.as_annotation() for s in self._pending(image_id) if s.geometry is not None]
        return self._store.annotations(image_id) + shapes

    def image_tags(self, image_id: int) -> set[int]:
        return self._store.image_tags(image_id) | {s.tag_id for s in self._pending(image_id) if s.tag_id is not None}


def export_view(store: Store, include_suggested: bool = False) -> Store:
    """The store an exporter reads: accepted annotations only, or with the pending suggestions too."""
    return WithSuggestions(store) if include_suggested else store  # type: ignore[return-value]


def prepare_out(out: str | Path, project_root: Path) -> Path:
    """Create the output folder; refuse a non-empty one or the project folder itself.

    The folder holds ``INCOMPLETE`` until the exporter calls ``finish_out``: a folder left by an export
    that failed (disk full) or was killed is recognised by it and emptied for the retry.
    """
    out = Path(out).resolve()
    if out == project_root.resolve() or inside(project_root, out):
        raise FormatError(f"refusing to export into {out}: it contains the project")
    if out.exists() and not out.is_dir():
        raise FormatError(f"refusing to overwrite: {out} exists and is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not (out / INCOMPLETE).is_file():
            raise FormatError(f"refusing to overwrite: {out} exists and is not an empty folder")
        clear_out(out)  # our own unfinished export: start again
    out.mkdir(parents=True, exist_ok=True)
    (out / INCOMPLETE).write_text("an AnchorLab export was writing here and did not finish\n", encoding="utf-8")
    return out


def finish_out(out: Path) -> None:
    """Mark an export folder complete (removes the ``INCOMPLETE`` marker)."""
    (out / INCOMPLETE).unlink(missing_ok=True)


def clear_out(out: Path) -> None:
    """Empty an export folder that ``prepare_out`` made (its contents are all ours)."""
    for p in out.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def export_images(store: Store, split: str | None) -> list[ImageRecord]:
    return store.images(split) if split else store.images()


def unique_names(images: list[ImageRecord], flat: bool) -> dict[int, str]:
    """image id -> export name (posix). Keeps sub-folders below ``images/`` unless ``flat``.

    Names never collide, even without their suffix (label files are named after image stems).
    """
    out: dict[int, str] = {}
    used: set[str] = set()
    for rec in images:
        parts = PurePosixPath(rec.path).parts
        parts = parts[1:] if len(parts) > 1 and parts[0] == "images" else parts
        base = PurePosixPath(parts[-1] if flat else "/".join(parts))
        name, n = base, 1
        while str(name.with_suffix("")).lower() in used:
            name = base.with_name(f"{base.stem}_{n}{base.suffix}")
            n += 1
        used.add(str(name.with_suffix("")).lower())
        out[rec.id] = str(name)
    return out


def copy_image(store: Store, rec: ImageRecord, dest: Path, report: ExportReport) -> bool:
    """Copy one project image to ``dest``; a missing/unreadable file is reported and the image skipped."""
    src = store.image_path(rec)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    except OSError as e:
        report.errors.append((rec.path, f"image not exported: cannot copy {src} ({e.strerror or e})"))
        return False
    return True


def mask_to_polygons(mask: np.ndarray, min_area: float = 1.0) -> tuple[list[np.ndarray], int]:
    """(outer contours of a (H, W) mask as (N, 2) float64 polygons in the pixel-edge frame, largest first;
    the number of holes, which polygons cannot keep).

    Traced on a 2x upsampled mask, so vertices sit a quarter pixel inside the boundary: rasterising
    the polygon again (pixel centres) gives back the mask.
    """
    m = np.asarray(mask, np.uint8)
    ys, xs = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    if len(ys) == 0:
        return [], 0
    y0, x0 = int(ys[0]), int(xs[0])
    crop = m[y0:int(ys[-1]) + 1, x0:int(xs[-1]) + 1]
    m2 = np.ascontiguousarray(crop.repeat(2, 0).repeat(2, 1))
    contours, hierarchy = cv2.findContours(m2, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    parents = hierarchy[0][:, 3] if hierarchy is not None else np.zeros(0, int)
    polys = [(c.reshape(-1, 2).astype(np.float64) + 0.5) / 2 + [x0, y0] for c, p in zip(contours, parents) if p < 0]
    polys = [p for p in polys if len(p) >= 3 and Polygon(p).area() >= min_area / 4]
    return sorted(polys, key=lambda p: -Polygon(p).area()), int((parents >= 0).sum())


def fmt_num(v: float) -> str:
    """Shortest text for a coordinate: integers without '.0', otherwise 12 significant digits."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else format(v, ".12g")


def walk(images: list[ImageRecord], flat: bool, report: ExportReport, cancelled: CancelCheck,
         progress: Progress) -> Iterator[tuple[ImageRecord, str]]:
    """The images to export, each with its unique export name (see ``unique_names``).

    Reports progress before each image; stops (``report.cancelled = True``) once ``cancelled()``.
    """
    names = unique_names(images, flat)
    for i, rec in enumerate(images):
        if cancelled():
            report.cancelled = True
            return
        progress(i, len(images), rec.path)
        yield rec, names[rec.id]
