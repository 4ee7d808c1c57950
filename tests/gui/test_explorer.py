"""The "Loss explorer" dock on a real window: key presses on its sliders, clicks on its tabs and button,
curves against ``engine.losses.curves``, and the current run's settings marked from the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSlider

from engine.events import RunFinished
from engine.losses import curves
from gui.explorer.dock import ALPHA_OFF, GAMMAS, P_T, LossExplorerDock, X
from gui.main_window import MainWindow

LEFT = Qt.MouseButton.LeftButton


def _open(qtbot, w: MainWindow, tab: str) -> LossExplorerDock:
    """Raise the dock and click the tab titled ``tab``."""
    feat = w.explorer
    if not feat.dock.isVisible():  # hidden at first: View menu opens it
        feat.dock.toggleViewAction().trigger()
    feat.dock.raise_()
    panel = feat.panel
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=5000)
    bar = panel.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == tab)
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(index).center())
    assert panel.tabs.currentIndex() == index
    return panel


def _keys(qtbot, slider: QSlider, key: Qt.Key, n: int = 1) -> None:
    """Give ``slider`` the keyboard focus, then press ``key`` ``n`` times."""
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus, timeout=2000)
    for _ in range(n):
        qtbot.keyClick(slider, key)


def _ydata(item: object) -> np.ndarray:
    """The curve's full data (``getData`` would be the part clipped to the view)."""
    return np.asarray(item.yData, dtype=np.float64)


def test_alpha_slider_changes_focal_curves_and_matches_engine(window: MainWindow, qtbot) -> None:
    panel = _open(qtbot, window, "Focal vs CE")
    slider = panel.alpha_slider
    before = {g: _ydata(item) for g, item in panel.focal_curves.items()}
    alpha0 = panel.alpha()
    with qtbot.waitSignal(slider.valueChanged):
        _keys(qtbot, slider, Qt.Key.Key_Right, 5)
    alpha = panel.alpha()
    assert alpha is not None and alpha != alpha0
    assert alpha == pytest.approx((alpha0 or 0) + 0.05)
    for g, item in panel.focal_curves.items():
        x, y = item.xData, item.yData
        np.testing.assert_array_equal(x, P_T)
        np.testing.assert_allclose(y, curves.focal_curve(P_T, g, alpha), rtol=1e-12)
        assert not np.allclose(y, before[g])
    assert panel.alpha_label.text() == f"α = {alpha:.2f}"

    _keys(qtbot, slider, Qt.Key.Key_PageUp)  # +0.10
    assert panel.alpha() == pytest.approx(alpha + 0.10)
    np.testing.assert_allclose(_ydata(panel.focal_curves[2.0]), curves.focal_curve(P_T, 2.0, alpha + 0.10))


def test_gamma0_alpha_off_is_cross_entropy(window: MainWindow, qtbot) -> None:
    panel = _open(qtbot, window, "Focal vs CE")
    _keys(qtbot, panel.alpha_slider, Qt.Key.Key_Home)  # leftmost notch: alpha = -1, no weighting
    assert panel.alpha_slider.value() == ALPHA_OFF and panel.alpha() is None
    assert "off" in panel.alpha_label.text()
    np.testing.assert_allclose(_ydata(panel.focal_curves[0.0]), curves.ce_curve(P_T), rtol=1e-12)
    # focal down-weights easy examples: every gamma > 0 lies below CE, more so for larger gamma
    ce = curves.ce_curve(P_T)
    prev = ce
    for g in GAMMAS[1:]:
        y = _ydata(panel.focal_curves[g])
        assert np.all(y <= prev + 1e-15) and np.all(y[P_T < 1] < ce[P_T < 1])
        prev = y


def test_beta_slider_changes_smooth_l1_and_its_gradient(window: MainWindow, qtbot) -> None:
    panel = _open(qtbot, window, "Smooth L1")
    slider = panel.beta_slider
    before = _ydata(panel.smooth_curve)
    beta0 = panel.beta()
    _keys(qtbot, slider, Qt.Key.Key_PageDown, 3)  # -0.30
    beta = panel.beta()
    assert beta == pytest.approx(max(0.0, beta0 - 0.30))
    np.testing.assert_allclose(_ydata(panel.smooth_curve), curves.smooth_l1_curve(X, beta), rtol=1e-12)
    np.testing.assert_allclose(_ydata(panel.smooth_grad_curve), curves.smooth_l1_grad(X, beta), rtol=1e-12)
    assert not np.allclose(_ydata(panel.smooth_curve), before)
    np.testing.assert_allclose(_ydata(panel.l1_curve), curves.l1_curve(X))
    np.testing.assert_allclose(_ydata(panel.l2_grad_curve), curves.l2_grad(X))
    _keys(qtbot, slider, Qt.Key.Key_Home)  # beta = 0 is L1
    assert panel.beta() == 0.0
    np.testing.assert_allclose(_ydata(panel.smooth_curve), curves.l1_curve(X))


