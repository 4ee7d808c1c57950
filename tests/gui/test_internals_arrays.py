"""Qt-free helpers of the Inside-the-CNN dock: tiles and hits, colour maps, cell boxes, BN tables, the tree."""

from __future__ import annotations

import numpy as np

from gui.internals.arrays import (
    best_cols,
    bn_table,
    cell_rf_box,
    cell_step_box,
    compose_grid,
    grid_layout,
    heatmap_rgba,
    lut,
    page_count,
    pair_text,
    short_names,
    tree_parents,
)


def test_grid_layout_pages_and_hits_round_trip():
    shape = (40, 5, 7)
    assert page_count(40, 16) == 3 and page_count(0, 16) == 1
    last = grid_layout(shape, 2, 16)
    assert (last.first, last.count) == (32, 8) and last.cols * last.rows >= 8
    assert grid_layout(shape, 99, 16) == last  # clamped
    lay = grid_layout(shape, 1, 16)
    assert (lay.first, lay.count, lay.cols, lay.rows) == (16, 16, 4, 4)
    assert (lay.width, lay.height) == (4 * 7 + 3, 4 * 5 + 3)
    for tile in range(lay.count):
        x0, y0 = lay.origin(tile)
        for i, j in ((0, 0), (4, 6), (2, 3)):
            assert lay.hit(x0 + j + 0.5, y0 + i + 0.5) == (16 + tile, i, j)
    assert lay.hit(7.5, 0.5) is None  # the gap column
    assert lay.hit(-1, 0) is None and lay.hit(lay.width + 1, 0) is None
    assert last.hit(*[v + 0.5 for v in last.origin(last.count)]) is None  # past the last tile


def test_best_cols_fills_the_view():
    assert best_cols(16, 10, 10, 400, 400) == 4
    assert best_cols(16, 10, 10, 400, 100) == 8  # a wide view: two rows of eight
    assert best_cols(16, 10, 10, 100, 400) == 2
    assert best_cols(3, 10, 10, 0, 0) == 2  # no view yet: square-ish
    assert grid_layout((20, 4, 4), 0, 16, cols=8).rows == 2


def test_compose_grid_scales_each_channel_and_is_qt_ready():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 3, 4)).astype(np.float32)
    f[1] = 7.0  # a constant channel: no division by zero
    table = lut("gray")
    lay = grid_layout(f.shape, 0, 4)
    img = compose_grid(f, lay, table)
    assert img.dtype == np.uint8 and img.flags["C_CONTIGUOUS"] and img.shape == (lay.height, lay.width, 3)
    x0, y0 = lay.origin(0)
    tile = img[y0:y0 + 3, x0:x0 + 4, 0]
    assert tile.min() == 0 and tile.max() == 255
    expect = np.round((f[0] - f[0].min()) / (f[0].max() - f[0].min()) * 255)
    assert np.abs(tile.astype(int) - expect).max() <= 1
    x1, y1 = lay.origin(1)
    assert np.all(img[y1:y1 + 3, x1:x1 + 4] == 0)
    shared = compose_grid(f, lay, table, shared=True)
    assert np.all(shared[y1:y1 + 3, x1:x1 + 4] == 255)  # the page's maximum


def test_cell_boxes_follow_the_documented_layout():
    a = {"rf_box0": np.array([-10, -12, 20, 18], np.float32), "cell_step": np.array([8, 6], np.float32),
         "cell_center0": np.array([5, 3], np.float32)}
    assert cell_rf_box(a, 0, 0).tolist() == [-10, -12, 20, 18]
    assert cell_rf_box(a, 2, 3).tolist() == [14, 0, 44, 30]
    assert cell_step_box(a, 2, 3).tolist() == [25, 12, 33, 18]


def test_heatmap_rgba_colours_and_alpha():
    cam = np.array([[0.0, 1.0], [0.5, np.nan]], np.float32)
    rgba = heatmap_rgba(cam, lut("inferno"))
    assert rgba.shape == (2, 2, 4) and rgba.dtype == np.uint8 and rgba.flags["C_CONTIGUOUS"]
    assert rgba[0, 1, 3] == 255 and rgba[0, 0, 3] < rgba[1, 0, 3] < 255 and rgba[1, 1, 3] == rgba[0, 0, 3]


def test_bn_table_from_metric_rows():
    rows = [(1, 0, "train", "loss", 1.0), (1, 0, "bn", "bn/a.1/in_mean", 0.5), (1, 0, "bn", "bn/a.1/in_std", 1.5),
            (1, 0, "bn", "bn/b.2/in_mean", 0.25), (3, 0, "bn", "bn/a.1/in_mean", 0.75), (3, 0, "bn", "bn/x", 9.0),
            (3, 0, "bn", "bn/a.1/other", 9.0)]
    t = bn_table(4, rows)
    assert t.run_id == 4 and t.layers == ["a.1", "b.2"] and t.steps.tolist() == [1.0, 3.0]
    assert np.allclose(t.values["in_mean"], [[0.5, 0.75], [0.25, np.nan]], equal_nan=True)
    assert np.isnan(t.values["run_var"]).all() and not t.empty
    assert bn_table(5, rows[:1]).empty


def test_tree_parents_and_texts():
    names = ["backbone", "backbone.stem", "backbone.stem.0", "backbone.stages", "backbone.stages.0.1", "head"]
    assert tree_parents(names) == [-1, 0, 1, 0, 3, -1]
    assert pair_text([4.0, 4.0]) == "4" and pair_text([4, 8]) == "4 × 8" and pair_text([np.nan, np.nan]) == "—"
    assert short_names(["backbone.stem.1", "backbone.stages.0.1"]) == ["stem.1", "stages.0.1"]
    assert short_names(["a.b"]) == ["a.b"]
