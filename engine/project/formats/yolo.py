"""YOLO (Ultralytics layout): ``data.yaml`` + ``images/<split>`` + ``labels/<split>/*.txt``.

Rows: ``cls cx cy w h`` (normalised box; a 6th column is read as a score) or ``cls x1 y1 x2 y2 ...``
(normalised polygon, >= 3 points). One class list (``names``) for the whole project: index k is
the k-th category by id, so indices never drift between files. Import validates the column count,
the class index and the ranges (values beyond [-0.01, 1.01] are an error; small overshoots are
clipped with a warning). An image without a label file is imported without annotations.

Also reads the flat layout other tools write (X-AnyLabeling): ``classes.txt`` + ``labels/*.txt``
next to the images (or ``--images``). Class names come from ``names`` passed in, ``data.yaml``, or
``classes.txt``. Export task ``detect`` writes boxes; ``segment`` writes one polygon per object
(its largest part: masks are traced, box-only objects become rectangles; parts dropped are
reported). The default is ``segment`` when the project has polygons or masks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from engine.project.imageio import is_image_file
from engine.project.shapes import Box, Polygon
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
    clip_box,
    clip_points,
    digest,
    image_file,
    inside,
    never_cancel,
    no_progress,
    read_text,
    relative_name,
    split_name,
)
from .exporting import (
    ObjectOut,
    copy_image,
    export_images,
    finish_out,
    mask_to_polygons,
    prepare_out,
    region_objects,
    walk,
)
from .masks import find_by_stem
from .session import ImportSession

TOLERANCE = 0.01  # normalised values may overshoot [0, 1] by this much (then they are clipped)


# -- import -------------------------------------------------------------------------------------
def import_yolo(store: Store, path: str | Path, options: ImportOptions | None = None,
                progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ImportReport:
    """Import from a ``data.yaml`` (or a folder holding one), or a flat folder with ``classes.txt``."""
    options = options or ImportOptions()
    path = Path(path)
    if not path.exists():
        raise FormatError(f"no such file or folder: {path}")
    cfg_file = path if path.is_file() else next((path / n for n in ("data.yaml", "dataset.yaml", "data.yml")
                                                 if (path / n).is_file()), None)
    cfg = _read_yaml(cfg_file) if cfg_file else {}
    base = cfg_file.parent if cfg_file else path
    root = _dataset_root(cfg, base, options)
    names = options.names or _names(cfg, cfg_file) or _classes_txt(root)
    if not names:
        raise FormatError(f"no class names: need 'names' in data.yaml, a classes.txt in {root}, or names passed in")
    session = ImportSession(store, "yolo", root, options, progress, cancelled)
    if cfg_file and _split_keys(cfg):
        pairs = _layout_pairs(cfg, root, lambda m: session.warn(cfg_file, m))
        _check_shared(pairs, options)
    else:
        pairs = _flat_pairs(root)
    table = {f: (img, sp) for f, img, sp in pairs}
    return session.run(list(table), lambda f: parse_labels(f, *table[f], names, root, options, session))


def _dataset_root(cfg: dict, base: Path, options: ImportOptions) -> Path:
    """The folder ``path:`` names, resolved; refused when it lies outside the folder of data.yaml and
    outside ``--images`` (``path: /etc`` must never scan /etc). A ``path:`` that no longer exists (the
    dataset was moved since data.yaml was written) falls back to the folder of data.yaml."""
    value = cfg.get("path")
    if value is None or value == "":
        return base
    if not isinstance(value, str):
        raise FormatError(f"data.yaml: 'path' must be a folder name, got {type(value).__name__}")
    root = Path(value).expanduser()
    root = (root if root.is_absolute() else base / root).resolve()
    if not root.is_dir():
        return base
    allowed = [base] + ([options.images] if options.images else [])
    if not any(inside(root, a) for a in allowed):
        raise FormatError(f"data.yaml: path {value!r} lies outside the dataset folder {base.resolve()}; refusing "
                          f"to read images there (pass --images {root} to allow it)")
    return root


def _check_shared(pairs: list[tuple[Path, Path | None, str | None]], options: ImportOptions) -> None:
    """Refuse splits that share images (``train`` and ``val`` naming one folder) unless ``--split`` puts every
    image in one split anyway: evaluation would silently measure training images."""
    if options.split:
        return
    first: dict[Path, str | None] = {}
    for _, img, split in pairs:
        if img is None:
            continue
        seen = first.setdefault(img, split)
        if seen != split:
            raise FormatError(f"data.yaml: {seen} and {split} share images (e.g. {img.name}); a split must not "
                              "contain another split's images (give each its own folder, or pass --split)")


def _read_yaml(f: Path) -> dict:
    try:
        cfg = yaml.safe_load(read_text(f))
    except yaml.YAMLError as e:
        raise FormatError(f"{f.name}: bad YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise FormatError(f"{f.name}: expected a mapping with 'names' and split folders")
    return cfg


def _names(cfg: dict, f: Path | None) -> list[str] | None:
    names = cfg.get("names")
    if names is None:
        return None
    if isinstance(names, dict):
        try:
            names = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError) as e:
            raise FormatError(f"{f.name if f else 'data.yaml'}: 'names' keys must be class indices") from e
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise FormatError(f"{f.name if f else 'data.yaml'}: 'names' keys must be 0..{len(keys) - 1}")
        names = [names[k] for k in keys]
    if not isinstance(names, list) or not all(isinstance(n, str | int) for n in names):
        raise FormatError(f"{f.name if f else 'data.yaml'}: 'names' must be a list or a mapping of index to name")
    return [str(n) for n in names]


def _classes_txt(root: Path) -> list[str] | None:
    for cand in (root / "classes.txt", root / "labels" / "classes.txt"):
        if cand.is_file():
            return [ln.strip() for ln in read_text(cand).splitlines() if ln.strip()]
    return None


def _split_keys(cfg: dict) -> list[str]:
    return [k for k in cfg if split_name(str(k)) and isinstance(cfg[k], str | list)]


def _layout_pairs(cfg: dict, root: Path, warn: Callable[[str], None]) -> list[tuple[Path, Path | None, str | None]]:
    """(unit file, image, split) for each image listed by the split keys of data.yaml, plus label files
    without an image (their unit fails with "image not found")."""
    out: list[tuple[Path, Path | None, str | None]] = []
    for key in _split_keys(cfg):
        split = split_name(str(key))
        for entry in cfg[key] if isinstance(cfg[key], list) else [cfg[key]]:
            p = (root / str(entry)).resolve()
            if not inside(p, root):
                raise FormatError(f"data.yaml: {key}: {entry!r} points outside the dataset folder {root}")
            if p.is_dir():
                imgs = sorted(f for f in p.rglob("*") if is_image_file(f))
            elif p.is_file():  # a list of image paths
                imgs = [(root / ln.strip()).resolve() for ln in read_text(p).splitlines() if ln.strip()]
                outside = [i for i in imgs if not inside(i, root)]
                if outside:
                    raise FormatError(f"{p.name}: {outside[0]} points outside the dataset folder {root}")
            else:
                warn(f"{key}: {entry!r} does not exist under {root}; nothing imported for it")
                continue
            labels = {_label_path(i): i for i in imgs}
            out += [(lb if lb.is_file() else i, i, split) for lb, i in labels.items()]
            if p.is_dir():
                lab_dir = _label_path(p / "x").parent
                orphans = sorted(f for f in lab_dir.rglob("*.txt") if f not in labels) if lab_dir.is_dir() else []
                out += [(f, p / f.relative_to(lab_dir).with_suffix(""), split) for f in orphans]
    return out


def _label_path(img: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, the suffix ``.txt``."""
    s = img.as_posix()
    if "/images/" in s:
        head, tail = s.rsplit("/images/", 1)
        s = f"{head}/labels/{tail}"
    return Path(s).with_suffix(".txt")


