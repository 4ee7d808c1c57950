"""The Evaluation dock on a real window: the report of a tiny checkpoint, thresholds recomputed in the
engine thread, the error browser (filters, sorting, a row click opens the image with the overlay) and
the overfitting view. Real mouse and key events where the user clicks or types."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QHeaderView, QTabWidget, QWidget

from engine.config import TrainConfig
from engine.eval.seg_report import SegmentationReport
from engine.eval.tag_report import build_tag_report
from engine.inference.report import ReportResult, report_job
from engine.jobs import CancelToken
from engine.project.store import Store
from engine.train.job import train_job
from gui.evaluation.errors_view import IOU_COL, SCORE_COL
from gui.evaluation.report_view import ReportView
from gui.evaluation.tables import column_texts
from gui.main_window import MainWindow

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


@pytest.fixture(scope="module")
def trained(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the demo project with one tiny run of two epochs (metric rows, best.pt and last.pt)."""
    root = tmp_path_factory.mktemp("evaluation") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="faster_rcnn", backbone="tiny", epochs=2, max_steps=4, batch_size=2,
                      max_images=4, min_size=128, max_size=192, device="cpu", augment_color=False, pretrained=False)
    return root, train_job(cfg.to_dict(), lambda event: None, CancelToken())


@pytest.fixture()
def win(qtbot, trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(trained[0])
    qtbot.addWidget(w)
    w.resize(1200, 860)
    w.show()
    qtbot.waitExposed(w)
    w.evaluation.show()
    return w


def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, LEFT, NO_MOD, widget.rect().center())


def click_tab(tabs: QTabWidget, title: str) -> None:
    bar = tabs.tabBar()
    index = next(i for i in range(tabs.count()) if tabs.tabText(i) == title)
    QTest.mouseClick(bar, LEFT, NO_MOD, bar.tabRect(index).center())
    assert tabs.currentIndex() == index


def set_spin(qtbot, spin: QWidget, steps: int) -> None:
    """Arrow keys on a focused spin box (each press is a valueChanged, as for a user)."""
    spin.setFocus()
    for _ in range(abs(steps)):
        QTest.keyClick(spin, Qt.Key.Key_Up if steps > 0 else Qt.Key.Key_Down)


def evaluate(qtbot, w: MainWindow, score_steps: int = -5) -> ReportResult:
    """Score threshold 0 (the untrained model scores low), then the Evaluate button."""
    p = w.evaluation.panel
    set_spin(qtbot, p.score_spin, score_steps)
    click(p.evaluate_button)
    qtbot.waitUntil(lambda: p.result is not None, timeout=120_000)
    return p.result


def test_report_view_fills_from_a_tiny_checkpoint_and_exports(qtbot, win, trained, tmp_path) -> None:
    p = win.evaluation.panel
    root, res = trained
    assert p.model_combo.count() == 2 and p.selection() == (res["run_id"], res["checkpoint"])
    assert p.split_combo.currentText() == "val"
    result = evaluate(qtbot, win)
    r = result.report
    assert result.kind == "detection" and result.split == "val" and r.score == 0.0
    # COCO stats, per-class table, curves, matrix: the report's own numbers
    shown = p.report.metrics()
    assert len(shown) == 12 and p.report.metrics_table.rowCount() == 4  # AP names, values, AR names, values
    assert list(shown)[:3] == ["AP", "AP50", "AP75"] and list(shown)[6] == "AR@1"
    assert shown["AP50"] == f"{r.stats['map50']:.3f}" and "AR@100" in shown
    assert p.export_button.isEnabled()
    assert sorted(column_texts(p.report.class_table, 0)) == sorted(r.class_names)
    gt_col = [int(t) for t in column_texts(p.report.class_table, 1)]
    assert sum(gt_col) == int(r.num_gt.sum()) > 0
    assert len(p.report.pr_plot.curves) == len(r.class_names) == len(p.report.f1_plot.curves)
    x, y = p.report.pr_plot.curves[0].getData()
    assert np.array_equal(x, r.recall_points) and np.allclose(y, r.pr_precision[0], equal_nan=True)
    assert np.array_equal(p.report.confusion.matrix, r.confusion)
    assert p.report.confusion.labels == ["background", *r.class_names]
    assert p.report.confusion.describe(0, 1).startswith(f"truth background → predicted {r.class_names[0]}")
    # the class picker highlights one class's curves
    p.report.class_combo.setFocus()
    QTest.keyClick(p.report.class_combo, Qt.Key.Key_Down)
    assert p.report.pr_plot.picked() == 0 and p.report.f1_plot.picked() == 0
    # errors arrived too; the overfitting view has the run's curves
    assert p.errors.model.total() == len(result.errors) > 0
    qtbot.waitUntil(lambda: p.overfit.curves is not None, timeout=30_000)
    # exports: PNG of the view in front, CSV tables and the full report through the engine thread
    click_tab(p.report.plots, "Confusion")
    png = p.export_png(tmp_path / "view.png")
    assert png is not None and png.stat().st_size > 1000
    with qtbot.waitSignal(p.export_files("csv", tmp_path / "csv").finished, timeout=60_000):
        pass
    assert {"per_class.csv", "confusion.csv", "errors.csv"} <= {f.name for f in (tmp_path / "csv").iterdir()}
    with qtbot.waitSignal(p.export_files("report", tmp_path / "full").finished, timeout=60_000):
        pass
    doc = json.loads((tmp_path / "full" / "report.json").read_text())
    assert doc["report"]["confusion"]["matrix"] == r.confusion.tolist() and doc["run_id"] == res["run_id"]


