"""Issue 12: 300 seeded random actions through real mouse and key events (bench/bench_monkey.py runs 2,000).

At the end: no exception was raised (pytest-qt fails the test on one raised in a Qt handler), the store holds
exactly what the canvas shows, undo-all returns the store to its start, and no thread was left behind."""

from __future__ import annotations

import threading

import numpy as np

from gui.canvas.items import BoxItem, MaskItem
from gui.labeling.monkey import Monkey, snapshot
from gui.main_window import MainWindow

ACTIONS = 300


def _canvas_is_store(w: MainWindow) -> None:
    stored = {a.id: a for a in w.store.annotations(w.image_id)}
    items = w.annotations.items
    assert set(items) == set(stored)
    for ann_id, item in items.items():
        a = stored[ann_id]
        assert item.annotation.category_id == a.category_id and item.annotation.group_id == a.group_id
        if isinstance(item, BoxItem):
            np.testing.assert_allclose(item.xyxy(), a.geometry.xyxy)
        elif isinstance(item, MaskItem):
            assert item.pos().x() == item.pos().y() == 0 and item.annotation.geometry == a.geometry
        else:
            np.testing.assert_allclose(item.points(), a.geometry.points)


def test_monkey_300_actions(window: MainWindow, qtbot) -> None:
    w = window
    threads = set(threading.enumerate())
    w.labeling.tags.add_tag("monkey")
    w.labeling.stack.clear()  # the history starts here
    start = snapshot(w.store)
    monkey = Monkey(w.canvas, w.labeling, lambda: w.images.step(1), seed=12,
                    wait_image=lambda: w.images_feature.loader.wait(10))
    counts = monkey.run(ACTIONS)
    assert sum(counts.values()) == ACTIONS and len(counts) >= 15
    w.images_feature.loader.wait(10)
    _canvas_is_store(w)
    ctl = w.labeling
    while ctl.stack.canUndo():
        ctl.undo()
    assert snapshot(w.store) == start
    w.images_feature.loader.wait(10)
    _canvas_is_store(w)
    w.close()
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not extra, extra
