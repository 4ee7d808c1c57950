"""The Analytics dock on the demo: charts, the (ln w, ln h) scatter and its lines, selection, k-means anchors,
"Apply to training". Real mouse and key events; every number is compared with ``analyze_project``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.analysis.analyze import analyze_project
from engine.config import TrainConfig
from engine.project.store import Store
from engine.tasks.faster_rcnn import anchor_options

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def _open(qtbot, window):
    feat = window.analytics
    feat.show()
    qtbot.waitUntil(lambda: feat.panel.result is not None and feat.handle is None, timeout=20000)
    return feat, feat.panel


def _vp(scatter, x: float, y: float):
    return scatter.mapFromScene(scatter.vb.mapViewToScene(QPointF(x, y)))


def _drag(widget, a: QPoint, b: QPoint, steps: int = 6) -> None:
    """Press at ``a``, move to ``b`` with the left button held, release. pyqtgraph drops mouse moves closer
    than its rate limit (``mouseRateLimit``, 100 Hz), so the moves are paced like a hand's."""
    QTest.mouseMove(widget, a)
    QTest.mousePress(widget, LEFT, NO_MOD, a)
    for k in range(1, steps + 1):
        QTest.qWait(20)
        p = QPointF(a) + (QPointF(b) - QPointF(a)) * (k / steps)
        ev = QMouseEvent(QEvent.Type.MouseMove, p, QPointF(widget.mapToGlobal(p.toPoint())), Qt.MouseButton.NoButton,
                         LEFT, NO_MOD)
        QApplication.sendEvent(widget, ev)
    QTest.mouseRelease(widget, LEFT, NO_MOD, b)


def _set_k(qtbot, panel, k: int) -> None:
    panel.k.setFocus()
    panel.k.lineEdit().selectAll()
    QTest.keyClicks(panel.k.lineEdit(), str(k))
    QTest.keyClick(panel.k.lineEdit(), Qt.Key.Key_Return)


def test_dock_fills_from_the_demo(qtbot, window, demo_copy):
    feat, panel = _open(qtbot, window)
    expected = analyze_project(demo_copy, None, k=9)
    with Store(demo_copy) as store:
        n_categories = len(store.categories())
    assert panel.class_chart.count == n_categories
    assert len(panel.scatter.points.data) == expected["objects"] == len(expected["points"]["log_wh"])
    assert panel.per_image_chart.count == expected["objects_per_image"]["max"] + 1
    assert panel.size_chart.count == len(expected["size_histogram"]["counts"])
    r = panel.result
    for key in ("max_variance_line", "ols_line"):
        assert r[key] == expected[key]  # the same computation on the same data
    # the drawn lines are these lines
    (mx, my), (dx, dy) = expected["max_variance_line"]["mean"], expected["max_variance_line"]["direction"]
    x, y = panel.scatter.max_var.getData()
    np.testing.assert_allclose(y, my + (x - mx) * dy / dx, rtol=1e-9)
    x, y = panel.scatter.ols.getData()
    np.testing.assert_allclose(y, expected["ols_line"]["intercept"] + expected["ols_line"]["slope"] * x, rtol=1e-9)
    share = f"{expected['max_variance_line']['explained_variance_ratio']:.1%}"
    assert share in panel.lines_label.text()
    assert panel.scatter.anchor_count == 9


def test_rubber_band_lists_images_and_a_click_opens_one(qtbot, window):
    feat, panel = _open(qtbot, window)
    # the offscreen screen is 800 px: float the dock inside it, so no press lands off-screen (Qt clamps those)
    feat.dock.setFloating(True)
    feat.dock.setGeometry(0, 0, 780, 700)
    qtbot.waitUntil(lambda: panel.scatter.width() > 300)
    sc = panel.scatter
    xy = sc.xy
    # a band around the largest boxes (upper right quarter of the cloud)
    cx, cy = np.quantile(xy[:, 0], 0.75), np.quantile(xy[:, 1], 0.75)
    x1, y1 = xy[:, 0].max() + 0.05, xy[:, 1].max() + 0.05
    inside = np.flatnonzero((xy[:, 0] >= cx) & (xy[:, 1] >= cy))
    assert len(inside) > 0
    a, b = _vp(sc, cx, cy), _vp(sc, x1, y1)
    _drag(sc.viewport(), a, b)
    qtbot.waitUntil(lambda: panel.images.count() > 0)
    # exactly the points inside the band the mouse drew (its corners are whole pixels)
    p0, p1 = (sc.vb.mapSceneToView(sc.mapToScene(p)) for p in (a, b))
    lo_x, hi_x = sorted((p0.x(), p1.x()))
    lo_y, hi_y = sorted((p0.y(), p1.y()))
    band = np.flatnonzero((xy[:, 0] >= lo_x) & (xy[:, 0] <= hi_x) & (xy[:, 1] >= lo_y) & (xy[:, 1] <= hi_y))
    assert set(sc.selection.tolist()) == set(band.tolist())
    assert len(set(band.tolist()) ^ set(inside.tolist())) <= 4  # about the quarter aimed at
    ids = {int(i) for i in np.asarray(panel.result["points"]["image_ids"])[sc.selection]}
    listed = [panel.images.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.images.count())]
    assert set(listed) == ids
    target = next(i for i in listed if i != window.image_id)
    row = listed.index(target)
    rect = panel.images.visualItemRect(panel.images.item(row))
    QTest.mouseClick(panel.images.viewport(), LEFT, NO_MOD, rect.center())
    qtbot.waitUntil(lambda: window.image_id == target)
    qtbot.wait(400)  # past the re-run debounce: showing an image must not re-run the analysis
    assert feat.handle is None and panel.images.count() == len(listed)
    assert panel.refresh_button.text() == "Refresh"  # showing an image is no edit