def test_changing_the_iou_threshold_recomputes_the_matrix_in_the_engine_thread(qtbot, win) -> None:
    p = win.evaluation.panel
    calls: list[tuple[str, float, float]] = []

    def spy(config: dict, sink: object, cancel: CancelToken) -> dict:
        calls.append((threading.current_thread().name, config["iou"], config["score"]))
        return report_job(config, sink, cancel)  # type: ignore[arg-type]

    p.job = spy
    first = evaluate(qtbot, win)
    assert first.report.iou == 0.5
    click_tab(p.tabs, "Report")
    click_tab(p.report.plots, "Confusion")
    set_spin(qtbot, p.iou_spin, -4)  # 0.50 -> 0.30, four valueChanged: one recomputation after the pause
    qtbot.waitUntil(lambda: p.result is not first and p.result.report.iou == pytest.approx(0.3), timeout=120_000)
    r = p.result.report
    assert r.score == 0.0
    assert np.array_equal(p.report.confusion.matrix, r.confusion)
    assert "IoU ≥ 0.3" in p.report.confusion.plot.getPlotItem().titleLabel.text
    # the errors list follows the new matching (TP count = the matrix diagonal)
    assert sum(e.kind == "TP" for e in p.result.errors) == int(np.trace(r.confusion[1:, 1:]))
    assert calls and all(name != threading.main_thread().name for name, _, _ in calls)
    assert calls[-1][1:] == (pytest.approx(0.3), 0.0)


def test_a_row_click_opens_the_image_with_the_overlay_and_filters_narrow(qtbot, win) -> None:
    ev = win.evaluation
    p = ev.panel
    evaluate(qtbot, win)
    click_tab(p.tabs, "Errors")
    table, model = p.errors.table, p.errors.model
    total = model.rowCount()
    assert total == model.total() > 0
    scores = [r.score for r in model.records() if r.score is not None]
    assert scores == sorted(scores, reverse=True)  # default: highest score first
    current = win.session.image_id
    row = next(i for i, r in enumerate(model.records()) if r.image_id != current and r.box is not None)
    rec = model.record(row)
    index = model.index(row, 1)
    table.scrollTo(index)
    QTest.mouseClick(table.viewport(), LEFT, NO_MOD, table.visualRect(index).center())
    assert win.session.image_id == rec.image_id
    expected = [b for b in (rec.gt_box, rec.box) if b is not None]
    assert np.allclose(ev.overlay.boxes(), expected) and ev.overlay.isVisible()
    with Store(win.session.root) as store:
        im = store.image(rec.image_id)
    qtbot.waitUntil(lambda: win.canvas.image_size() == (im.width, im.height), timeout=30_000)
    win.canvas.viewport().repaint()
    qtbot.waitUntil(lambda: ev.overlay.last_paint["drawn"] == len(expected), timeout=10_000)
    # "Show on canvas" off hides the layer; another image drops it
    click(p.errors.overlay_check)
    assert not ev.overlay.isVisible()
    click(p.errors.overlay_check)
    assert ev.overlay.isVisible()
    # filters: kind FP (two presses down: All, TP, FP), then a cause, then a class
    p.errors.kind_combo.setFocus()
    QTest.keyClick(p.errors.kind_combo, Qt.Key.Key_Down)
    QTest.keyClick(p.errors.kind_combo, Qt.Key.Key_Down)
    assert p.errors.kind_combo.currentText() == "FP"
    fps = model.records()
    assert fps and all(r.kind == "FP" for r in fps) and len(fps) < total
    assert p.errors.count.text() == f"{len(fps)} of {total} rows"
    p.errors.cause_combo.setFocus()
    QTest.keyClick(p.errors.cause_combo, Qt.Key.Key_End)
    cause = p.errors.cause_combo.currentData()
    assert cause == "background" and all(r.cause == "background" for r in model.records())
    p.errors.class_combo.setFocus()
    QTest.keyClick(p.errors.class_combo, Qt.Key.Key_Down)
    narrowed = model.records()
    assert all(r.label == 1 and r.kind == "FP" for r in narrowed) and len(narrowed) <= len(fps)
    # sort by IoU: a click on its header
    header = table.horizontalHeader()
    QTest.mouseClick(header.viewport(), LEFT, NO_MOD, _section_center(header, IOU_COL))
    ious = [r.iou for r in model.records()]
    desc = header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert header.sortIndicatorSection() == IOU_COL and ious == sorted(ious, reverse=desc)
    assert model.sort_key[0] == IOU_COL != SCORE_COL
    # showing another image removes the overlay
    with Store(win.session.root) as store:
        other = next(i.id for i in store.images() if i.id != rec.image_id)
    win.session.request_image(other)
    assert win.session.image_id == other and len(ev.overlay.boxes()) == 0


