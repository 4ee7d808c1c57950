"""Shape geometry edits (engine.project.geometry): what the GUI's select tool and brush commands adapt."""

from __future__ import annotations

import numpy as np

from engine.project.geometry import (
    box_handles,
    move_delta,
    nearest_edge,
    paste,
    rasterize_stroke,
    resize_box,
    stroke_delta,
    translate,
)
from engine.project.shapes import Box, Mask, Polygon


def test_translate_keeps_the_kind_and_masks_move_by_whole_pixels() -> None:
    assert np.allclose(translate(Box(np.array([1.0, 2, 3, 4])), 1.5, -1).xyxy, [2.5, 1, 4.5, 3])
    assert np.allclose(translate(Polygon(np.array([[0.0, 0], [4, 0], [0, 4]])), 1, 1).points[0], [1, 1])
    m = np.zeros((6, 8), np.uint8)
    m[1:3, 1:3] = 1
    moved = translate(Mask.from_array(m), 2.4, 10).to_array()  # rounded; rows leaving the image are dropped
    assert moved.sum() == 0
    moved = translate(Mask.from_array(m), 2.4, 1).to_array()
    assert moved[2:4, 3:5].all() and moved.sum() == 4


def test_move_limits_resize_handles_and_edges() -> None:
    assert move_delta(np.array([10.0, 10, 20, 20]), -50, 50, 100, 30) == (-10.0, 10.0)
    assert move_delta(np.array([10.5, 10, 20, 20]), -50.0, 0.4, 100, 30, whole_pixels=True) == (-10.0, 0.0)
    assert np.allclose(resize_box(np.array([0.0, 0, 10, 10]), 2, 4, 3), [0, 0, 4, 3])
    assert np.allclose(resize_box(np.array([0.0, 0, 10, 10]), 0, 12, 12), [10, 10, 12, 12])  # crossed: normalised
    assert box_handles(np.array([0.0, 0, 4, 2])).tolist()[4] == [2.0, 0.0]
    i, q, d = nearest_edge(np.array([[0.0, 0], [10, 0], [10, 10]]), np.array([5.0, 1.0]))
    assert i == 0 and np.allclose(q, [5, 0]) and d == 1.0


def test_strokes_paint_and_erase_a_cropped_delta() -> None:
    x0, y0, crop = rasterize_stroke(np.array([[5.0, 5.0], [15.0, 5.0]]), 2.0, (20, 30))
    assert crop.any() and x0 <= 3 and y0 <= 3
    assert rasterize_stroke(np.array([[-50.0, -50.0]]), 2.0, (20, 30)) is None
    d = stroke_delta((20, 30), np.array([[5.0, 5.0], [15.0, 5.0]]), 2.0, False, None)
    assert d is not None and not d.before.any() and d.after.any() and d.rest_empty and d.full is None
    full = paste((20, 30), d.x0, d.y0, d.after.astype(np.uint8))
    erase = stroke_delta((20, 30), np.array([[5.0, 5.0], [15.0, 5.0]]), 3.0, True, Mask.from_array(full))
    assert erase is not None and not erase.after.any() and erase.rest_empty
    assert stroke_delta((20, 30), np.array([[25.0, 15.0]]), 1.0, True, Mask.from_array(full)) is None  # no change
