"""Rendering snapshots of the canvas: what users see must not change silently in a refactor (labelme does this).

Each case draws real canvas items (annotation boxes, polygons, masks, selection look, X-ray overlay layers)
into a 200 x 150 image offscreen and compares it with a committed PNG in ``tests/gui/snapshots/`` within a
tolerance (fonts are never drawn, so the images do not depend on the machine's fonts). After an INTENDED
change of the look, regenerate with ``ANCHORLAB_UPDATE_SNAPSHOTS=1 pytest tests/gui/test_canvas_snapshots.py``
and review the PNGs before committing them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsScene

from engine.project.shapes import Annotation, Box, Mask, Polygon
from engine.project.store import Category
from gui.canvas.annotation_layer import AnnotationLayer
from gui.canvas.items import HandleOverlay
from gui.canvas.overlays import BoxLayer, PointLayer

W, H = 200, 150
SNAPSHOTS = Path(__file__).parent / "snapshots"
CATS = [Category(1, "circle", "#e6194b"), Category(2, "square", "#3cb44b"), Category(3, "blob", "#4363d8")]
MAX_MEAN_DIFF = 1.0  # mean absolute difference per channel (0-255)
MAX_BAD_SHARE = 0.005  # share of pixels differing by more than 48 in some channel


def render(scene: QGraphicsScene) -> QImage:
    img = QImage(W, H, QImage.Format.Format_RGB32)
    img.fill(QColor(40, 40, 44))  # the canvas background
    p = QPainter(img)
    scene.render(p, QRectF(0, 0, W, H), QRectF(0, 0, W, H))
    p.end()
    return img


def pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, :img.width(), :3]


def ann(i: int, cat: int, geometry: Box | Polygon | Mask) -> Annotation:
    return Annotation(image_id=1, category_id=cat, geometry=geometry, id=i)


def annotations_scene(selected: tuple[int, ...] = ()) -> QGraphicsScene:
    scene = QGraphicsScene()
    layer = AnnotationLayer(scene)
    mask = np.zeros((H, W), np.uint8)
    yy, xx = np.mgrid[:H, :W]
    mask[(xx - 150) ** 2 + (yy - 100) ** 2 < 30 ** 2] = 1
    layer.show([ann(1, 1, Box(np.array([10.0, 12.0, 80.0, 60.0]))),
                ann(2, 2, Polygon(np.array([[100.0, 10.0], [190.0, 20.0], [170.0, 60.0], [110.0, 50.0]]))),
                ann(3, 3, Mask.from_array(mask)),
                ann(4, 1, Box(np.array([20.5, 80.5, 60.5, 140.5])))], CATS)
    layer.select(list(selected))
    layer.update_selected_look()
    if len(selected) == 1:
        handles = HandleOverlay()
        scene.addItem(handles)
        handles.set_points(layer.items[selected[0]].handle_points(), 1)
    return scene


def xray_scene() -> QGraphicsScene:
    scene = QGraphicsScene()
    rng = np.random.default_rng(3)
    c = rng.uniform(0, (W, H), (400, 2))
    s = rng.choice([8.0, 16.0, 32.0], 400)[:, None]
    anchors = BoxLayer("anchors", "#ffa500", alpha=110)
    anchors.set_palette(["#ffa500", "#5a8cff", "#00e65a"])
    anchors.set_boxes(np.concatenate([c - s / 2, c + s / 2], 1), rng.integers(0, 3, 400))
    detections = BoxLayer("detections", "#ff2020", z=30, width=2)
    detections.set_boxes(np.array([[30.0, 30.0, 90.0, 80.0], [120.0, 60.0, 180.0, 130.0]]))
    dense = BoxLayer("dense", "#b4b4b4", z=25, dashed=False, alpha=140, vector_limit=0)  # the raster path
    dense.set_boxes(np.array([[5.0 + k, 100.0, 60.0 + k, 145.0] for k in range(0, 40, 4)]))
    grid = PointLayer("roi_grid", "#ff5050", z=35, size=4)
    grid.set_points(np.array([[x, y] for x in range(130, 175, 10) for y in range(70, 125, 10)], float))
    for item in (anchors, detections, dense, grid):
        scene.addItem(item)
    return scene


CASES: dict[str, Callable[[], QGraphicsScene]] = {
    "annotations": annotations_scene,
    "annotations_selected": lambda: annotations_scene(selected=(2,)),
    "xray_layers": xray_scene,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_canvas_rendering_matches_the_snapshot(qtbot, name: str) -> None:
    got = render(CASES[name]())
    path = SNAPSHOTS / f"{name}.png"
    if os.environ.get("ANCHORLAB_UPDATE_SNAPSHOTS"):
        SNAPSHOTS.mkdir(exist_ok=True)
        assert got.save(str(path)), path
    assert path.is_file(), f"no snapshot {path}: run with ANCHORLAB_UPDATE_SNAPSHOTS=1 and review it"
    want = QImage(str(path))
    assert (want.width(), want.height()) == (W, H)
    a, b = pixels(got).astype(np.int16), pixels(want).astype(np.int16)
    diff = np.abs(a - b)
    bad = (diff.max(2) > 48).mean()
    assert diff.mean() <= MAX_MEAN_DIFF and bad <= MAX_BAD_SHARE, (
        f"{name}: mean diff {diff.mean():.2f}, {bad:.2%} pixels differ (see {path})")


def test_snapshots_see_a_changed_look(qtbot) -> None:
    """The tolerance is tight enough to catch a changed colour or a missing layer."""
    scene = annotations_scene()
    for item in scene.items():
        if item.data(0) == 3:
            item.setVisible(False)  # the mask is gone
    a = pixels(render(scene)).astype(np.int16)
    b = pixels(QImage(str(SNAPSHOTS / "annotations.png"))).astype(np.int16)
    assert (np.abs(a - b).max(2) > 48).mean() > MAX_BAD_SHARE
