"""Deterministic synthetic demo project: shapes on textured backgrounds.

Each image (160-320 px a side) holds 1-6 circles/ellipses, squares/rectangles and triangles of
8-120 px, in varied colours, drawn in order so later shapes occlude earlier ones. Every object is
stored as a ``mask`` annotation (its visible pixels, COCO RLE) and a ``box`` annotation (the exact
bbox of that mask, pixel edges) sharing a ``group_id``. Image tags name the classes present, plus
``crowded`` for 5+ objects. Splits: 70 % train, 15 % val, 15 % test, then a few unlabeled images.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.project.shapes import Annotation, Box, Mask
from engine.project.store import Store

CLASSES = ("circle", "square", "triangle")
COLORS = ("#e6194b", "#3cb44b", "#4363d8")


@dataclass(frozen=True)
class DemoObject:
    """One generated object: class index, visible mask (H, W) bool, box (4,) xyxy pixel edges."""

    cls: int
    mask: np.ndarray
    box: np.ndarray


def default_demo_dir() -> Path:
    env = os.environ.get("ANCHORLAB_DEMO_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "anchorlab" / "demo"


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8: a colour gradient + stripes or blobs + noise."""
    base = rng.uniform(40, 215, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = (xx / w * rng.uniform(-60, 60) + yy / h * rng.uniform(-60, 60))[..., None]
    img = base[None, None, :] + grad
    if rng.random() < 0.5:
        period = rng.uniform(6, 24)
        angle = rng.uniform(0, np.pi)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        img += (stripes * rng.uniform(8, 25))[..., None]
    else:
        blobs = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(3, 9))
        img += (blobs / (blobs.std() + 1e-6) * rng.uniform(8, 25))[..., None]
    img += rng.normal(0, rng.uniform(4, 14), (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """(H, W) uint8 full (unoccluded) mask of one random shape of class ``cls``."""
    size = rng.uniform(8, min(120, 0.7 * min(h, w)))
    aspect = rng.uniform(0.6, 1.6)
    sw, sh = size * np.sqrt(aspect), size / np.sqrt(aspect)
    cx, cy = rng.uniform(sw / 3, w - sw / 3), rng.uniform(sh / 3, h - sh / 3)
    m = np.zeros((h, w), np.uint8)
    angle = rng.uniform(-25, 25)
    if cls == 0:
        cv2.ellipse(m, (round(cx * 16), round(cy * 16)), (round(sw / 2 * 16), round(sh / 2 * 16)),
                    angle, 0, 360, 1, -1, cv2.LINE_8, 4)
    else:
        if cls == 1:
            pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) / 2
        else:
            pts = np.array([[0, -0.5], [0.5, 0.45], [-0.5, 0.45]], np.float64)
            angle = rng.uniform(-180, 180)
        pts = pts * [sw, sh]
        t = np.deg2rad(angle)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        pts = pts @ rot.T + [cx, cy]
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return m


def _colour(rng: np.random.Generator, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A colour that stands out from the background under the mask (distance >= 90)."""
    under = background[mask.astype(bool)].mean(0) if mask.any() else np.full(3, 128.0)
    for _ in range(20):
        c = rng.uniform(0, 255, 3)
        if np.linalg.norm(c - under) >= 90:
            return c
    return 255 - under


def make_image(seed: int, index: int) -> tuple[np.ndarray, list[DemoObject]]:
    """One demo image (H, W, 3) uint8 RGB and its visible objects; fully determined by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    h, w = (int(v) for v in rng.integers(160, 321, 2))
    img = _background(rng, h, w)
    full: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(1, 7))):
        cls = int(rng.integers(0, len(CLASSES)))
        m = _shape_mask(rng, cls, h, w)
        if m.sum() < 30:
            continue
        colour = _colour(rng, img, m)
        shade = np.clip(colour[None, None] + rng.normal(0, 6, (h, w, 3)), 0, 255)
        img = np.where(m[..., None].astype(bool), shade, img).astype(np.uint8)
        full.append((cls, m.astype(bool)))
    objects = []
    covered = np.zeros((h, w), bool)
    for cls, m in reversed(full):  # later shapes are on top
        visible = m & ~covered
        covered |= m
        if visible.sum() < max(20, 0.3 * m.sum()):
            continue
        ys, xs = np.nonzero(visible)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
        objects.append(DemoObject(cls, visible, box))
    return img, list(reversed(objects))


def _split_of(i: int, labeled: int) -> str:
    if i >= labeled:
        return "unassigned"
    r = i % 20
    return "train" if r < 14 else ("val" if r < 17 else "test")


def generate_demo(out: str | Path, images: int = 300, seed: int = 0, unlabeled: int = 12,
                  progress: object = None) -> dict:
    """Write a demo project into ``out`` (created; must not already be a project).

    Returns statistics: ``{"images": N, "objects": M, "class_counts": {name: n}, "splits": {...}}``.
    ``progress``: optional callable(done, total).
    """
    out = Path(out)
    if (out / "anchorlab.sqlite").exists():
        raise FileExistsError(f"{out} is already an AnchorLab project")
    (out / "images").mkdir(parents=True, exist_ok=True)
    total = images + unlabeled
    counts: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    with Store.create(out) as store:
        cats = [store.add_category(n, c) for n, c in zip(CLASSES, COLORS)]
        tag_ids = {t: store.add_tag(t).id for t in (*CLASSES, "crowded")}
        store.set_meta("demo", f"seed={seed} images={images}")
        group = 1
        with store.transaction():
            for i in range(total):
                img, objects = make_image(seed, i)
                rel = f"images/demo_{i:04d}.png"
                cv2.imwrite(str(out / rel), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
                split = _split_of(i, images)
                splits[split] += 1
                image_id = store.add_image(rel, img.shape[1], img.shape[0], "", split)
                if split == "unassigned":
                    continue
                anns = []
                for ob in objects:
                    cat = cats[ob.cls].id
                    anns.append(Annotation(image_id, cat, Mask.from_array(ob.mask), "demo", group_id=group))
                    anns.append(Annotation(image_id, cat, Box(ob.box), "demo", group_id=group))
                    group += 1
                    counts[CLASSES[ob.cls]] += 1
                store.add_annotations(anns)
                present = {CLASSES[o.cls] for o in objects} | ({"crowded"} if len(objects) >= 5 else set())
                for t in present:
                    store.set_image_tag(image_id, tag_ids[t], True)
                if progress is not None:
                    progress(i + 1, total)
    return {"images": total, "objects": sum(counts.values()), "class_counts": dict(counts),
            "splits": dict(splits)}


def ensure_demo(path: str | Path | None = None) -> Path:
    """The demo project folder, generated on first use."""
    p = Path(path) if path else default_demo_dir()
    if not (p / "anchorlab.sqlite").exists():
        generate_demo(p)
    return p
