"""Compare two projects object by object: the check behind every round trip (export -> import).

Images are matched by file name (exports and imports keep it), objects by category and nearest
box. Boxes are ``xyxy`` image pixels; masks are compared by IoU of the rasterised object. Points and
lines (not objects: no detection format holds them) are compared as (category, kind, vertices).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from engine.project.store import Store

from .exporting import ObjectOut, objects


@dataclass
class ImageView:
    width: int
    height: int
    split: str
    objects: list[ObjectOut]
    marks: list[tuple[str, str, tuple[float, ...]]]  # points and lines: (category, kind, rounded vertices)


def project_view(store: Store) -> dict[str, ImageView]:
    """image file name -> its size, split and objects (category ids replaced by names in ``attributes``)."""
    names = {c.id: c.name for c in store.categories()}
    out = {}
    for rec in store.images():
        anns = store.annotations(rec.id)
        objs = objects(anns)
        for o in objs:
            o.attributes = {**o.attributes, "_category": names[o.category_id]}
        marks = sorted((names[a.category_id], a.kind, tuple(np.round(np.ravel(a.geometry.to_json()), 6).tolist()))
                       for a in anns if a.kind in ("point", "line"))
        out[PurePosixPath(rec.path).name] = ImageView(rec.width, rec.height, rec.split, objs, marks)
    return out


def mask_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 1.0 if a is None and b is None else 0.0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare_projects(a: Store, b: Store, box_atol: float = 1e-6, min_mask_iou: float = 1.0,
                     polygon_atol: float | None = 1e-6, splits: bool = True) -> list[str]:
    """Differences between two projects (empty when they hold the same images, categories and objects).

    ``polygon_atol`` None skips the vertex-by-vertex polygon check (formats that trace masks).
    """
    diffs: list[str] = []
    ca, cb = sorted(c.name for c in a.categories()), sorted(c.name for c in b.categories())
    if ca != cb:
        diffs.append(f"categories differ: {ca} vs {cb}")
    va, vb = project_view(a), project_view(b)
    if set(va) != set(vb):
        diffs.append(f"images differ: only in first {sorted(set(va) - set(vb))[:5]}, "
                     f"only in second {sorted(set(vb) - set(va))[:5]}")
    for name in sorted(set(va) & set(vb)):
        ia, ib = va[name], vb[name]
        if (ia.width, ia.height) != (ib.width, ib.height):
            diffs.append(f"{name}: size {ia.width}x{ia.height} vs {ib.width}x{ib.height}")
            continue
        if splits and ia.split != ib.split:
            diffs.append(f"{name}: split {ia.split} vs {ib.split}")
        if ia.marks != ib.marks:
            diffs.append(f"{name}: points/lines differ: {ia.marks[:3]} vs {ib.marks[:3]}")
        if len(ia.objects) != len(ib.objects):
            diffs.append(f"{name}: {len(ia.objects)} vs {len(ib.objects)} objects")
            continue
        pool = list(ib.objects)
        for oa in ia.objects:
            same = [o for o in pool if o.attributes["_category"] == oa.attributes["_category"]]
            if not same:
                diffs.append(f"{name}: no {oa.attributes['_category']} object to match {oa.box.tolist()}")
                continue
            ob = min(same, key=lambda o: float(np.abs(o.box - oa.box).sum()))
            pool.remove(ob)
            diffs += _object_diffs(name, oa, ob, ia.height, ia.width, box_atol, min_mask_iou, polygon_atol)
    return diffs


def _object_diffs(name: str, oa: ObjectOut, ob: ObjectOut, h: int, w: int, box_atol: float, min_iou: float,
                  polygon_atol: float | None) -> list[str]:
    what = f"{name}: {oa.attributes['_category']} at {np.round(oa.box, 2).tolist()}"
    out = []
    if np.abs(oa.box - ob.box).max() > box_atol:
        out.append(f"{what}: box {oa.box.tolist()} vs {ob.box.tolist()}")
    if oa.segmented != ob.segmented:
        out.append(f"{what}: segmented {oa.segmented} vs {ob.segmented}")
    elif oa.segmented:
        iou = mask_iou(oa.mask(h, w), ob.mask(h, w))
        if iou < min_iou:
            out.append(f"{what}: mask IoU {iou:.4f} < {min_iou}")
        if polygon_atol is not None and not oa.masks and not ob.masks:
            pa, pb = oa.polygons, ob.polygons
            if len(pa) != len(pb) or any(p.shape != q.shape or np.abs(p - q).max() > polygon_atol
                                         for p, q in zip(pa, pb)):
                out.append(f"{what}: polygons differ")
    return out
