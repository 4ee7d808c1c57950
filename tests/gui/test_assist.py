"""The Assist dock on a real window (issue 19): a tiny trained detector proposes boxes for the image on screen;
real keys and clicks accept, reject and undo; pre-labelling respects manual labels; the cache stays bounded."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from engine.config import TrainConfig
from engine.jobs import CancelToken
from engine.train.job import train_job
from gui.assist import feature as assist_feature
from gui.assist.feature import AssistFeature
from gui.canvas.testing import click, key, vp
from gui.main_window import MainWindow

WAIT_MS = 120_000  # a loaded 2-core machine; never a wall-clock assertion
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def trained(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A demo copy with one tiny Faster R-CNN run (a few CPU steps: poor, but it proposes boxes)."""
    root = tmp_path_factory.mktemp("assist") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="faster_rcnn", backbone="tiny", epochs=1, max_steps=4, batch_size=2,
                      max_images=8, min_size=128, max_size=192, device="cpu", augment_color=False,
                      pretrained=False, val_split="", run_name="tiny assist")
    return root, int(train_job(cfg.to_dict(), lambda event: None, CancelToken())["run_id"])


@pytest.fixture()
def win(qtbot, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    root = tmp_path / "project"
    shutil.copytree(trained[0], root)
    w = MainWindow(root)
    qtbot.addWidget(w)
    w.resize(1280, 900)
    for d in w.host.docks(Qt.DockWidgetArea.RightDockWidgetArea):  # the canvas gets the width (chips need room)
        d.hide()
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.canvas.setFocus()
    qtbot.waitUntil(lambda: w.session.image_id is not None, timeout=10_000)
    return w


def _assist(qtbot, w: MainWindow, run_id: int) -> AssistFeature:
    """Pick the run (suggestions of any score) and wait for the current image's suggestions."""
    a = w.assist
    a.show()
    a.panel.min_score.setValue(0.0)
    image_id = w.session.image_id
    with qtbot.waitSignal(a.job_done, timeout=WAIT_MS, check_params_cb=lambda name: name == "suggest"):
        a.set_run(run_id)
    qtbot.waitUntil(lambda: "suggest" not in a.jobs, timeout=WAIT_MS)
    assert a.session.image_id == image_id
    return a


def _unlabeled_image_with_suggestions(qtbot, w: MainWindow, a: AssistFeature) -> int:
    """Go to an image without annotations (the demo's unlabeled ones) and wait for its suggestions."""
    store = w.session.store
    labeled = set(store.annotation_counts())
    target = next(im.id for im in store.images() if im.id not in labeled)
    w.session.request_image(target)
    qtbot.waitUntil(lambda: w.session.image_id == target and "suggest" not in a.jobs and bool(a.pending),
                    timeout=WAIT_MS)
    if len(a.pending) > 8:  # a barely trained model proposes dozens: show the best few (chips need <= 60)
        a.panel.min_score.setValue(math.floor(a.pending[7].score * 1000) / 1000)
        qtbot.waitUntil(lambda: "suggest" not in a.jobs, timeout=WAIT_MS)
    assert 0 < len(a.pending) <= 60
    return target


def _off_chips(w: MainWindow, a: AssistFeature) -> list[tuple[float, float]]:
    """Three image points spanning a triangle whose clicks land on no score chip (a chip click accepts)."""
    iw, ih = w.canvas.image_size()
    t = w.canvas.viewportTransform()

    def clear(x: float, y: float) -> bool:  # no chip within 3 px of where the click lands
        p = vp(w.canvas, x, y)
        near = ((dx, dy) for dx in (-3, 0, 3) for dy in (-3, 0, 3))
        return all(a.layer.chip_at(QPointF(p.x() + dx, p.y() + dy), t) is None for dx, dy in near)

    free = [(fx * iw, fy * ih) for fy in np.linspace(0.05, 0.95, 12) for fx in np.linspace(0.05, 0.95, 12)
            if clear(fx * iw, fy * ih)]
    for p, q, r in itertools.combinations(free, 3):
        if abs((q[0] - p[0]) * (r[1] - p[1]) - (r[0] - p[0]) * (q[1] - p[1])) > 0.1 * iw * ih:
            return [p, q, r]
    raise AssertionError("no room for a polygon between the chips")


def test_suggestions_appear_enter_accepts_ctrl_z_undoes(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    image_id = _unlabeled_image_with_suggestions(qtbot, win, a)
    prov = f"model:{trained[1]}"
    store = win.session.store
    pending = store.suggestions(image_id, provenance=prov)
    assert pending and len(a.layer.entries) == len([s for s in a.pending if s.geometry is not None])
    assert a.layer.scene() is win.canvas.scene() and a.layer.isVisible()
    qtbot.waitUntil(lambda: a.layer.last_paint["drawn"] > 0, timeout=10_000)  # drawn on the canvas
    first = a.current
    assert first == a.pending[0].id  # the best score is current
    best = a.pending[0]

    win.canvas.setFocus()
    key(win.canvas, Qt.Key.Key_Return)  # Enter: accept the current suggestion
    anns = store.annotations(image_id)
    assert len(anns) == 1
    ann = anns[0]
    assert ann.provenance == prov and ann.score == pytest.approx(best.score)
    assert ann.category_id == best.category_id and ann.bbox() == pytest.approx(best.geometry.bbox())
    assert store.suggestion(first).state == "accepted" and store.suggestion(first).annotation_id == ann.id
    assert ann.id in win.annotations.items  # the canvas shows it as a normal shape
    assert first not in a.layer.ids() and a.current != first  # the next one is current
    assert win.labeling.stack.undoText() == "Accept suggestion"  # one command on the labeling history
    assert store.assist_stats(trained[1])["accepted_unchanged"] == 1

    key(win.canvas, Qt.Key.Key_Z, CTRL)  # undo
    assert store.annotations(image_id) == []
    assert store.suggestion(first).state == "suggested" and ann.id not in win.annotations.items
    assert first in a.layer.ids()
    assert store.assist_stats(trained[1])["accepted_unchanged"] == 0
    key(win.canvas, Qt.Key.Key_Z, CTRL | SHIFT)  # redo: the same annotation id again
    assert [x.id for x in store.annotations(image_id)] == [ann.id]
    assert ann.id in win.annotations.items


def test_reject_is_undoable_and_keys_do_not_clash(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    image_id = _unlabeled_image_with_suggestions(qtbot, win, a)
    store = win.session.store
    sid = a.current
    key(win.canvas, Qt.Key.Key_Delete)  # Del: reject
    assert store.suggestion(sid).state == "rejected" and sid not in a.layer.ids()
    assert store.assist_stats(trained[1])["rejected"] == 1 and store.annotations(image_id) == []
    key(win.canvas, Qt.Key.Key_Z, CTRL)
    assert store.suggestion(sid).state == "suggested" and sid in a.layer.ids()

    if len(a.pending) > 1:  # Backspace rejects too
        a.set_current(a.pending[1].id)
        other = a.current
        key(win.canvas, Qt.Key.Key_Backspace)
        assert store.suggestion(other).state == "rejected"
        key(win.canvas, Qt.Key.Key_Z, CTRL)
        assert store.suggestion(other).state == "suggested"

    # a click on the score chip accepts that suggestion
    t = win.canvas.viewportTransform()
    s = next(x for x in reversed(a.pending)
             if x.geometry is not None and a.layer.chip_at(a.chip_center(x.id), t) == x.id)  # a chip on top
    pos = a.chip_center(s.id)
    QTest.mouseClick(win.canvas.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, pos.toPoint())
    assert store.suggestion(s.id).state == "accepted"
    ann_id = store.suggestion(s.id).annotation_id
    assert ann_id in win.annotations.items

    # with a shape selected, Del is labeling's: the shape goes, the suggestions stay
    win.labeling.layer.select([ann_id])
    n_pending = len(a.pending)
    key(win.canvas, Qt.Key.Key_Delete)
    assert ann_id not in {x.id for x in store.annotations(image_id)} and len(a.pending) == n_pending

    # while a polygon is being drawn, Enter closes the polygon (not an accept); the best suggestion stays shown
    a.panel.min_score.setValue(math.floor(a.pending[0].score * 1000) / 1000)
    qtbot.waitUntil(lambda: "suggest" not in a.jobs, timeout=WAIT_MS)
    assert a.has_current()
    key(win.canvas, Qt.Key.Key_P)
    for x, y in _off_chips(win, a):
        click(win.canvas, x, y)
    before = len(store.suggestions(image_id))
    key(win.canvas, Qt.Key.Key_Return)
    assert any(x.geometry.kind == "polygon" for x in store.annotations(image_id))
    assert len(store.suggestions(image_id)) == before
    key(win.canvas, Qt.Key.Key_Escape)

    # Shift+Enter accepts every shown suggestion at or above the slider
    a.panel.min_score.setValue(0.0)
    qtbot.waitUntil(lambda: "suggest" not in a.jobs, timeout=WAIT_MS)
    a.panel.threshold.setValue(0)
    n = len(a.pending)
    key(win.canvas, Qt.Key.Key_Return, SHIFT)
    assert a.pending == [] and len(store.suggestions(image_id, state="accepted")) >= n
    key(win.canvas, Qt.Key.Key_Z, CTRL)
    assert len(a.pending) == n


def test_accept_as_another_category_counts_as_edited(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    image_id = _unlabeled_image_with_suggestions(qtbot, win, a)
    store = win.session.store
    s = a.pending[0]
    other = next(c.id for c in store.categories() if c.id != s.category_id)
    a.panel.accept_as.setCurrentIndex(a.panel.accept_as.findData(other))
    qtbot.mouseClick(a.panel.accept_button, LEFT)
    ann = store.annotations(image_id)[0]
    assert ann.category_id == other and ann.provenance == f"model:{trained[1]}"
    assert store.assist_stats(trained[1])["edited"] == 1
    assert "1 edited" in a.panel.stats.text()


def test_prelabel_skips_images_with_manual_annotations(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    store = win.session.store
    counts = dict(store.annotation_counts())
    anns_before = {im.id: [x.id for x in store.annotations(im.id)] for im in store.images()}
    qtbot.waitUntil(lambda: not win.bridge.is_busy(assist_feature.LANE), timeout=WAIT_MS)
    before = {s.id for s in store.suggestions(state=None)}  # the live ones of the image on screen
    with qtbot.waitSignal(a.job_done, timeout=WAIT_MS, check_params_cb=lambda name: name == "prelabel"):
        a.prelabel("all", 0.0, overwrite=False)
    labeled = set(counts)
    with_sugs = {s.image_id for s in store.suggestions(provenance=f"model:{trained[1]}") if s.id not in before}
    unlabeled = {im.id for im in store.images()} - labeled
    assert with_sugs and with_sugs <= unlabeled  # suggestions only where nothing was labeled
    assert {im.id: [x.id for x in store.annotations(im.id)] for im in store.images()} == anns_before
    assert f"{len(labeled)} skipped" in a.panel.progress.format()
    assert a.panel.progress.value() == a.panel.progress.maximum()


def test_cache_stays_bounded_over_100_image_changes(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    assistant = a.assistant
    ids = [im.id for im in win.session.store.images()]
    sizes = []
    for k in range(100):
        target = ids[(k * 7) % len(ids)]
        win.session.request_image(target)
        qtbot.waitUntil(lambda t=target: win.session.image_id == t and "suggest" not in a.jobs, timeout=WAIT_MS)
        sizes.append(len(assistant))
    qtbot.waitUntil(lambda: not win.bridge.is_busy(assist_feature.LANE), timeout=WAIT_MS)
    assert max(sizes) <= assistant.cache_size == assist_feature.CACHE_SIZE
    assert assistant.predictions_run > assistant.cache_size  # many images went through it: entries were evicted
    assert len(assistant) <= assistant.cache_size

    a.panel.unload_button.click()  # Unload: the model and its cache go (on the lane)
    assert a.assistant is None and a.panel.runs.currentData() is None
    qtbot.waitUntil(lambda: not win.bridge.is_busy(assist_feature.LANE), timeout=WAIT_MS)
    assert len(assistant) == 0 and not assistant.loaded


def test_sort_by_uncertainty_lists_unlabeled_images_and_opens_them(qtbot, win, trained) -> None:
    a = _assist(qtbot, win, trained[1])
    store = win.session.store
    with qtbot.waitSignal(a.job_done, timeout=WAIT_MS, check_params_cb=lambda name: name == "rank"):
        a.rank()
    unlabeled = {im.id for im in store.images()} - set(store.annotation_counts())
    assert a.order is not None and set(a.order) == unlabeled and a.panel.ranked.count() == len(unlabeled)
    item = a.panel.ranked.item(a.panel.ranked.count() - 1)
    rect = a.panel.ranked.visualItemRect(item)
    qtbot.waitUntil(lambda: a.panel.ranked.isVisible(), timeout=5000)
    qtbot.mouseClick(a.panel.ranked.viewport(), LEFT, pos=rect.center())
    qtbot.waitUntil(lambda: win.session.image_id == a.order[-1], timeout=10_000)


def test_the_layer_draws_mask_suggestions_dashed_with_a_chip(qtbot) -> None:
    from PySide6.QtGui import QImage, QPainter, QTransform
    from PySide6.QtWidgets import QGraphicsScene, QStyleOptionGraphicsItem

    from engine.project.shapes import Box, Mask
    from engine.project.store import Suggestion
    from gui.assist.overlay import SuggestionLayer

    m = np.zeros((60, 80), bool)
    m[10:30, 20:50] = True
    m[30:40, 20:30] = True  # an L shape: the outline follows the pixels, not the box
    layer = SuggestionLayer()
    scene = QGraphicsScene()
    scene.addItem(layer)
    layer.set_suggestions([Suggestion(1, "model:3", 0.9, Mask.from_array(m), 1, id=7),
                           Suggestion(1, "model:3", 0.4, Box(np.array([60.0, 45.0, 70.0, 58.0])), 2, id=8),
                           Suggestion(1, "model:3", 0.8, None, None, tag_id=4, id=9)],  # a tag: not drawn
                          {1: "#ff0000", 2: "#00ff00"}, {1: "circle", 2: "square"}, current=7)
    assert layer.ids() == [7, 8]
    mask = layer.entries[0]
    assert mask.outline is not None and mask.fill is not None and mask.label == "circle 0.90"
    assert mask.outline.contains(QPointF(25, 35)) and not mask.outline.contains(QPointF(45, 35))
    img = QImage(160, 120, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(0)
    p = QPainter(img)
    p.setTransform(QTransform.fromScale(2, 2))
    opt = QStyleOptionGraphicsItem()
    opt.exposedRect = layer.boundingRect()
    layer.paint(p, opt)
    p.end()
    assert layer.last_paint["drawn"] == 2
    t = QTransform.fromScale(2, 2)
    assert layer.chip_at(layer._chip(mask, t).center(), t) == 7 and layer.at(25, 35) == 7
