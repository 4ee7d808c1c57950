"""Pascal VOC: ``Annotations/*.xml`` boxes, ``SegmentationClass``/``SegmentationObject`` PNGs, splits.

Coordinates: ``bndbox`` values are read and written as image-pixel coordinates exactly as the
peers we interoperate with (labelme's converter, X-AnyLabeling, Ultralytics' VOC script) use them;
floats are accepted and written when a box is not on whole pixels. (The original devkit counts
pixels from 1; that convention would shift xmin/ymin by one pixel and is not applied.)
``difficult``/``truncated``/``occluded`` set to 1 become ``attributes[name] = True`` (``pose``
too, unless "Unspecified"); 0 and empty elements are the default and are not stored. Each
``<object>`` is one object (a box, plus its ``SegmentationObject`` pixels: value i = i-th object).
Without an object map, a ``SegmentationClass`` map gives one mask per class present, named by ``labels.txt`` (else the
20 VOC classes). ``ImageSets/Main/<split>.txt`` give splits. Export writes all of these plus
``JPEGImages/``; polygons are rasterised into the maps (VOC has no polygons).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from engine.project.shapes import Box, Mask
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
    check_names,
    clip_box,
    digest,
    finite,
    image_file,
    inside,
    never_cancel,
    no_progress,
    read_text,
    split_name,
)
from .exporting import copy_image, export_images, finish_out, fmt_num, prepare_out, region_objects, walk
from .masks import BACKGROUND, VOID, declared, draw_maps, read_index_png, read_names, values_present, write_index_png
from .session import ImportSession

VOC_CLASSES = (BACKGROUND, "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
FLAGS = ("difficult", "truncated", "occluded")


# -- import -------------------------------------------------------------------------------------
def import_voc(store: Store, path: str | Path, options: ImportOptions | None = None,
               progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ImportReport:
    """Import a VOC folder (with ``Annotations/``), an ``Annotations`` folder or one XML file."""
    options = options or ImportOptions()
    path = Path(path)
    if path.is_file():
        files, root = [path], (path.parent.parent if path.parent.name == "Annotations" else path.parent)
    elif (path / "Annotations").is_dir():
        files, root = sorted((path / "Annotations").glob("*.xml")), path
    elif path.is_dir():
        files, root = sorted(path.glob("*.xml")), (path.parent if path.name == "Annotations" else path)
    else:
        raise FormatError(f"no such file or folder: {path}")
    session = ImportSession(store, "voc", root, options, progress, cancelled)
    splits = _splits(root / "ImageSets" / "Main")
    names = options.names or next((read_names(root / n) for n in ("labels.txt", "class_names.txt")
                                   if (root / n).is_file()), None)
    cats = declared(names) if names else []  # a class list given: its categories, in its order
    roots = [r for r in (options.images, root / "JPEGImages", root / "images", root) if r is not None]
    return session.run(files, lambda f: parse_voc(f, root, roots, splits, names or list(VOC_CLASSES), cats,
                                                   session))


def _splits(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if folder.is_dir():
        for f in sorted(folder.glob("*.txt"), key=lambda p: ("train", "val", "test").index(p.stem)
                        if p.stem in ("train", "val", "test") else 9):
            sp = split_name(f.stem)
            if sp:
                for line in read_text(f).splitlines():
                    if line.split():
                        out.setdefault(line.split()[0], sp)
    return out


def parse_voc(file: Path, root: Path, roots: list[Path], splits: dict[str, str], names: list[str],
              categories: list[str], session: ImportSession) -> Unit:
    raw = file.read_bytes()
    try:
        ann = ET.fromstring(raw)
    except ET.ParseError as e:
        raise FormatError(f"bad XML: {e}") from e
    if ann.tag != "annotation":
        raise FormatError(f"root element is <{ann.tag}>, expected <annotation>")
    filename = (ann.findtext("filename") or "").strip()
    if not filename:
        raise FormatError("missing <filename>")
    declared = tuple(_size(ann, k) for k in ("width", "height"))
    img = _find_image(filename, [file.parent, *roots], declared)
    stem = Path(filename).stem
    img.split = splits.get(stem) or splits.get(file.stem)

    def warn(message: str) -> None:
        session.warn(file, message)

    parts: list[bytes] = [raw]
    objs = ann.findall("object")
    for i, ob in enumerate(objs):
        name = (ob.findtext("name") or "").strip()
        what = f"object {i + 1}" + (f" ({name!r})" if name else "")
        if not name:
            raise FormatError(f"{what}: missing <name>")
        bb = ob.find("bndbox")
        if bb is None:
            raise FormatError(f"{what}: missing <bndbox>")
        vals = []
        for k in ("xmin", "ymin", "xmax", "ymax"):
            text = (bb.findtext(k) or "").strip()
            if not text:
                raise FormatError(f"{what}: missing <{k}>")
            try:
                vals.append(float(text))
            except ValueError as e:
                raise FormatError(f"{what}: <{k}> is not a number: {text!r}") from e
        box = clip_box(finite(vals, f"{what}.bndbox"), img.width, img.height, warn, what)
        if box is not None:
            img.shapes.append(ParsedShape(name, Box(box), ("voc", i), None, _attrs(ob, what)))
    for folder in ("SegmentationObject", "SegmentationClass"):
        png = root / folder / f"{stem}.png"
        if png.is_file():
            parts.append(png.read_bytes())
            _segmentation(png, folder, img, objs, names, warn)
            break
    return Unit(file, digest("voc", *parts, img.sha1), [img], categories)


def _size(ann: ET.Element, key: str) -> int | None:
    text = (ann.findtext(f"size/{key}") or "").strip()
    if not text:
        return None
    try:
        v = int(float(text))
    except ValueError as e:
        raise FormatError(f"<size><{key}> is not a number: {text!r}") from e
    return v if v > 0 else None  # 0 = unknown (some tools write it)


def _find_image(filename: str, roots: list[Path], declared: tuple) -> ParsedImage:
    for r in roots:
        p = (r / filename).resolve()
        if not inside(p, r):
            raise FormatError(f"<filename> {filename!r} points outside the image folder {r}")
        if p.is_file():
            return image_file(p, p.relative_to(r.resolve()).as_posix(), declared)
    raise FormatError(f"image not found: {filename!r} (looked in {', '.join(map(str, roots))})")


def _attrs(ob: ET.Element, what: str) -> dict:
    attrs: dict = {}
    for k in FLAGS:
        text = (ob.findtext(k) or "").strip()
        if text:
            if text not in ("0", "1", "true", "false"):
                raise FormatError(f"{what}: <{k}> must be 0 or 1, got {text!r}")
            if text in ("1", "true"):  # 0 is the default: not stored
                attrs[k] = True
    pose = (ob.findtext("pose") or "").strip()
    if pose and pose != "Unspecified":
        attrs["pose"] = pose
    return attrs


def _segmentation(png: Path, folder: str, img: ParsedImage, objs: list, names: list[str],
                  warn: Callable[[str], None]) -> None:
    try:
        index = read_index_png(png)
    except FormatError as e:
        raise FormatError(f"{folder}/{png.name}: {e}") from e
    if index.shape != (img.height, img.width):
        raise FormatError(f"image size mismatch: {folder}/{png.name} is {index.shape[1]}x{index.shape[0]}, "
                          f"the image {img.width}x{img.height}")
    present = [v for v in values_present(index) if v not in (0, VOID)]
    if folder == "SegmentationObject":
        boxes = {sh.group: sh for sh in img.shapes}
        for v in present:
            sh = boxes.get(("voc", v - 1))
            if sh is None:
                warn(f"{folder}/{png.name}: value {v} has no <object> number {v} (or its box was empty); ignored")
                continue
            mask = Mask.from_array(index == v)
            img.shapes.append(ParsedShape(sh.category, mask, sh.group, None, dict(sh.attributes)))
        return
    bad = [v for v in present if v >= len(names)]
    if bad:
        raise FormatError(f"{folder}/{png.name}: unknown class index {bad[0]} (labels list {len(names)} names)")
    for v in present:
        img.shapes.append(ParsedShape(names[v], Mask.from_array(index == v)))


# -- export -------------------------------------------------------------------------------------
def export_voc(store: Store, out: str | Path, split: str | None = None, progress: Progress = no_progress,
               cancelled: CancelCheck = never_cancel) -> ExportReport:
    cats = store.categories()
    check_names([c.name for c in cats], "VOC XML (and labels.txt)")  # refused before anything is written
    out = prepare_out(out, store.root)
    report = ExportReport("voc", str(out))
    if len(cats) > 254:
        raise FormatError(f"{len(cats)} categories do not fit VOC's 8-bit class maps (254 at most)")
    cat_name = {c.id: c.name for c in cats}
    class_index = {c.id: i + 1 for i, c in enumerate(cats)}
    (out / "labels.txt").write_text("\n".join([BACKGROUND, *cat_name.values()]) + "\n", encoding="utf-8")
    report.files.append("labels.txt")
    images = export_images(store, split)
    sets: dict[str, list[str]] = {}
    seg_sets: dict[str, list[str]] = {}
    rasterised = 0
    for rec, name in walk(images, True, report, cancelled, progress):
        stem = Path(name).stem
        if not copy_image(store, rec, out / "JPEGImages" / name, report):
            continue
        objs = region_objects(store.annotations(rec.id), report, rec.path)
        segmented = any(o.segmented for o in objs)
        if len(objs) > 254 and segmented:
            report.warnings.append((rec.path, f"{len(objs)} objects do not fit an 8-bit object map; "
                                              "segmentation not written"))
            segmented = False
        try:
            xml = _xml(name, rec.width, rec.height, objs, cat_name, segmented)
        except FormatError as e:
            report.errors.append((rec.path, f"not exported: {e}"))
            continue
        (out / "Annotations").mkdir(exist_ok=True)
        (out / "Annotations" / f"{stem}.xml").write_bytes(xml)
        report.files += [f"JPEGImages/{name}", f"Annotations/{stem}.xml"]
        sets.setdefault(rec.split, []).append(stem)
        if segmented:
            cls, ins = draw_maps(objs, class_index, rec.height, rec.width, number_all=True)
            write_index_png(out / "SegmentationClass" / f"{stem}.png", cls)
            write_index_png(out / "SegmentationObject" / f"{stem}.png", ins)
            report.files += [f"SegmentationClass/{stem}.png", f"SegmentationObject/{stem}.png"]
            seg_sets.setdefault(rec.split, []).append(stem)
            rasterised += sum(1 for o in objs if o.polygons)
        report.images += 1
        report.annotations += len(objs)
    for folder, table in (("Main", sets), ("Segmentation", seg_sets)):
        for sp, stems in table.items():
            rel = f"ImageSets/{folder}/{sp}.txt"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text("\n".join(stems) + "\n", encoding="utf-8")
            report.files.append(rel)
    if rasterised:
        report.warnings.append(("SegmentationObject", f"{rasterised} polygon object(s) written as pixel masks"))
    progress(len(images), len(images), "done")
    if not report.cancelled:
        finish_out(out)
    return report


def _xml(filename: str, width: int, height: int, objs: list, cat_name: dict[int, str], segmented: bool) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "JPEGImages"
    ET.SubElement(ann, "filename").text = _xml_text(filename, "file name")
    size = ET.SubElement(ann, "size")
    for k, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, k).text = str(v)
    ET.SubElement(ann, "segmented").text = "1" if segmented else "0"
    for ob in objs:
        el = ET.SubElement(ann, "object")
        ET.SubElement(el, "name").text = cat_name[ob.category_id]
        ET.SubElement(el, "pose").text = _xml_text(str(ob.attributes.get("pose", "Unspecified")), "pose")
        for k in FLAGS:
            if k != "occluded" or k in ob.attributes:
                ET.SubElement(el, k).text = "1" if ob.attributes.get(k) else "0"
        bb = ET.SubElement(el, "bndbox")
        for k, v in zip(("xmin", "ymin", "xmax", "ymax"), ob.box):
            ET.SubElement(bb, k).text = fmt_num(v)
    ET.indent(ann)
    return ET.tostring(ann, encoding="utf-8", xml_declaration=True)


def _xml_text(text: str, what: str) -> str:
    """``text`` if XML 1.0 can hold it (no control characters but tab/newline/CR), else FormatError."""
    bad = next((ch for ch in text if (ord(ch) < 32 and ch not in "\t\n\r") or 0xD800 <= ord(ch) <= 0xDFFF
                or ord(ch) in (0xFFFE, 0xFFFF)), None)
    if bad is not None:
        raise FormatError(f"{what} {text!r} contains the character U+{ord(bad):04X}, which XML cannot hold")
    return text