def test_k_change_reruns_and_draws_k_anchors(qtbot, window, demo_copy):
    feat, panel = _open(qtbot, window)
    _set_k(qtbot, panel, 4)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result["kmeans_anchors"]
                    and panel.result["kmeans_anchors"]["k"] == 4 and feat.handle is None, timeout=20000)
    assert panel.scatter.anchor_count == 4
    expected = analyze_project(demo_copy, None, k=4)["kmeans_anchors"]
    np.testing.assert_allclose(panel.result["kmeans_anchors"]["anchors"], expected["anchors"])
    xa, ya = panel.scatter.anchors.getData()
    np.testing.assert_allclose(np.exp(xa), np.asarray(expected["anchors"])[:, 0])
    assert panel.anchor_table.item(1, 0).text() == f"{expected['mean_best_iou']:.3f}"
    assert panel.anchor_table.item(1, 1).text() == f"{expected['recall_at_0_5']:.3f}"


def test_fewer_boxes_than_k_shows_the_reason(qtbot, window, demo_copy):
    feat, panel = _open(qtbot, window)
    panel.split.setCurrentIndex(panel.split.findData("val"))
    qtbot.waitUntil(lambda: feat.handle is None and panel.result is not None and panel.result["split"] == "val",
                    timeout=20000)
    n = panel.result["objects"]
    assert n < panel.k.maximum()
    _set_k(qtbot, panel, n + 1)
    qtbot.waitUntil(lambda: feat.handle is None and panel.result is not None
                    and panel.result.get("anchor_error") is not None, timeout=20000)
    assert f"k={n + 1} anchors need at least {n + 1} boxes" in panel.anchor_label.text()
    assert panel.scatter.anchor_count == 0
    assert not panel.apply_button.isEnabled()
    assert len(panel.scatter.points.data) == n  # the statistics are still there


def test_class_filter_reruns(qtbot, window, demo_copy):
    feat, panel = _open(qtbot, window)
    cid = panel.category.itemData(1)
    panel.category.setCurrentIndex(1)
    qtbot.waitUntil(lambda: feat.handle is None and panel.result is not None
                    and panel.result["categories"] == [cid], timeout=20000)
    expected = analyze_project(demo_copy, None, k=9, categories=[cid])
    assert len(panel.scatter.points.data) == expected["objects"]
    assert set(panel.result["points"]["category_ids"]) == {cid}
    assert panel.result["ols_line"] == pytest.approx(expected["ols_line"])


def test_apply_writes_the_train_settings(qtbot, window, demo_copy):
    feat, panel = _open(qtbot, window)
    suggested = panel.result["kmeans_anchors"]["faster_rcnn"]
    QTest.mouseClick(panel.apply_button, LEFT, NO_MOD, panel.apply_button.rect().center())
    saved = json.loads(window.store.get_meta("train_settings"))
    assert saved["extra"]["anchor_sizes"] == suggested["anchor_sizes"]
    assert saved["extra"]["aspect_ratios"] == suggested["aspect_ratios"]
    # the Train panel shows (and keeps) them, and the Faster R-CNN task builds its anchors from them
    cfg = window.training.train.config()
    assert cfg["extra"]["anchor_sizes"] == suggested["anchor_sizes"]
    opts = anchor_options(TrainConfig(**{**TrainConfig().to_dict(), "extra": cfg["extra"]}))
    assert opts["anchor_sizes"] == tuple(tuple(s) for s in suggested["anchor_sizes"])
    assert opts["aspect_ratios"] == tuple(suggested["aspect_ratios"])
    # the "current anchors" row is now the applied configuration
    qtbot.waitUntil(lambda: feat.handle is None and panel.result["current_anchors"]["anchor_sizes"]
                    == suggested["anchor_sizes"], timeout=20000)
    assert panel.result["current_anchors"]["mean_best_iou"] == pytest.approx(suggested["mean_best_iou"])


def test_an_edit_marks_the_numbers_stale_and_refresh_reruns(qtbot, window):
    from gui.canvas.testing import key

    feat, panel = _open(qtbot, window)
    before = panel.result["objects"]
    window.canvas.setFocus()
    key(window.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    key(window.canvas, Qt.Key.Key_Delete)
    assert panel.refresh_button.text() == "Refresh *"
    QTest.mouseClick(panel.refresh_button, LEFT, NO_MOD, panel.refresh_button.rect().center())
    qtbot.waitUntil(lambda: feat.handle is None and panel.refresh_button.text() == "Refresh", timeout=20000)
    with_objects = window.store.annotation_counts().get(window.image_id, 0)
    assert with_objects == 0
    assert panel.result["objects"] < before