def test_logit_sliders_and_targets_drive_sigmoid_and_softmax(window: MainWindow, qtbot) -> None:
    panel = _open(qtbot, window, "Sigmoid vs softmax")
    _keys(qtbot, panel.logit_sliders[1], Qt.Key.Key_PageUp, 2)  # class 1: -1.0 -> +1.0
    z = panel.logits()
    assert z[1] == pytest.approx(1.0)
    box = panel.present_boxes[1]
    qtbot.mouseClick(box, LEFT, pos=box.rect().center())
    assert box.isChecked()
    y = panel.present()
    np.testing.assert_allclose(panel.sigmoid_bars.opts["height"], curves.sigmoid(z))
    np.testing.assert_allclose(panel.softmax_bars.opts["height"], curves.softmax(z))
    np.testing.assert_allclose(panel.bce_grad_bars.opts["height"], curves.sigmoid_bce_grad(z, y))
    np.testing.assert_allclose(panel.ce_grad_bars.opts["height"], curves.softmax_ce_grad(z, panel.target()))
    assert f"{curves.sigmoid_bce(z, y).sum():.3f}" in panel.class_table.text()
    assert f"{curves.softmax_ce(z, panel.target()):.3f}" in panel.class_table.text()


def test_run_marker_shows_the_latest_runs_options(window: MainWindow, qtbot) -> None:
    panel = _open(qtbot, window, "Focal vs CE")
    store = window.session.store
    assert store is not None
    assert "this run" in panel.run_focal_label.toPlainText()  # defaults or saved settings before any run
    cfg = {"model": "faster_rcnn", "focal_gamma": 1.0, "focal_alpha": 0.5, "box_loss_beta": 0.3,
           "rpn_loss": "focal", "roi_loss": "ohem"}
    run_id = store.create_run("focal run", "faster_rcnn", cfg)
    with qtbot.waitSignal(panel.curves_updated):  # what the bridge broadcasts when a run ends
        window.bridge.broadcast.emit([RunFinished(run_id=run_id, status="finished", metrics={}, checkpoint="")])
    assert panel.run_focal_label.toPlainText() == "this run: γ=1, α=0.5"
    assert f"run #{run_id} focal run" in panel.header.text()
    np.testing.assert_allclose(_ydata(panel.run_focal_curve), curves.focal_curve(P_T, 1.0, 0.5))
    assert panel.run_beta_label.toPlainText() == "this run: β=0.3"
    np.testing.assert_allclose(_ydata(panel.run_smooth_curve), curves.smooth_l1_curve(X, 0.3))
    assert sorted(line.value() for line in panel.run_beta_lines) == pytest.approx([-0.3, -0.3, 0.3, 0.3])
    assert "sigmoid with focal" in panel.run_class_label.text() and "softmax with ohem" in panel.run_class_label.text()

    button = panel.adopt_button
    qtbot.mouseClick(button, LEFT, pos=button.rect().center())
    assert panel.alpha() == pytest.approx(0.5) and panel.beta() == pytest.approx(0.3)
    np.testing.assert_allclose(_ydata(panel.focal_curves[1.0]), _ydata(panel.run_focal_curve))

    # a newer run without weighting (alpha -1) and an older run's missing keys fall back to the defaults
    store.create_run("no alpha", "faster_rcnn", {"focal_alpha": -1, "focal_gamma": 0.0})
    window.session.notify_store_changed()
    assert panel.run_focal_label.toPlainText().startswith("this run: γ=0, α=off (−1)")
    np.testing.assert_allclose(_ydata(panel.run_focal_curve), curves.ce_curve(P_T))
    assert panel.run_beta_label.toPlainText() == "this run: β=0.111"


def test_saved_train_settings_are_marked_without_runs(window: MainWindow, qtbot) -> None:
    store = window.session.store
    assert store is not None
    if store.runs():
        pytest.skip("the demo project has runs")
    store.set_meta("train_settings", json.dumps({"focal_gamma": 5.0, "focal_alpha": 0.75, "box_loss_beta": 1.0}))
    window.session.notify_store_changed()
    panel = window.explorer.panel
    assert panel.run_focal_label.toPlainText().startswith("this run: γ=5, α=0.75")
    assert "Train settings" in panel.header.text()
    _open(qtbot, window, "Focal vs CE")
    window.session.close()
    assert not panel.run_focal_label.isVisible() and "no project" in panel.header.text()