def _section_center(header: QHeaderView, col: int) -> QPoint:
    return QPoint(header.sectionViewportPosition(col) + header.sectionSize(col) // 2, header.height() // 2)


def test_the_overfitting_view_draws_train_and_val_curves_with_markers(qtbot, win, trained) -> None:
    p = win.evaluation.panel
    root, res = trained
    qtbot.waitUntil(lambda: p.overfit.curves is not None, timeout=30_000)
    c = p.overfit.curves
    assert c.run_id == res["run_id"] and c.epochs.tolist() == [0, 1]
    x, y = p.overfit.items["train"].getData()
    assert x.tolist() == [0.0, 1.0] and np.allclose(y, c.train_loss)
    assert np.allclose(p.overfit.items["val"].getData()[1], c.val_loss)
    assert np.allclose(p.overfit.items["gap"].getData()[1], c.val_loss - c.train_loss)
    assert p.overfit.markers["loss_best"].isVisible() and p.overfit.markers["loss_best"].value() == c.best_epoch
    assert not p.overfit.markers["loss_early_stop"].isVisible()
    # a run with metric rows that stopped early (no checkpoint needed: the view reads the store)
    with Store(root) as store:
        run_id = store.create_run("overfit", "faster_rcnn", {})
        rows = []
        for epoch in range(6):
            rows += [(epoch * 10 + s, epoch, "train", "loss", 2.0 - 0.3 * epoch - 0.01 * s) for s in range(3)]
            rows += [(epoch * 10 + 9, epoch, "val", "loss", 1.9 - 0.2 * min(epoch, 2) + 0.15 * max(0, epoch - 2)),
                     (epoch * 10 + 9, epoch, "val", "map50", 0.2 + 0.1 * min(epoch, 2) - 0.05 * max(0, epoch - 2))]
        store.add_metrics(run_id, rows)
        store.update_run(run_id, status="early_stopped",
                         summary={"stop_reason": "early_stop", "epoch": 5,
                                  "best": {"metric": "map50", "value": 0.4, "step": 29, "epoch": 2}})
    with qtbot.waitSignal(p.load_curves(run_id).finished, timeout=30_000):
        pass
    assert p.overfit.curves.run_id == run_id
    m = p.overfit.markers
    assert m["loss_best"].value() == 2 and m["loss_early_stop"].value() == 5 and m["loss_early_stop"].isVisible()
    assert m["metric_best"].isVisible() and p.overfit.metric_plot.getPlotItem().getAxis("left").labelText == "val map50"
    assert "overfitting" in p.overfit.summary.text() and "early stopping at epoch 5" in p.overfit.summary.text()


def test_segmentation_and_tag_reports_fill_their_views(qtbot) -> None:
    view = ReportView()
    qtbot.addWidget(view)
    truth = [np.array([[0, 1], [2, 2]]), np.array([[1, 1], [0, 2]])]
    pred = [np.array([[0, 1], [2, 1]]), np.array([[1, 1], [0, 0]])]
    seg = SegmentationReport.from_maps(truth, pred, ["background", "road", "car"])
    view.set_result(ReportResult("deeplab", "segmentation", "val", "x.pt", 1, 2, seg))
    assert column_texts(view.class_table, 0) == ["background", "road", "car"]
    assert view.plots.tabText(0) == "IoU per class" and np.array_equal(view.confusion.matrix, seg.confusion)
    assert list(view.metrics()) == ["mIoU", "pixel accuracy", "boundary F"]
    tags = build_tag_report(np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.1]]),
                            np.array([[1, 0], [0, 1], [1, 1]], bool), [0.5, 0.5], ["sunny", "night"])
    view.set_result(ReportResult("tagger", "classification", "val", "x.pt", 1, 3, tags))
    assert column_texts(view.class_table, 0) == ["sunny", "night"] and len(view.pr_plot.curves) == 2
    assert [view.plots.tabText(i) for i in range(view.plots.count())] == ["PR curve", "F1 vs threshold"]
    view.set_result(None)
    assert view.class_table.rowCount() == 0 and view.confusion.matrix.size == 0