def _flat_pairs(root: Path) -> list[tuple[Path, Path | None, str | None]]:
    labels_dir = root / "labels" if (root / "labels").is_dir() else root
    files = sorted(f for f in labels_dir.glob("*.txt") if f.name != "classes.txt")
    return [(f, None, None) for f in files]


def parse_labels(file: Path, image: Path | None, split: str | None, names: list[str], root: Path,
                 options: ImportOptions, session: ImportSession) -> Unit:
    if image is None:  # flat layout: find the image by the label file's stem
        allowed = [root] + ([options.images] if options.images else [])
        roots = [r for r in (options.images, root / "images", root, file.parent.parent, file.parent)
                 if r and any(inside(r, a) for a in allowed)]  # never look beside the dataset folder
        found = find_by_stem(file.stem, roots)
        if found is None:
            raise FormatError(f"image not found: no image named {file.stem}.* in {', '.join(map(str, roots))}")
        image = found[0]
    elif not image.suffix and not image.exists():  # a label file in labels/<split> with no image
        raise FormatError(f"image not found: no image named {image.name}.* in {image.parent}")
    img = image_file(image, relative_name(image, [root] + ([options.images] if options.images else [])))
    img.split = split
    if file == image:  # no label file: a background image
        return Unit(file, digest("yolo-image", img.sha1), [img], list(names))
    text = read_text(file)

    def warn(message: str) -> None:
        session.warn(file, message)

    for ln, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if parts:
            shape = _row(parts, f"line {ln}", names, img.width, img.height, warn)
            if shape is not None:
                img.shapes.append(shape)
    return Unit(file, digest("yolo", "\n".join(names), text, img.sha1), [img], list(names))


