"""Property: any sequence of N edits, then undo all -> the store equals the start; redo all -> the end.

Edits go through the real controller (the calls the tools and panels make) on a real window and store:
boxes, polygons, brush/eraser strokes, moves, vertex edits, deletes, relabels, tag toggles and every
category command. The canvas must show the store after every undo/redo pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.project.geometry import translate
from engine.project.shapes import Box, Polygon
from engine.project.store import Store
from gui.canvas.items import BoxItem, PolygonItem
from gui.main_window import MainWindow

coord = st.floats(2, 150, allow_nan=False)
edit = st.one_of(
    st.tuples(st.just("box"), coord, coord, st.floats(2, 40), st.floats(2, 40)),
    st.tuples(st.just("poly"), st.lists(st.tuples(coord, coord), min_size=3, max_size=6)),
    st.tuples(st.just("stroke"), st.booleans(), st.lists(st.tuples(coord, coord), min_size=1, max_size=4),
              st.integers(1, 12), st.integers(0, 50)),
    st.tuples(st.just("move"), st.integers(0, 50), st.integers(-20, 20), st.integers(-20, 20)),
    st.tuples(st.just("vertex"), st.integers(0, 50), st.integers(0, 9), coord, coord),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("relabel"), st.integers(0, 50), st.integers(0, 5)),
    st.tuples(st.just("tag"), st.integers(0, 5)),
    st.tuples(st.just("cat_add"), st.sampled_from(["star", "blob", "circle"])),
    st.tuples(st.just("cat_rename"), st.integers(0, 5), st.sampled_from(["ring", "dot", "square"])),
    st.tuples(st.just("cat_recolor"), st.integers(0, 5), st.sampled_from(["#102030", "#abcdef"])),
    st.tuples(st.just("cat_merge"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("cat_delete"), st.integers(0, 5)),
)


@pytest.fixture()
def window(qtbot, demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def snapshot(store: Store) -> tuple:
    anns = tuple((a.id, a.image_id, a.category_id, a.kind, str(a.geometry.to_json()), a.group_id, a.provenance,
                  str(a.attributes)) for a in store.annotations())
    return anns, tuple(store.categories()), tuple(sorted((k, tuple(sorted(v))) for k, v in
                                                         store.all_image_tags().items()))


def apply_edit(w: MainWindow, e: tuple) -> None:
    ctl, layer = w.labeling, w.annotations
    items = [layer.items[k] for k in sorted(layer.items)]
    cats = w.store.categories()
    pick = (lambda i: items[i % len(items)]) if items else None
    kind = e[0]
    if kind == "box":
        ctl.add_shape(Box(np.array([e[1], e[2], e[1] + e[3], e[2] + e[4]])), "Add box")
    elif kind == "poly" and Polygon(np.array(e[1])).area() > 0:
        ctl.add_shape(Polygon(np.array(e[1])), "Add polygon")
    elif kind == "stroke":
        ctl.brush_radius = float(e[3])
        masks = [i for i in items if i.annotation.kind == "mask"]
        target = int(masks[-1 - e[4] % len(masks)].data(0)) if masks and (e[1] or e[4] % 2) else None  # newest first
        if e[1] and target is None:
            return
        ctl.paint(np.array(e[2], dtype=float), e[1], target)
    elif kind == "move" and pick:
        it = pick(e[1])
        ctl.update_geometry([(int(it.data(0)), it.annotation.geometry,
                              translate(it.annotation.geometry, e[2], e[3]))], "Move")
    elif kind == "vertex" and pick:
        polys = [i for i in items if isinstance(i, PolygonItem | BoxItem)]
        if polys:
            it = polys[e[1] % len(polys)]
            g = it.annotation.geometry
            if isinstance(g, Polygon):
                pts = g.points.copy()
                pts[e[2] % len(pts)] = (e[3], e[4])
                if Polygon(pts).area() > 0:
                    ctl.update_geometry([(int(it.data(0)), g, Polygon(pts))], "Move vertex")
            else:
                ctl.update_geometry([(int(it.data(0)), g, Box(np.array([*g.xyxy[:2], e[3] + 3, e[4] + 3])))],
                                    "Resize")
    elif kind == "delete" and pick:
        layer.select([int(pick(e[1]).data(0))])
        ctl.delete_selected()
    elif kind == "relabel" and pick and cats:
        ctl.relabel([int(pick(e[1]).data(0))], cats[e[2] % len(cats)].id)
    elif kind == "tag":
        tags = w.store.tags()
        t = tags[e[1] % len(tags)]
        ctl.tags.toggle(t.id, t.id not in w.store.image_tags(w.image_id))
    elif kind.startswith("cat_") and (cats or kind == "cat_add"):
        panel = ctl.labels
        if kind == "cat_add":
            panel.add_category(e[1])
            return
        panel.show_current(cats[e[1] % len(cats)].id)
        if kind == "cat_rename":
            panel.rename_current(e[2])
        elif kind == "cat_recolor":
            panel.recolor_current(e[2])
        elif kind == "cat_merge" and len(cats) > 1:
            target = cats[e[2] % len(cats)].id
            if target != panel.current_id():
                panel.merge_current(target)
        elif kind == "cat_delete":
            panel.delete_current(confirm=False)


def canvas_is_store(w: MainWindow) -> bool:
    stored = {a.id: a for a in w.store.annotations(w.image_id)}
    return set(stored) == set(w.annotations.items) and all(
        str(i.annotation.geometry.to_json()) == str(stored[k].geometry.to_json()) and
        i.annotation.category_id == stored[k].category_id for k, i in w.annotations.items.items())


EVERY_KIND = [("box", 10.0, 12.0, 30.0, 20.0), ("poly", [(40.0, 40.0), (90.0, 45.0), (60.0, 90.0)]),
              ("stroke", False, [(20.0, 100.0), (80.0, 110.0)], 6, 0), ("stroke", False, [(30.0, 30.0)], 9, 1),
              ("stroke", True, [(20.0, 100.0), (50.0, 104.0)], 4, 0), ("move", 3, 7, -5),
              ("vertex", 1, 2, 70.0, 95.0), ("vertex", 0, 0, 120.0, 110.0), ("delete", 2), ("relabel", 4, 1),
              ("tag", 1), ("tag", 3), ("cat_add", "star"), ("cat_rename", 0, "ring"), ("cat_recolor", 1, "#102030"),
              ("cat_merge", 2, 0), ("cat_delete", 1), ("box", 5.0, 5.0, 8.0, 8.0)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(edits=st.lists(edit, min_size=2, max_size=10))
@example(edits=EVERY_KIND)  # every kind of edit, in every run, whatever the random draw
def test_undo_all_restores_start_and_redo_all_restores_end(window: MainWindow, edits: list[tuple]) -> None:
    w, ctl = window, window.labeling
    ctl.stack.clear()
    start = snapshot(w.store)
    seen: list[str] = []
    ctl.runner.failed.connect(seen.append)
    for e in edits:
        apply_edit(w, e)
    ctl.runner.failed.disconnect(seen.append)
    assert all(any(ok in m for ok in EXPECTED_REFUSALS) for m in seen), seen
    end = snapshot(w.store)
    n = ctl.stack.count()
    if edits is EVERY_KIND:
        texts = [ctl.stack.text(i) for i in range(n)]
        assert n == len(EVERY_KIND) and sum(t in ("Paint mask", "Erase mask") for t in texts) == 3, texts
    assert ctl.stack.index() == n
    assert canvas_is_store(w)
    for _ in range(n):
        ctl.undo()
    assert ctl.stack.index() == 0
    assert snapshot(w.store) == start
    assert canvas_is_store(w)
    for _ in range(n):
        ctl.redo()
    assert snapshot(w.store) == end
    assert canvas_is_store(w)
    ctl.ui.banner.hide()


EXPECTED_REFUSALS = ("already exists", "no category to label with")  # the only edits the store may refuse here
