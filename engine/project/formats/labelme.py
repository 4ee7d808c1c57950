"""labelme JSON (one file per image): import every shape type, export files labelme reads back.

Shape types on import:

- ``rectangle``: 2 points (any corner order) or 4 axis-aligned corners (X-AnyLabeling) -> box;
  4 corners of a rotated rectangle -> polygon (with a warning).
- ``polygon`` -> polygon. ``circle`` (centre, point on the rim) -> 64-vertex polygon that keeps
  the circle in ``attributes["labelme"]``, so an unchanged one is exported as a circle again.
- ``mask`` (2 points = inclusive pixel bbox, ``mask`` = base64 PNG of that crop) -> mask.
- ``point`` -> point; ``line`` (2 points) and ``linestrip`` (2 or more) -> line, the type kept in
  ``attributes["labelme"]`` so each is exported as it came. Points and lines are labeling data: the
  detection formats (COCO, VOC, YOLO) and training skip them.
- ``points`` and unknown types have no AnchorLab geometry: inside a ``group_id`` (any label) they are
  kept as data on the first shape of that group, in its ``attributes["labelme_extra"]``, and exported
  again; ungrouped ones are reported as warnings. Nothing is dropped silently.

Shapes with the same ``(label, group_id)`` become one object (labelme's own rule). Other shape
keys (``description``, ``flags``, ``difficult``, ...) go to ``attributes``; ``score`` to the score.
Image ``flags`` become image tags (every flag creates its tag; true ones are set). ``imagePath``
must stay inside the dataset folder (or ``--images``); embedded ``imageData`` is written out as an
image file when ``imagePath`` is missing. Boxes and points are image pixels as labelme stores them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.project.shapes import Box, Geometry, Line, Mask, Point, Polygon
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
    number,
    plain_attributes,
    read_text,
)
from .exporting import copy_image, export_images, finish_out, prepare_out, walk
from .session import ImportSession

SCHEMA_VERSION = "5.7.0"  # the labelme file schema we read and write
CORE_KEYS = ("label", "points", "shape_type", "group_id", "mask", "score")
CIRCLE_VERTICES = 64


# -- import -------------------------------------------------------------------------------------
def import_labelme(store: Store, path: str | Path, options: ImportOptions | None = None,
                   progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ImportReport:
    """Import one labelme JSON or every ``*.json`` below a folder (the dataset folder)."""
    options = options or ImportOptions()
    path = Path(path)
    if path.is_file():
        files, root = [path], path.parent
    elif path.is_dir():
        files, root = sorted(path.rglob("*.json")), path
    else:
        raise FormatError(f"no such file or folder: {path}")
    session = ImportSession(store, "labelme", root, options, progress, cancelled)
    return session.run(files, lambda f: parse_labelme(f, session))


def parse_labelme(file: Path, session: ImportSession) -> Unit:
    raw = file.read_bytes()
    data = load_json(read_text(file))
    if not isinstance(data, dict):
        raise FormatError("expected a JSON object (a labelme file)")
    for key in ("shapes", "imagePath"):
        if key not in data:
            raise FormatError(f"missing key {key!r}")
    if not isinstance(data["shapes"], list):
        raise FormatError("'shapes' must be a list")
    flags = data.get("flags") or {}
    if not isinstance(flags, dict) or not all(isinstance(v, bool) for v in flags.values()):
        raise FormatError("'flags' must map names to true/false")
    img = _image(file, data, session)
    img.tags = {str(k): v for k, v in flags.items()}

    def warn(message: str) -> None:
        session.warn(file, message)

    extras: list[tuple[object, dict]] = []
    for k, s in enumerate(data["shapes"]):
        shape, extra = _shape(s, k, img, warn)
        if shape is not None:
            img.shapes.append(shape)
        if extra is not None:
            extras.append(extra)
    owners: dict[object, ParsedShape] = {}
    for sh in img.shapes:
        if sh.group is not None:
            owners.setdefault(sh.group[1], sh)  # extras ride on the first shape with their group_id
    for group, ex in extras:
        if group in owners:
            owners[group].attributes.setdefault("labelme_extra", []).append(ex)
        else:
            warn(f"shape {ex['index']} ({ex['shape_type']} {ex['label']!r}): AnchorLab has no "
                 f"{ex['shape_type']} geometry; not imported (put it in a group_id with a box or polygon to keep it)")
    return Unit(file, digest("labelme", raw, img.sha1), [img])


def _image(file: Path, data: dict, session: ImportSession) -> ParsedImage:
    ip, idata = data["imagePath"], data.get("imageData")
    if not isinstance(ip, str) or not ip:
        raise FormatError("'imagePath' must be a non-empty string")
    if idata is not None and not isinstance(idata, str):
        raise FormatError("'imageData' must be a base64 string or null")
    declared = tuple(None if data.get(k) is None else integer(data[k], k, 1) for k in ("imageWidth", "imageHeight"))
    roots = [session.root] + ([session.options.images] if session.options.images else [])
    p = (file.parent / ip.replace("\\", "/")).resolve()
    root = next((r.resolve() for r in roots if inside(p, r)), None)
    if root is None:  # never read outside the dataset; embedded pixels need no path
        if not idata:
            raise FormatError(f"imagePath {ip!r} points outside the dataset folder {session.root}")
        name = p.name
    else:
        name = p.relative_to(root).as_posix()
        if not p.is_file() and session.options.images and (session.options.images / p.name).is_file():
            p = session.options.images / p.name
        if p.is_file():
            return image_file(p, name, declared)
        if not idata:
            raise FormatError(f"image not found: {p} (and no embedded imageData)")
    try:
        blob = base64.b64decode(idata, validate=True)
        with Image.open(io.BytesIO(blob)) as im:
            w, h, fmt = im.width, im.height, (im.format or "PNG").lower()
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF-rotated: the size the user sees
                w, h = h, w
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError) as e:
        raise FormatError(f"imageData is not a base64 image ({e})") from e
    if (declared[0] not in (None, w)) or (declared[1] not in (None, h)):
        raise FormatError(f"image size mismatch: the file declares {declared[0]}x{declared[1]} but its "
                          f"imageData is {w}x{h}")
    suffix = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp"}.get(fmt, ".png")
    return ParsedImage(None, str(Path(name).with_suffix(suffix)), w, h, hashlib.sha1(blob).hexdigest(), data=blob)


def _shape(s: object, k: int, img: ParsedImage, warn: Callable[[str], None]) -> tuple[ParsedShape | None, tuple | None]:
    """(shape or None, (group_id, extra-data) or None) for ``shapes[k]``; FormatError if malformed."""
    what = f"shapes[{k}]"
    if not isinstance(s, dict):
        raise FormatError(f"{what}: expected an object")
    label = s.get("label")
    if not isinstance(label, str) or not label.strip():
        raise FormatError(f"{what}.label: expected a non-empty string")
    label = label.strip()
    what = f"{what} ({label!r})"
    stype = s.get("shape_type") or "polygon"
    if not isinstance(stype, str):
        raise FormatError(f"{what}.shape_type: expected a string")
    if not isinstance(s.get("points"), list):
        raise FormatError(f"{what}.points: expected a list of [x, y]")
    pts = finite(s["points"], f"{what}.points") if s["points"] else np.zeros((0, 2))
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise FormatError(f"{what}.points: expected a list of [x, y] pairs")
    gid = s.get("group_id")
    if gid is not None:
        gid = integer(gid, f"{what}.group_id")
    for key in ("flags", "attributes"):
        if s.get(key) is not None and not isinstance(s[key], dict):
            raise FormatError(f"{what}.{key}: expected an object")
    score = None if s.get("score") is None else number(s["score"], f"{what}.score")
    attrs = plain_attributes({key: v for key, v in s.items() if key not in CORE_KEYS and v not in (None, "", [], {})},
                             what)
    group = None if gid is None else (label, gid)
    w, h = img.width, img.height
    if stype == "rectangle":
        geom = _rectangle(pts, what, w, h, warn)
    elif stype == "polygon":
        if len(pts) < 3:
            raise FormatError(f"{what}: a polygon needs at least 3 points, got {len(pts)}")
        geom = Polygon(clip_points(pts, w, h, warn, what))
    elif stype == "circle":
        if len(pts) != 2 or np.allclose(pts[0], pts[1]):
            raise FormatError(f"{what}: a circle needs 2 distinct points (centre, rim)")
        geom = Polygon(clip_points(circle_polygon(pts), w, h, warn, what))
        attrs["labelme"] = {"shape_type": "circle", "points": pts.tolist()}
    elif stype == "mask":
        geom = _mask(s.get("mask"), pts, what, w, h, warn)
    elif stype == "point":
        if len(pts) != 1:
            raise FormatError(f"{what}: a point needs 1 point, got {len(pts)}")
        geom = Point(clip_points(pts, w, h, warn, what)[0])
    elif stype in ("line", "linestrip"):
        if len(pts) < 2:
            raise FormatError(f"{what}: a {stype} needs at least 2 points, got {len(pts)}")
        geom = Line(clip_points(pts, w, h, warn, what))
        attrs["labelme"] = {"shape_type": stype}
    else:
        return None, (gid, {"index": k, "label": label, "shape_type": stype, "points": pts.tolist(),
                              **({"attributes": attrs} if attrs else {})})
    if geom is None:
        return None, None
    return ParsedShape(label, geom, group, score, attrs), None


def _rectangle(pts: np.ndarray, what: str, w: int, h: int, warn: Callable[[str], None]) -> Box | Polygon | None:
    if len(pts) == 4:
        xs, ys = np.unique(np.round(pts[:, 0], 6)), np.unique(np.round(pts[:, 1], 6))
        if len(xs) > 2 or len(ys) > 2:
            warn(f"{what}: the 4 corners are not axis-aligned; kept as a polygon")
            return Polygon(clip_points(pts, w, h, warn, what))
    elif len(pts) != 2:
        raise FormatError(f"{what}: a rectangle needs 2 or 4 points, got {len(pts)}")
    box = clip_box(np.concatenate([pts.min(0), pts.max(0)]), w, h, warn, what)
    return None if box is None else Box(box)


def _mask(b64: object, pts: np.ndarray, what: str, w: int, h: int, warn: Callable[[str], None]) -> Mask | None:
    if not isinstance(b64, str) or not b64:
        raise FormatError(f"{what}: a mask shape needs 'mask' (a base64 PNG)")
    if len(pts) != 2:
        raise FormatError(f"{what}: a mask shape needs 2 points (its box)")
    try:
        with Image.open(io.BytesIO(base64.b64decode(b64, validate=True))) as im:
            crop = np.asarray(im.convert("L")) > 0
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError) as e:
        raise FormatError(f"{what}.mask: not a base64 PNG ({e})") from e
    x1, y1 = (int(v) for v in pts.min(0))  # labelme: astype(int) of the top-left point
    full = np.zeros((h, w), bool)
    ys, xs = slice(max(y1, 0), min(y1 + crop.shape[0], h)), slice(max(x1, 0), min(x1 + crop.shape[1], w))
    full[ys, xs] = crop[ys.start - y1:ys.stop - y1, xs.start - x1:xs.stop - x1]
    if full.sum() != crop.sum():
        warn(f"{what}: mask extends outside the {w}x{h} image; clipped")
    if not full.any():
        warn(f"{what}: mask is empty; not imported")
        return None
    return Mask.from_array(full)


def circle_polygon(pts: np.ndarray, n: int = CIRCLE_VERTICES) -> np.ndarray:
    """(n, 2) vertices on the circle with centre ``pts[0]`` through ``pts[1]``."""
    c = np.asarray(pts[0], np.float64)
    r = float(np.hypot(*(np.asarray(pts[1]) - c)))
    t = np.arange(n) * (2 * np.pi / n)
    return c + r * np.stack([np.cos(t), np.sin(t)], 1)


# -- export -------------------------------------------------------------------------------------
def export_labelme(store: Store, out: str | Path, split: str | None = None, progress: Progress = no_progress,
                   cancelled: CancelCheck = never_cancel) -> ExportReport:
    """Write ``<stem>.json`` next to a copy of each image; ``imageData`` null, flags = all project tags."""
    out = prepare_out(out, store.root)
    report = ExportReport("labelme", str(out))
    images = export_images(store, split)
    cats = {c.id: c.name for c in store.categories()}
    tags = store.tags()
    for rec, name in walk(images, True, report, cancelled, progress):
        if not copy_image(store, rec, out / name, report):
            continue
        on = store.image_tags(rec.id)
        anns = store.annotations(rec.id)
        sizes: dict[int, int] = {}
        for a in anns:
            if a.group_id is not None:
                sizes[a.group_id] = sizes.get(a.group_id, 0) + 1
        local: dict[object, int] = {}
        shapes = []
        for a in anns:
            gid = None
            if a.group_id is not None and sizes[a.group_id] > 1:
                gid = local.setdefault(a.group_id, len(local) + 1)
            elif a.attributes.get("labelme_extra"):  # keep its points/lines in a group with it
                gid = local.setdefault(("a", a.id), len(local) + 1)
            shape = labelme_shape(cats[a.category_id], a.geometry, gid, a.score, a.attributes)
            if shape is None:
                report.warnings.append((rec.path, f"annotation {a.id}: empty mask not exported"))
                continue
            shapes.append(shape)
            for ex in a.attributes.get("labelme_extra", []):
                shapes.append(_shape_dict(ex["label"], ex["points"], ex["shape_type"], gid, None,
                                          ex.get("attributes", {})))
        doc = {"version": SCHEMA_VERSION, "flags": {t.name: t.id in on for t in tags}, "shapes": shapes,
               "imagePath": Path(name).name, "imageData": None, "imageHeight": rec.height, "imageWidth": rec.width}
        stem = Path(name).stem
        doc, bad = json_safe(doc)
        if bad:
            report.warnings.append((rec.path, f"{bad} NaN/Infinity value(s) written as null (JSON has no NaN)"))
        (out / f"{stem}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False),
                                          encoding="utf-8")
        report.files += [name, f"{stem}.json"]
        report.images += 1
        report.annotations += len(shapes)
    progress(len(images), len(images), "done")
    if not report.cancelled:
        finish_out(out)
    return report


def labelme_shape(label: str, geom: Geometry, group_id: int | None, score: float | None,
                  attributes: dict) -> dict | None:
    """One labelme shape dict for a geometry (None for an empty mask)."""
    attrs = {k: v for k, v in attributes.items() if k not in ("labelme", "labelme_extra")}
    mask_b64 = None
    if isinstance(geom, Box):
        stype, pts = "rectangle", [geom.xyxy[:2].tolist(), geom.xyxy[2:].tolist()]
    elif isinstance(geom, Polygon):
        stype, pts = "polygon", geom.points.tolist()
        circle = attributes.get("labelme") or {}
        if circle.get("shape_type") == "circle":
            cp = np.asarray(circle.get("points"), np.float64)
            if cp.shape == (2, 2) and geom.points.shape == (CIRCLE_VERTICES, 2) and np.allclose(
                    circle_polygon(cp), geom.points, atol=1e-9):
                stype, pts = "circle", cp.tolist()
    elif isinstance(geom, Point):
        stype, pts = "point", [geom.xy.tolist()]
    elif isinstance(geom, Line):
        kept = (attributes.get("labelme") or {}).get("shape_type")
        stype = "line" if len(geom.points) == 2 and kept != "linestrip" else "linestrip"
        pts = geom.points.tolist()
    else:
        m = geom.to_array()
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            return None
        x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
        buf = io.BytesIO()
        Image.fromarray(m[y1:y2 + 1, x1:x2 + 1].astype(np.uint8), mode="L").save(buf, format="PNG")
        stype, pts = "mask", [[float(x1), float(y1)], [float(x2), float(y2)]]
        mask_b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return _shape_dict(label, pts, stype, group_id, mask_b64, attrs, score)


def _shape_dict(label: str, points: list, stype: str, group_id: int | None, mask: str | None, attrs: dict,
                score: float | None = None) -> dict:
    d = {"label": label, "points": points, "group_id": group_id, "description": attrs.get("description", ""),
         "shape_type": stype, "flags": attrs.get("flags", {}), "mask": mask}
    for k, v in attrs.items():
        if k not in d:
            d[k] = v
    if score is not None:
        d["score"] = float(score)
    return d
