"""Cross-validation from the Evaluation dock's form: a 2-fold CV of two tiny candidates fills the
comparison table (mean ± std, the best marked, each fold's value); "Retrain best" starts a run.
Real clicks and typing; the jobs run on the bridge's train lane."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QTabWidget, QWidget

from engine.project.store import Store
from gui.evaluation.tables import column_texts
from gui.main_window import MainWindow

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
TINY = {"model": "faster_rcnn", "backbone": "tiny", "epochs": 1, "max_steps": 2, "batch_size": 2, "max_images": 4,
        "min_size": 128, "max_size": 192, "device": "cpu", "pretrained": False, "augment_color": False}


@pytest.fixture()
def win(qtbot, demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.resize(1200, 860)
    w.show()
    qtbot.waitExposed(w)
    w.evaluation.show()
    tabs: QTabWidget = w.evaluation.panel.tabs
    bar = tabs.tabBar()
    QTest.mouseClick(bar, LEFT, NO_MOD, bar.tabRect(tabs.indexOf(w.evaluation.panel.cv)).center())
    return w


def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, LEFT, NO_MOD, widget.rect().center())


def type_into(widget: QWidget, text: str) -> None:
    widget.setFocus()
    QTest.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(widget, text)


def test_two_fold_cv_from_the_form_fills_the_table_and_retrains_the_best(qtbot, win) -> None:
    cv = win.evaluation.panel.cv
    assert cv.folds.value() == 5 and cv.candidates.rowCount() == 1
    type_into(cv.folds, "2")
    type_into(cv.base, json.dumps(TINY))
    # a second candidate: "+" opens the new row's editor; type and commit with Return
    plus = next(b for b in cv.findChildren(type(cv.start_button)) if b.text() == "+")
    click(plus)
    editor = cv.candidates.viewport().findChild(QLineEdit)
    assert editor is not None and editor.text() == "{}"
    type_into(editor, '{"lr": 0.002, "optimizer": "sgd"}')
    QTest.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on its next event-loop turn
    qtbot.waitUntil(lambda: cv.candidates.item(1, 0).text() != "{}")
    assert cv.candidates.rowCount() == 2 and json.loads(cv.candidates.item(1, 0).text())["optimizer"] == "sgd"
    assert cv.config()["folds"] == 2
    bridge = win.bridge
    click(cv.start_button)
    assert cv.handle is not None and bridge.is_busy("train") and not cv.start_button.isEnabled()
    qtbot.waitUntil(lambda: cv.handle is None, timeout=600_000)
    res = cv.result
    assert res is not None, cv.status.text()
    assert res["metric"] == "map50" and len(res["configs"]) == 2 and cv.progress.value() == 1000
    header = [cv.table.horizontalHeaderItem(c).text() for c in range(cv.table.columnCount())]
    assert header == ["candidate", "config", "map50 mean ± std", "fold 1", "fold 2"]
    cells = column_texts(cv.table, 2)
    for text, c in zip(cells, res["configs"]):
        m = re.fullmatch(r"(\S+) ± (\S+)", text)
        assert m and float(m[1]) == pytest.approx(c["mean"], abs=1e-3) and float(m[2]) == pytest.approx(c["std"],
                                                                                                      abs=1e-3)
        assert len(c["folds"]) == 2
    best = res["best"]
    assert column_texts(cv.table, 0)[best].startswith("★") and cv.table.item(best, 0).font().bold()
    assert [float(t) for t in (column_texts(cv.table, 3)[best], column_texts(cv.table, 4)[best])] == pytest.approx(
        [f["value"] for f in res["configs"][best]["folds"]], abs=1e-3)
    with Store(win.session.root) as store:
        assert sum(r.name.startswith("cv2-") for r in store.runs()) == 4
    # the fold runs are listed for evaluation
    assert win.evaluation.panel.model_combo.count() >= 4
    # retrain the best on all data: an ordinary run on the train lane
    assert cv.retrain_button.isEnabled()
    click(cv.retrain_button)
    handle = cv.retrain_handle
    assert handle is not None and handle.lane == "train"
    with qtbot.waitSignal(bridge.job_done, timeout=300_000, check_params_cb=lambda job, ok: job == handle.id) as done:
        pass
    assert done.args[1] is True, cv.status.text()
    with Store(win.session.root) as store:
        runs = store.runs()
    retrained = runs[-1]
    assert retrained.name == f"cv best (candidate {best + 1})"
    assert retrained.config["train_ids"] == [] and retrained.config["backbone"] == "tiny"
    for key, value in res["configs"][best]["config"].items():
        assert retrained.config[key] == value
    assert cv.status.text().startswith(f"retrained: run {retrained.id}")


def test_the_form_refuses_bad_json_and_bad_options(qtbot, win) -> None:
    cv = win.evaluation.panel.cv
    type_into(cv.base, '{"backbone": ')
    click(cv.start_button)
    assert cv.handle is None and cv.status.text().startswith("base options: not JSON")
    type_into(cv.base, json.dumps({**TINY, "optimizer": "rmsprop"}))
    click(cv.start_button)
    assert cv.handle is None and "optimizer 'rmsprop' is not one of" in cv.status.text()
    type_into(cv.base, "[1, 2]")
    click(cv.start_button)
    assert cv.status.text().startswith("base options: expected a JSON object")
    assert not win.bridge.is_busy("train")
