"""File > Import… / Export…: drive the dialogs, run the job on the bridge, wait for the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QWidget

from engine.data.demo import generate_demo
from engine.project.formats.compare import compare_projects
from engine.project.store import Store
from gui.bridge import EngineBridge
from gui.interop.dialog import ExportDialog, ImportDialog, InteropRunner, run_interop


@pytest.fixture()
def parent(qtbot) -> QWidget:
    w = QWidget()
    qtbot.addWidget(w)
    return w


@pytest.fixture()
def bridge(qtbot) -> EngineBridge:
    b = EngineBridge()
    yield b
    b.shutdown()


def _ok(qtbot, dialog: ImportDialog | ExportDialog) -> None:
    button = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _wait_summary(qtbot, runner: InteropRunner) -> QMessageBox:
    qtbot.waitUntil(lambda: runner.summary is not None and runner.summary.isVisible(), timeout=30000)
    qtbot.addWidget(runner.summary)  # closed when the test ends: no stray window over later tests
    return runner.summary


def test_export_then_import_through_the_dialogs(qtbot, parent: QWidget, bridge: EngineBridge, tmp_path: Path) -> None:
    generate_demo(tmp_path / "demo", images=6, unlabeled=1, seed=11)
    runner = run_interop(parent, bridge, tmp_path / "demo", "export")
    dialog = runner.dialog
    assert isinstance(dialog, ExportDialog) and dialog.isVisible()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()  # no folder yet
    dialog.set_format("coco")
    assert dialog.remap_check.isEnabled() and not dialog.task_combo.isEnabled()
    dialog.out_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(runner.finished, timeout=30000) as done:
        _ok(qtbot, dialog)
    assert done.args[0]["ok"] and done.args[0]["images"] == 7
    box = _wait_summary(qtbot, runner)
    assert box.icon() == QMessageBox.Icon.Information and "Exported 7 images" in box.text()
    assert not runner.progress.isVisible()
    box.accept()

    Store.create(tmp_path / "new").close()
    runner = run_interop(parent, bridge, tmp_path / "new", "import")
    dialog = runner.dialog
    assert isinstance(dialog, ImportDialog)
    dialog.set_format("coco")
    dialog.path_edit.setText(str(tmp_path / "out"))
    dialog.set_split("test")
    _ok(qtbot, dialog)
    box = _wait_summary(qtbot, runner)
    assert "Imported 2 file(s): 7 images" in box.text() and "0 error(s)" in box.text()
    with Store(tmp_path / "demo") as a, Store(tmp_path / "new") as b:
        assert compare_projects(a, b, splits=False) == []
        assert {r.split for r in b.images()} == {"test"}


def test_import_errors_are_listed_with_reasons(qtbot, parent: QWidget, bridge: EngineBridge, tmp_path: Path) -> None:
    ds = tmp_path / "lm"
    ds.mkdir()
    Image.new("RGB", (20, 10)).save(ds / "a.png")
    doc = {"version": "5.7.0", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 10,
           "imageWidth": 20, "shapes": [{"label": "x", "points": [[1, 1], [5, 5]], "shape_type": "rectangle"}]}
    (ds / "a.json").write_text(json.dumps(doc))
    (ds / "broken.json").write_text("{nope")
    Store.create(tmp_path / "p").close()
    runner = run_interop(parent, bridge, tmp_path / "p", "import")
    runner.dialog.set_format("labelme")
    runner.dialog.path_edit.setText(str(ds))
    _ok(qtbot, runner.dialog)
    box = _wait_summary(qtbot, runner)
    assert box.icon() == QMessageBox.Icon.Warning
    assert "Imported 1 file(s)" in box.text() and "1 error(s)" in box.text()
    assert "broken.json: bad JSON" in box.text()
    assert "broken.json" in box.detailedText()
    box.accept()
    # the same folder again, with replace off: skipped, nothing doubled
    runner = run_interop(parent, bridge, tmp_path / "p", "import")
    runner.dialog.set_format("labelme")
    runner.dialog.path_edit.setText(str(ds))
    _ok(qtbot, runner.dialog)
    assert "Skipped 1 file(s)" in _wait_summary(qtbot, runner).text()
    assert len(Store(tmp_path / "p").annotations()) == 1


def test_refused_export_shows_the_reason(qtbot, parent: QWidget, bridge: EngineBridge, tmp_path: Path) -> None:
    Store.create(tmp_path / "p").close()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    runner = run_interop(parent, bridge, tmp_path / "p", "export")
    runner.dialog.out_edit.setText(str(tmp_path / "full"))
    with qtbot.waitSignal(runner.finished, timeout=30000) as done:
        _ok(qtbot, runner.dialog)
    assert done.args[0] == {}
    box = _wait_summary(qtbot, runner)
    assert box.icon() == QMessageBox.Icon.Critical and "refusing to overwrite" in box.text()
    assert (tmp_path / "full" / "x.txt").read_text() == "keep"


def test_cancel_in_the_dialog_runs_nothing(qtbot, parent: QWidget, bridge: EngineBridge, tmp_path: Path) -> None:
    runner = run_interop(parent, bridge, tmp_path, "import")
    with qtbot.waitSignal(runner.finished, timeout=5000) as done:
        runner.dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert done.args[0] == {} and runner.job_id == "" and not bridge.is_busy("tasks")
