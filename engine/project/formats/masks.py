"""Mask PNGs: semantic class maps (palette PNG + colour map), instance maps, and class-map import.

Layout written by ``export_masks`` (and read by ``import_class_maps``)::

    out/labels.txt                 line k = name of class index k (0 = _background_)
    out/colormap.txt               "index name r g b" per class
    out/SegmentationClass/<stem>.png    (H, W) palette PNG, value = class index, 0 background
    out/SegmentationObject/<stem>.png   (H, W) 16-bit PNG, value = object number (1..N), 0 none
    out/images/<name>              the images

Class indices follow the project's category order (by id). Later objects are drawn over earlier
ones where they overlap; box-only objects have no pixels and are not drawn. Index 255 in an
imported class map means "void" (VOC's boundary band) and is ignored.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.project.imageio import IMAGE_SUFFIXES
from engine.project.shapes import Mask
from engine.project.store import Store

from .common import (
    CancelCheck,
    ExportReport,
    FormatError,
    ImportOptions,
    ImportReport,
    ParsedShape,
    Progress,
    Unit,
    check_names,
    digest,
    image_file,
    never_cancel,
    no_progress,
    read_text,
)
from .exporting import ObjectOut, copy_image, export_images, finish_out, objects, prepare_out, walk
from .session import ImportSession

VOID = 255
BACKGROUND = "_background_"
BACKGROUNDS = ("_background_", "__background__", "background")


@functools.lru_cache(maxsize=4)
def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8, read-only: the PASCAL VOC colour map (1 dark red, 2 green, ...; 255 is (224, 224, 192))."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    pal.flags.writeable = False
    return pal


def write_index_png(path: Path, index: np.ndarray) -> None:
    """Write a (H, W) uint8 index map as a palette PNG with the VOC colours."""
    im = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), mode="P")
    im.putpalette(voc_palette().reshape(-1).tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def read_index_png(path: Path) -> np.ndarray:
    """(H, W) int64 indices from a palette, grey or 16-bit PNG; an RGB map is decoded with the VOC colours."""
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L", "I", "I;16"):
                return np.asarray(im).astype(np.int64)
            rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise FormatError(f"not a readable PNG ({e})") from e
    pal = voc_palette().astype(np.int64)
    lut = {int(c[0]) << 16 | int(c[1]) << 8 | int(c[2]): i for i, c in enumerate(pal)}
    codes = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    uniq, inv = np.unique(codes, return_inverse=True)
    unknown = [int(u) for u in uniq if int(u) not in lut]
    if unknown:
        u = unknown[0]
        raise FormatError(f"colour {(u >> 16, (u >> 8) & 255, u & 255)} is not in the VOC colour map")
    return np.array([lut[int(u)] for u in uniq], np.int64)[inv].reshape(codes.shape)


def write_instance_png(path: Path, index: np.ndarray) -> None:
    """Write a (H, W) object-number map as a 16-bit grey PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(index, dtype=np.uint16)):
        raise FormatError(f"cannot write {path}")


