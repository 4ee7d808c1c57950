"""The image list: 100k rows without SQL in data(), filters and search, A/D through the filtered order,
object counts, background thumbnails, and File > Add images from folder."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtTest import QTest

from engine.project.shapes import Annotation, Box
from engine.project.store import Store
from gui.images.filter import ImageFilter
from gui.images.panel import IMAGE_ID_ROLE, ImageListPanel
from gui.main_window import MainWindow

ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.DecorationRole, IMAGE_ID_ROLE)


@pytest.fixture()
def window(qtbot, demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("ANCHORLAB_CACHE_DIR", str(tmp_path / "cache"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def _visible_ids(panel: ImageListPanel) -> list[int]:
    m = panel.model
    return [m.image_id_at(r) for r in range(m.rowCount())]


def test_100k_rows_load_and_data_does_no_sql(qtbot, tmp_path: Path) -> None:
    root = tmp_path / "big"
    store = Store.create(root)
    n = 100_000
    ids = store.add_images((f"frames/f{i:06d}.jpg", 640, 480, "", "train") for i in range(n))  # one transaction
    cat = store.add_category("car")
    store.add_annotations(Annotation(ids[i], cat.id, Box(np.array([0.0, 0, 5, 5])), group_id=i + 1)
                          for i in range(0, n, 10))
    tag = store.add_tag("night")
    with store.transaction():
        for i in range(0, n, 1000):
            store.set_image_tag(ids[i], tag.id, True)
    panel = ImageListPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 700)
    panel.show()
    panel.load(store)
    store.close()  # from here on any SQL would raise sqlite3.ProgrammingError
    m = panel.model
    assert m.rowCount() == n and m.total() == n
    rng = random.Random(0)
    for row in rng.sample(range(n), 500) + [0, n - 1]:
        idx = m.index(row)
        for role in ROLES:
            m.data(idx, role)
        assert m.data(idx, IMAGE_ID_ROLE) == ids[row]
    assert m.data(m.index(10), Qt.ItemDataRole.DisplayRole) == "f000010.jpg  ·  1"
    assert m.data(m.index(11), Qt.ItemDataRole.DisplayRole) == "f000011.jpg"
    panel.view.scrollToBottom()
    panel.view.viewport().grab()  # paints the last page (thumbnail lookups included)
    panel.set_filter(ImageFilter(status="labeled"))
    assert m.rowCount() == n // 10
    panel.set_filter(ImageFilter(tag=tag.id))
    assert _visible_ids(panel) == ids[::1000]
    panel.set_filter(ImageFilter(text="f09999"))
    assert m.rowCount() == 10
    assert panel.filter_bar.count_label.text() == "10 of 100,000 images"
    panel.set_filter(ImageFilter(category=cat.id, text="f0000"))
    assert _visible_ids(panel) == ids[0:100:10]
    panel.step(1)
    panel.step(1)
    assert panel.current_image() == ids[10]


def test_filters_and_search_reduce_rows_correctly(window: MainWindow, demo_copy: Path) -> None:
    panel = window.images
    with Store(demo_copy) as s:
        recs = s.images()
        anns = s.annotations()
        labeled = {a.image_id for a in anns}
        cats = s.categories()
        tags = s.tags()
        image_tags = s.all_image_tags()
    all_ids = [r.id for r in recs]
    assert _visible_ids(panel) == all_ids
    panel.set_filter(ImageFilter(status="unlabeled"))
    assert _visible_ids(panel) == [i for i in all_ids if i not in labeled] and panel.model.rowCount() == 4
    panel.set_filter(ImageFilter(status="labeled"))
    assert _visible_ids(panel) == [i for i in all_ids if i in labeled]
    cat = cats[1]
    panel.set_filter(ImageFilter(category=cat.id))
    assert _visible_ids(panel) == sorted({a.image_id for a in anns if a.category_id == cat.id})
    tag = tags[0]
    panel.set_filter(ImageFilter(tag=tag.id, category=cat.id))
    want = [i for i in all_ids if tag.id in image_tags.get(i, set()) and any(
        a.image_id == i and a.category_id == cat.id for a in anns)]
    assert _visible_ids(panel) == want
    name = recs[7].path.rsplit("/", 1)[-1]
    panel.set_filter(ImageFilter())
    window.images.filter_bar.search.setText(name.upper())  # typing in the search field filters, any case
    assert _visible_ids(panel) == [r.id for r in recs if name in r.path]
    assert panel.filter_bar.count_label.text() == f"1 of {len(recs)} images"
    window.images.filter_bar.search.clear()
    window.images.filter_bar.status.setCurrentIndex(2)  # the combo drives the same filter
    assert panel.model.rowCount() == 4
    # the combos list the project's categories and tags
    combo = window.images.filter_bar.category
    assert [combo.itemText(i) for i in range(1, combo.count())] == [c.name for c in cats]


def test_a_and_d_follow_the_filtered_order(window: MainWindow, demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        labeled = {a.image_id for a in s.annotations()}
        all_ids = [r.id for r in s.images()]
    unlabeled = [i for i in all_ids if i not in labeled]
    window.images.set_filter(ImageFilter(status="unlabeled"))
    window.canvas.setFocus()
    # the current image (the first, labeled) is hidden: D goes to the first unlabeled one after it
    QTest.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.image_id == unlabeled[0]
    QTest.keyClick(window.canvas, Qt.Key.Key_D)
    QTest.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.image_id == unlabeled[2]
    QTest.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.image_id == unlabeled[1]
    for _ in range(6):
        QTest.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.image_id == unlabeled[-1]  # clamps at the last filtered row
    # changing the filter keeps the current image selected (no reload) when it is still listed
    seen = []
    window.images.image_selected.connect(seen.append)
    window.images.set_filter(ImageFilter())
    assert window.images.current_image() == unlabeled[-1] and seen == []
    assert window.images.view.currentIndex().row() == all_ids.index(unlabeled[-1])
    # selecting an image hidden by the filter clears the filter
    window.images.set_filter(ImageFilter(status="unlabeled"))
    window.images.select_image(all_ids[0])
    assert window.image_id == all_ids[0] and not window.images.model.filter.is_active()


def test_counts_are_objects_and_follow_edits(window: MainWindow, demo_copy: Path) -> None:
    m = window.images.model
    with Store(demo_copy) as s:
        rec = s.images()[0]
        anns = s.annotations(rec.id)
        objects = len({a.group_id for a in anns})
        assert len(anns) == 2 * objects  # box + mask per object in the demo
        new_cat = s.add_category("brand-new")
        s.add_annotation(Annotation(rec.id, new_cat.id, Box(np.array([1.0, 1, 9, 9]))))
        window.images.refresh_image(s, rec.id)
    assert m.count_of(rec.id) == objects + 1
    assert m.data(m.index(m.row_of(rec.id)), Qt.ItemDataRole.DisplayRole).endswith(f"·  {objects + 1}")
    window.images.set_filter(ImageFilter(category=new_cat.id))
    assert _visible_ids(window.images) == [rec.id]
    m.set_annotations(rec.id, [])
    window.images.set_filter(ImageFilter(category=new_cat.id))
    assert _visible_ids(window.images) == []
    m.set_count(rec.id, 7)
    assert m.count_of(rec.id) == 7


def test_thumbnails_load_in_background_and_show_the_image(window: MainWindow, demo_copy: Path) -> None:
    panel = window.images
    m = panel.model
    first = m.image_id_at(0)
    thumbs = panel.thumbnails
    assert thumbs is not None
    icon = m.data(m.index(0), Qt.ItemDataRole.DecorationRole)
    assert isinstance(icon, QIcon)
    assert thumbs.wait(30)
    icon = m.data(m.index(0), Qt.ItemDataRole.DecorationRole)
    assert icon is not thumbs.blank and icon is not thumbs.broken
    img = icon.pixmap(48, 48).toImage()
    with Store(demo_copy) as s:
        rgb = cv2.cvtColor(cv2.imread(str(s.image_path(first))), cv2.COLOR_BGR2RGB)
    th = cv2.resize(rgb, (img.width(), img.height()), interpolation=cv2.INTER_AREA)
    y, x = img.height() // 2, img.width() // 2
    c = img.pixelColor(x, y)
    assert np.abs(np.array([c.red(), c.green(), c.blue()]) - th[y, x].astype(int)).max() < 40
    # a broken file gets the broken icon, and the list keeps working
    with Store(demo_copy) as s:
        rec = s.images()[5]
    (demo_copy / rec.path).write_bytes(b"broken")
    thumbs.clear()
    m.data(m.index(m.row_of(rec.id)), Qt.ItemDataRole.DecorationRole)
    assert thumbs.wait(30)
    assert m.data(m.index(m.row_of(rec.id)), Qt.ItemDataRole.DecorationRole) is thumbs.broken


def test_add_images_from_folder_runs_as_a_job_and_reloads_the_list(window: MainWindow, qtbot,
                                                                   demo_copy: Path) -> None:
    folder = demo_copy / "more"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"extra{i:02d}.png"), np.full((16, 24, 3), 10 * i, np.uint8))
    assert "&Add images from folder…" in [a.text() for a in window.file_menu.actions()]
    current = window.image_id
    before = window.images.model.total()
    adder = window.images_feature.add_folder(folder)
    assert adder is not None
    with qtbot.waitSignal(adder.finished, timeout=30000) as sig:
        pass
    assert sig.args[0]["added"] == 12
    assert window.images.model.total() == before + 12
    assert window.images.current_image() == current == window.image_id  # selection kept
    assert "Added 12 images" in window.statusBar().currentMessage()
    window.images.set_filter(ImageFilter(text="extra0"))
    assert window.images.model.rowCount() == 10
