"""COCO instances JSON: import and export boxes, polygons, RLE masks, ``iscrowd`` and categories.

Storage choice: one COCO annotation becomes one object, i.e. annotations sharing a ``group_id``:
its ``bbox`` as a box annotation plus its segmentation, each polygon of a multi-polygon instance
as its own polygon annotation (vector precision kept; the group makes them one object), an RLE
as one mask annotation. Export merges a group back into one annotation: several polygons stay a
polygon list, any mask part makes the union an RLE; ``bbox`` is the box annotation's (else the
shapes' bbox), ``area`` the segmentation's pixel area (else the box's), ids run 1..N.

Layout: ``out/annotations/instances_<split>.json`` per split and ``out/images/<name>``;
``file_name`` is relative to ``out/images``. Category ids are the project's (a round trip keeps
them: an import recreates a category with its COCO id when that id is free), or 1..K with
``remap``. Import looks for images under ``--images``, the JSON's folder, the dataset folder and
their ``images/`` sub-folders; a JSON named like ``instances_val2017`` gives the split ``val``.
A file with any invalid image or annotation is rejected whole (the error names the entry).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from engine.project.shapes import Box, Mask, Polygon
from engine.project.store import Store

from .common import (
    CancelCheck,
    ExportReport,
    FormatError,
    ImportOptions,
    ImportReport,
    ParsedImage,
    ParsedShape,
    Progress,
    Unit,
    clip_box,
    clip_points,
    digest,
    finite,
    image_file,
    inside,
    integer,
    json_safe,
    load_json,
    never_cancel,
    no_progress,
    plain_attributes,
    read_text,
    split_name,
)
from .exporting import ObjectOut, copy_image, export_images, finish_out, prepare_out, region_objects, unique_names
from .session import ImportSession


# -- import -------------------------------------------------------------------------------------
def import_coco(store: Store, path: str | Path, options: ImportOptions | None = None,
                progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ImportReport:
    """Import one COCO JSON file, or every ``*.json`` in a folder (and its ``annotations/``)."""
    options = options or ImportOptions()
    path = Path(path)
    if path.is_file():
        files, root = [path], path.parent
    elif path.is_dir():
        files = sorted(path.glob("*.json")) + sorted((path / "annotations").glob("*.json"))
        root = path
    else:
        raise FormatError(f"no such file or folder: {path}")
    if root.name == "annotations":
        root = root.parent
    session = ImportSession(store, "coco", root, options, progress, cancelled)
    return session.run(files, lambda f: parse_coco(f, session))


def parse_coco(file: Path, session: ImportSession) -> Unit:
    raw = file.read_bytes()
    data = load_json(read_text(file))
    if not isinstance(data, dict):
        raise FormatError("expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FormatError(f"missing or invalid key {key!r}: expected a list")
    cats = _categories(data["categories"])
    roots = _image_roots(file, session)
    split = next((s for t in re.split(r"[^A-Za-z]+", file.stem) if (s := split_name(t))), None)
    images: dict[int, ParsedImage] = {}
    n = len(data["images"])
    for i, im in enumerate(data["images"]):
        if i % 200 == 0:
            session.progress(i, n, f"{file.name}: image {i}/{n}")
        what = f"images[{i}]"
        if not isinstance(im, dict):
            raise FormatError(f"{what}: expected an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in im:
                raise FormatError(f"{what}: missing key {key!r}")
        iid = integer(im["id"], f"{what}.id")
        if iid in images:
            raise FormatError(f"{what}: duplicate image id {iid}")
        if not isinstance(im["file_name"], str) or not im["file_name"]:
            raise FormatError(f"{what}.file_name: expected a non-empty string")
        w, h = integer(im["width"], f"{what}.width", 1), integer(im["height"], f"{what}.height", 1)
        img = _find_image(im["file_name"], roots, (w, h), what)
        img.split = split
        images[iid] = img
    seen: set[int] = set()
    for j, a in enumerate(data["annotations"]):
        what = f"annotations[{j}]"
        if not isinstance(a, dict):
            raise FormatError(f"{what}: expected an object")
        for key in ("id", "image_id", "category_id"):
            if key not in a:
                raise FormatError(f"{what}: missing key {key!r}")
        aid = integer(a["id"], f"{what}.id")
        what = f"annotation id {aid}"
        if aid in seen:
            raise FormatError(f"{what}: duplicate annotation id")
        seen.add(aid)
        img = images.get(integer(a["image_id"], f"{what}.image_id"))
        if img is None:
            raise FormatError(f"{what}: image_id {a['image_id']} is not in 'images'")
        cid = integer(a["category_id"], f"{what}.category_id")
        if cid not in cats:
            raise FormatError(f"{what}: unknown category_id {cid}")
        img.shapes += _shapes(a, cats[cid], img, what, lambda m: session.warn(file, m))
    session.preferred_ids.update({name: cid for cid, name in cats.items()})
    return Unit(file, digest("coco", raw), list(images.values()), [cats[k] for k in sorted(cats)])


def _categories(items: list) -> dict[int, str]:
    cats: dict[int, str] = {}
    for k, c in enumerate(items):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise FormatError(f"categories[{k}]: expected an object with 'id' and 'name'")
        cid = integer(c["id"], f"categories[{k}].id")
        if not isinstance(c["name"], str) or not c["name"].strip():
            raise FormatError(f"categories[{k}].name: expected a non-empty string")
        if cid in cats:
            raise FormatError(f"categories[{k}]: duplicate category id {cid}")
        if c["name"].strip() in cats.values():
            raise FormatError(f"categories[{k}]: duplicate category name {c['name']!r}")
        cats[cid] = c["name"].strip()
    return cats


def _image_roots(file: Path, session: ImportSession) -> list[Path]:
    cands = [session.options.images, file.parent, file.parent / "images", session.root, session.root / "images"]
    out: list[Path] = []
    for c in cands:
        if c is not None and c.resolve() not in out:
            out.append(c.resolve())
    return out


def _find_image(file_name: str, roots: list[Path], size: tuple[int, int], what: str) -> ParsedImage:
    rel = file_name.replace("\\", "/")
    for r in roots:
        p = (r / rel).resolve()
        if not inside(p, r):
            raise FormatError(f"{what}: file_name {file_name!r} points outside the image folder {r}")
        if p.is_file():
            try:
                return image_file(p, p.relative_to(r).as_posix(), size)
            except FormatError as e:
                raise FormatError(f"{what}: {e}") from e
    raise FormatError(f"{what}: image not found: {file_name!r} (looked in {', '.join(map(str, roots))})")


def _shapes(a: dict, category: str, img: ParsedImage, what: str, warn: Callable[[str], None]) -> list[ParsedShape]:
    """The box and segmentation shapes of one COCO annotation, grouped by the annotation id."""
    group = ("coco", a["id"])
    attrs: dict = {}
    crowd = integer(a.get("iscrowd", 0), f"{what}.iscrowd", 0)
    if crowd:
        attrs["iscrowd"] = 1
    if isinstance(a.get("attributes"), dict):
        attrs.update(plain_attributes(a["attributes"], what))
    score = None if a.get("score") is None else float(finite(a["score"], f"{what}.score"))
    out: list[ParsedShape] = []
    seg = a.get("segmentation")
    if isinstance(seg, list):
        for k, poly in enumerate(seg):
            pts = finite(poly, f"{what}.segmentation[{k}]")
            if pts.ndim != 1 or len(pts) < 6 or len(pts) % 2:
                raise FormatError(f"{what}.segmentation[{k}]: a polygon needs an even number (>= 6) of values")
            pts = clip_points(pts.reshape(-1, 2), img.width, img.height, warn, what)
            out.append(ParsedShape(category, Polygon(pts), group, score, dict(attrs)))
    elif isinstance(seg, dict):
        out.append(ParsedShape(category, _rle(seg, img, what), group, score, dict(attrs)))
    elif seg is not None:
        raise FormatError(f"{what}.segmentation: expected a polygon list or an RLE object")
    if a.get("bbox") is not None:
        b = finite(a["bbox"], f"{what}.bbox")
        if b.shape != (4,) or b[2] < 0 or b[3] < 0:
            raise FormatError(f"{what}.bbox: expected [x, y, width, height] with width, height >= 0")
        box = clip_box(np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]]), img.width, img.height, warn, what)
        if box is not None:
            out.append(ParsedShape(category, Box(box), group, score, dict(attrs)))
    elif not out:
        raise FormatError(f"{what}: has neither 'bbox' nor 'segmentation'")
    return out


def _rle(seg: dict, img: ParsedImage, what: str) -> Mask:
    size, counts = seg.get("size"), seg.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not isinstance(counts, str | list):
        raise FormatError(f"{what}.segmentation: an RLE needs 'size' [h, w] and 'counts'")
    h, w = integer(size[0], f"{what}.size[0]"), integer(size[1], f"{what}.size[1]")
    if (h, w) != (img.height, img.width):
        raise FormatError(f"{what}: RLE size {w}x{h} does not match the {img.width}x{img.height} image")
    runs = [integer(c, f"{what}.segmentation.counts[{k}]", 0) for k, c in enumerate(counts)] \
        if isinstance(counts, list) else rle_counts(counts, what)
    if sum(runs) != h * w:
        raise FormatError(f"{what}: invalid RLE: its counts cover {sum(runs)} pixels, the {w}x{h} mask has {h * w}")
    try:
        rle = mask_utils.frPyObjects(seg, h, w) if isinstance(counts, list) else {"size": [h, w],
                                                                                  "counts": counts.encode()}
        m = mask_utils.decode(rle)
    except Exception as e:
        raise FormatError(f"{what}: invalid RLE ({e})") from e
    return Mask.from_array(m)


def rle_counts(counts: str, what: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``), checked:
    FormatError for a character outside the alphabet, a truncated value or a negative run."""
    out: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise FormatError(f"{what}: invalid RLE: the counts string ends inside a value")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise FormatError(f"{what}: invalid RLE: character {counts[p]!r} is not in the RLE alphabet")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            raise FormatError(f"{what}: invalid RLE: run {len(out)} is negative ({x})")
        out.append(x)
    return out