def _row(parts: list[str], what: str, names: list[str], w: int, h: int,
         warn: Callable[[str], None]) -> ParsedShape | None:
    n = len(parts)
    if n not in (5, 6) and (n < 7 or n % 2 == 0):
        raise FormatError(f"{what}: expected 5 columns (class cx cy w h) or a class and >= 3 x y pairs, got {n}")
    try:
        vals = np.array([float(p) for p in parts])
    except ValueError as e:
        raise FormatError(f"{what}: not a number ({e})") from e
    if not np.all(np.isfinite(vals)):
        raise FormatError(f"{what}: values must be finite numbers")
    if not vals[0].is_integer() or not 0 <= vals[0] < len(names):
        raise FormatError(f"{what}: unknown class index {parts[0]} ({len(names)} classes: 0..{len(names) - 1})")
    label = names[int(vals[0])]
    coords = vals[1:5] if n in (5, 6) else vals[1:]
    if np.any(coords < -TOLERANCE) or np.any(coords > 1 + TOLERANCE):
        raise FormatError(f"{what}: coordinates must be normalised to [0, 1] (<= {1 + TOLERANCE}), "
                          f"got {coords.min():g}..{coords.max():g}")
    if n in (5, 6):
        cx, cy, bw, bh = coords
        if bw < 0 or bh < 0:
            raise FormatError(f"{what}: negative width or height")
        box = clip_box(np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]),
                       w, h, warn, what)
        return None if box is None else ParsedShape(label, Box(box), None, float(vals[5]) if n == 6 else None)
    pts = clip_points(coords.reshape(-1, 2) * [w, h], w, h, warn, what)
    return ParsedShape(label, Polygon(pts))


# -- export -------------------------------------------------------------------------------------
def export_yolo(store: Store, out: str | Path, split: str | None = None, task: str | None = None,
                progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> ExportReport:
    out = prepare_out(out, store.root)
    report = ExportReport("yolo", str(out))
    images = export_images(store, split)
    if task is None:
        kinds = {r[0] for r in store.conn.execute("SELECT DISTINCT kind FROM annotations")}
        task = "segment" if kinds & {"polygon", "mask"} else "detect"
    if task not in ("detect", "segment"):
        raise FormatError(f"unknown YOLO task {task!r}: expected detect or segment")
    cats = store.categories()
    index = {c.id: i for i, c in enumerate(cats)}
    for rec, name in walk(images, False, report, cancelled, progress):
        if not copy_image(store, rec, out / "images" / rec.split / name, report):
            continue
        rows = []
        for ob in region_objects(store.annotations(rec.id), report, rec.path):
            row = _detect_row(ob, rec.width, rec.height) if task == "detect" else \
                _segment_row(ob, rec.width, rec.height, lambda m, p=rec.path: report.warnings.append((p, m)))
            rows.append(f"{index[ob.category_id]} {row}")
        label = f"labels/{rec.split}/{Path(name).with_suffix('.txt')}"
        (out / label).parent.mkdir(parents=True, exist_ok=True)
        (out / label).write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        report.files += [f"images/{rec.split}/{name}", label]
        report.images += 1
        report.annotations += len(rows)
    cfg = {"path": str(out), **{sp: f"images/{sp}" for sp in sorted({r.split for r in images})},
           "names": {i: c.name for i, c in enumerate(cats)}}
    (out / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    report.files.append("data.yaml")
    progress(len(images), len(images), "done")
    if not report.cancelled:
        finish_out(out)
    return report


def _num(v: float) -> str:
    return format(float(v), ".12g")


def _detect_row(ob: ObjectOut, w: int, h: int) -> str:
    x1, y1, x2, y2 = ob.box
    return " ".join(_num(v) for v in ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h))


def _segment_row(ob: ObjectOut, w: int, h: int, warn: Callable[[str], None]) -> str:
    if ob.masks:
        polys, holes = mask_to_polygons(ob.mask(h, w))
        if holes:
            warn(f"an object's mask has {holes} hole(s); a YOLO polygon cannot keep them, so they are filled")
    elif ob.polygons:
        polys = sorted(ob.polygons, key=lambda p: -Polygon(p).area())
    else:
        x1, y1, x2, y2 = ob.box
        polys = [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])]
    if not polys:
        warn("an object's mask has no area; written as its box outline")
        x1, y1, x2, y2 = ob.box
        polys = [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])]
    if len(polys) > 1:
        warn(f"an object has {len(polys)} parts; YOLO keeps one polygon per object, so only the largest "
             "is written")
    return " ".join(_num(v) for v in (polys[0] / [w, h]).reshape(-1))
