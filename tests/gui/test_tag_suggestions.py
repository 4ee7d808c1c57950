"""Tag suggestions from a tiny tagger: scores next to the tags, Shift+T accepts those above threshold
(provenance recorded as accepted tag suggestions), Ctrl+Z takes them off again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine.config import TrainConfig
from engine.jobs import CancelToken
from engine.project.store import Store
from engine.train.job import train_job
from gui.canvas.testing import key
from gui.main_window import MainWindow

SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier


class Collector:
    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, e: object) -> None:
        self.events.append(e)


@pytest.fixture(scope="module")
def tagged(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tagging") / "project"
    shutil.copytree(demo_project, root)
    cfg = TrainConfig(project=str(root), model="tagger", backbone="tiny", min_size=64, max_steps=5, batch_size=4,
                      max_images=8, device="cpu", augment_color=False, pretrained=False)
    return root, train_job(cfg.to_dict(), Collector(), CancelToken())


@pytest.fixture()
def win(qtbot, tagged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    root = tmp_path / "project"
    shutil.copytree(tagged[0], root)
    w = MainWindow(root)
    qtbot.addWidget(w)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.canvas.setFocus()
    return w


def _choose_tagger(qtbot, w: MainWindow) -> None:
    feat = w.tag_suggestions
    combo = feat.panel.checkpoint
    assert combo.count() >= 2, "the tiny tagger's checkpoint is offered"
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # (none) -> the newest tagger checkpoint
    assert combo.currentData()
    qtbot.waitUntil(lambda: feat.current() is not None, timeout=30000)


def test_scores_appear_next_to_the_tags(qtbot, win):
    _choose_tagger(qtbot, win)
    feat, tags = win.tag_suggestions, win.labeling.tags
    res = feat.current()
    assert res["image_id"] == win.image_id and res["provenance"].startswith("model:")
    assert set(res["scores"]) == set(tags.boxes)
    for tag_id, box in tags.boxes.items():
        s, thr = res["scores"][tag_id], res["thresholds"][tag_id]
        assert box.text() == f"{tags.names[tag_id]}    {s:.2f}"
        assert box.font().bold() == (s >= thr)
    assert feat.panel.table.rowCount() == len(tags.boxes)
    # cached per image: showing the image again runs no model
    ran = feat.scorers[feat.checkpoint].predictions_run
    first = win.image_id
    win.session.request_image(next(i.id for i in win.store.images() if i.id != first))
    qtbot.waitUntil(lambda: win.image_id != first and feat.current() is not None, timeout=30000)
    win.session.request_image(first)
    qtbot.waitUntil(lambda: win.image_id == first)
    assert feat.current() is res
    assert feat.scorers[feat.checkpoint].predictions_run == ran + 1


def test_shift_t_accepts_above_threshold_and_ctrl_z_removes(qtbot, win):
    _choose_tagger(qtbot, win)
    feat, store = win.tag_suggestions, win.store
    image_id = win.image_id
    res = feat.current()
    # thresholds at the median score: some tags are above, some below (the tiny model barely trained)
    scores = np.array(list(res["scores"].values()))
    thr = float(np.median(scores))
    res["thresholds"] = {t: thr for t in res["scores"]}
    before = store.image_tags(image_id)
    for t in list(before):  # start from an image without tags so that every tag above threshold is added
        feat.session.store.set_image_tag(image_id, t, False)
    win.session.notify_tags({image_id})
    expected = {t for t, s in res["scores"].items() if s >= thr}
    assert expected and expected != set(res["scores"])
    key(win.canvas, Qt.Key.Key_T, SHIFT)
    assert store.image_tags(image_id) == expected
    tags = win.labeling.tags
    assert {t for t, b in tags.boxes.items() if b.isChecked()} == expected
    accepted = store.suggestions(image_id, "accepted", res["provenance"])
    assert {s.tag_id for s in accepted} == expected
    assert all(s.score == pytest.approx(res["scores"][s.tag_id]) for s in accepted)
    assert "Accept suggested tags" in win.labeling.stack.undoText()
    key(win.canvas, Qt.Key.Key_Z, CTRL)
    assert store.image_tags(image_id) == set()
    assert {t for t, b in tags.boxes.items() if b.isChecked()} == set()
    assert store.suggestions(image_id, "accepted", res["provenance"]) == []
    key(win.canvas, Qt.Key.Key_Z, CTRL | SHIFT)  # redo
    assert store.image_tags(image_id) == expected


def test_shortcut_listed_in_help(qtbot, win):
    rows = win.labeling.ui.shortcut_rows()
    assert ("Shift+T", "Accept suggested tags") in rows


def test_no_tagger_no_scores(qtbot, window):
    feat = window.tag_suggestions
    assert feat.panel.checkpoint.count() == 1  # "(none)": the demo has no tagger run
    assert feat.current() is None
    assert not feat.accept()
    tags = window.labeling.tags
    assert all(b.text() == tags.names[t] for t, b in tags.boxes.items())


def test_tags_panel_shows_scores_of_its_image_only(qtbot, window):
    tags = window.labeling.tags
    t = next(iter(tags.boxes))
    window.session.show_tag_scores(window.image_id, {t: (0.9, 0.5)})
    assert tags.boxes[t].text().endswith("0.90") and tags.boxes[t].font().bold()
    window.session.show_tag_scores(-1, {t: (0.9, 0.5)})
    assert tags.boxes[t].text() == tags.names[t]
    with Store(window.store.root) as s:
        assert s.suggestions(window.image_id) == []