def draw_maps(objs: list[ObjectOut], class_index: dict[int, int], height: int, width: int,
              number_all: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """((H, W) uint8 class map, (H, W) uint16 object map) of the segmented objects, drawn in order.

    Object numbers count segmented objects only, or every object (VOC: value i = i-th ``<object>``).
    """
    cls = np.zeros((height, width), np.uint8)
    ins = np.zeros((height, width), np.uint16)
    n = 0
    for ob in objs:
        m = ob.mask(height, width)
        if m is None and not number_all:
            continue
        n += 1
        if m is None:
            continue
        sel = m.astype(bool)
        cls[sel] = class_index[ob.category_id]
        ins[sel] = n
    return cls, ins


def read_names(path: Path) -> list[str]:
    """Class names by index from a labels file; a leading ``__ignore__`` line (labelme's) is dropped."""
    names = [ln.strip() for ln in read_text(path).splitlines() if ln.strip()]
    if names and names[0] == "__ignore__":
        names = names[1:]
    if not names:
        raise FormatError(f"{path.name} lists no class names")
    return names


def export_masks(store: Store, out: str | Path, split: str | None = None, progress: Progress = no_progress,
                 cancelled: CancelCheck = never_cancel) -> ExportReport:
    cats = store.categories()
    check_names([c.name for c in cats], "labels.txt")  # one name per line: refused before anything is written
    out = prepare_out(out, store.root)
    report = ExportReport("masks", str(out))
    if len(cats) > 254:
        raise FormatError(f"{len(cats)} categories do not fit an 8-bit class map (254 at most)")
    class_index = {c.id: i + 1 for i, c in enumerate(cats)}
    names = [BACKGROUND, *(c.name for c in cats)]
    (out / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    pal = voc_palette()
    (out / "colormap.txt").write_text("".join(f"{i} {n} {' '.join(map(str, pal[i]))}\n"
                                              for i, n in enumerate(names)), encoding="utf-8")
    report.files += ["labels.txt", "colormap.txt"]
    images = export_images(store, split)
    for rec, name in walk(images, True, report, cancelled, progress):
        stem = Path(name).stem
        if not copy_image(store, rec, out / "images" / name, report):
            continue
        objs = objects(store.annotations(rec.id))
        cls, ins = draw_maps(objs, class_index, rec.height, rec.width)
        write_index_png(out / "SegmentationClass" / f"{stem}.png", cls)
        write_instance_png(out / "SegmentationObject" / f"{stem}.png", ins)
        report.files += [f"SegmentationClass/{stem}.png", f"SegmentationObject/{stem}.png", f"images/{name}"]
        report.images += 1
        report.annotations += int(ins.max())
        boxes_only = sum(1 for o in objs if not o.segmented)
        if boxes_only:
            report.warnings.append((rec.path, f"{boxes_only} box-only object(s) have no pixels; not in the maps"))
    progress(len(images), len(images), "done")
    if not report.cancelled:
        finish_out(out)
    return report


def import_class_maps(store: Store, path: str | Path, options: ImportOptions | None = None,
                      progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ImportReport:
    """Import semantic class maps: one mask annotation per class present in each map (no instances)."""
    options = options or ImportOptions()
    path = Path(path)
    root = path.parent if path.is_file() else path
    if root.name == "SegmentationClass":
        root = root.parent
    session = ImportSession(store, "masks", root, options, progress, cancelled)
    names = options.names
    if names is None:
        for cand in ("labels.txt", "class_names.txt"):
            if (root / cand).is_file():
                names = read_names(root / cand)
                break
    if names is None:
        raise FormatError(f"no class names: put labels.txt next to the class maps in {root} or pass names")
    if path.is_file():
        files = [path]
    elif (root / "SegmentationClass").is_dir():
        files = sorted((root / "SegmentationClass").glob("*.png"))
    else:
        raise FormatError(f"no SegmentationClass folder in {root}")
    image_roots = [r for r in (options.images, root / "images", root / "JPEGImages", root) if r is not None]
    return session.run(files, lambda f: parse_class_map(f, names, image_roots))


def parse_class_map(file: Path, names: list[str], image_roots: list[Path]) -> Unit:
    index = read_index_png(file)
    found = find_by_stem(file.stem, image_roots)
    if found is None:
        raise FormatError(f"image not found: no image named {file.stem}.* in {', '.join(map(str, image_roots))}")
    img_path, name = found
    img = image_file(img_path, name)
    if index.shape != (img.height, img.width):
        raise FormatError(f"image size mismatch: the map is {index.shape[1]}x{index.shape[0]} but "
                          f"{img_path.name} is {img.width}x{img.height}")
    present = [v for v in values_present(index) if v not in (0, VOID)]
    bad = [v for v in present if v >= len(names)]
    if bad:
        raise FormatError(f"unknown class index {bad[0]}: labels list {len(names)} names (0..{len(names) - 1})")
    for v in present:
        img.shapes.append(ParsedShape(names[v], Mask.from_array(index == v)))
    return Unit(file, digest("masks", file.read_bytes(), "\n".join(names), img.sha1), [img], declared(names))


def values_present(index: np.ndarray) -> list[int]:
    """The distinct values of a non-negative (H, W) index map, ascending (bincount: much faster than unique)."""
    if index.size == 0:
        return []
    if index.min() < 0:
        raise FormatError("negative values in an index map")
    return [int(v) for v in np.flatnonzero(np.bincount(index.ravel()))]


def declared(names: list[str]) -> list[str]:
    """The categories a class list declares: all names but the background (index 0 / background names)."""
    return [n for i, n in enumerate(names) if i > 0 and n.lower() not in BACKGROUNDS]


def find_by_stem(stem: str, roots: list[Path]) -> tuple[Path, str] | None:
    """(image path, its name relative to the root it was found in) for ``<root>/<stem>.<image suffix>``."""
    for r in roots:
        for suffix in IMAGE_SUFFIXES:
            for cand in (r / f"{stem}{suffix}", r / f"{stem}{suffix.upper()}"):
                if cand.is_file():
                    return cand, cand.name
    return None