# -- export -------------------------------------------------------------------------------------
def export_coco(store: Store, out: str | Path, split: str | None = None, remap: bool = False,
                progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ExportReport:
    out = prepare_out(out, store.root)
    report = ExportReport("coco", str(out))
    cats = store.categories()
    cat_id = {c.id: (i + 1 if remap else c.id) for i, c in enumerate(cats)}
    categories = [{"id": cat_id[c.id], "name": c.name, "supercategory": ""} for c in cats]
    all_images = export_images(store, split)
    names = unique_names(all_images, flat=False)
    splits = [split] if split else sorted({r.split for r in all_images})
    ann_id, done = 0, 0
    for sp in splits:
        doc: dict = {"info": {"description": f"AnchorLab export of {store.root.name}", "version": "1.0"},
                     "licenses": [], "images": [], "annotations": [], "categories": categories}
        for rec in (r for r in all_images if r.split == sp):
            if cancelled():
                report.cancelled = True
                return report
            progress(done, len(all_images), rec.path)
            done += 1
            if not copy_image(store, rec, out / "images" / names[rec.id], report):
                continue
            doc["images"].append({"id": rec.id, "file_name": names[rec.id], "width": rec.width,
                                  "height": rec.height})
            for ob in region_objects(store.annotations(rec.id), report, rec.path):
                ann_id += 1
                doc["annotations"].append(coco_annotation(ob, ann_id, rec.id, cat_id[ob.category_id],
                                                          rec.height, rec.width))
        rel = f"annotations/instances_{sp}.json"
        (out / "annotations").mkdir(exist_ok=True)
        doc, bad = json_safe(doc)
        if bad:
            report.warnings.append((rel, f"{bad} NaN/Infinity value(s) written as null (JSON has no NaN)"))
        (out / rel).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
        report.files.append(rel)
        report.images += len(doc["images"])
        report.annotations += len(doc["annotations"])
    report.files += [f"images/{names[r.id]}" for r in all_images if (out / "images" / names[r.id]).is_file()]
    progress(len(all_images), len(all_images), "done")
    finish_out(out)
    return report


def coco_annotation(ob: ObjectOut, ann_id: int, image_id: int, category_id: int, height: int, width: int) -> dict:
    """One COCO annotation dict for an object; ``bbox`` xywh, ``area`` from the geometry."""
    seg: list | dict = []
    area = float((ob.box[2] - ob.box[0]) * (ob.box[3] - ob.box[1]))
    box = ob.box
    if ob.masks:
        m = ob.mask(height, width)
        rle = mask_utils.encode(np.asfortranarray(m))
        area = float(mask_utils.area(rle))
        seg = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        if not ob.has_box:
            x, y, w, h = mask_utils.toBbox(rle)
            box = np.array([x, y, x + w, y + h])
    elif ob.polygons:
        seg = [[float(v) for v in p.reshape(-1)] for p in ob.polygons]
        area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(seg, height, width))))
    x1, y1, x2, y2 = (float(v) for v in box)
    ann = {"id": ann_id, "image_id": image_id, "category_id": category_id, "segmentation": seg,
           "area": area, "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(ob.attributes.get("iscrowd", 0))}
    if ob.score is not None:
        ann["score"] = float(ob.score)
    extra = {k: v for k, v in ob.attributes.items() if k != "iscrowd"}
    if extra:
        ann["attributes"] = extra
    return ann
