"""Issue 12 / 20: the first image is fully visible at start, fitting converges in one pass on any size
(a 68 x 513 canvas with a small portrait image used to loop resizeEvent -> fit -> zoom), and a brush
stroke on a 20,000 x 20,000 image touches only its crop (memory bounded by the crop, not the image)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication

from engine.project.shapes import Annotation, Mask
from engine.project.store import Store
from gui.canvas.view import CanvasView
from gui.labeling.commands import CommandRunner
from gui.labeling.stroke_command import stroke_command
from gui.main_window import MainWindow


def _image_inside_view(view: CanvasView) -> bool:
    w, h = view.image_size()
    shown = view.mapFromScene(QRectF(0, 0, w, h)).boundingRect()
    return view.viewport().rect().adjusted(-1, -1, 1, 1).contains(shown)


def test_first_image_is_fully_visible_after_start(qtbot, demo_copy: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "s.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.resize(1600, 1000)
    w.show()
    qtbot.waitExposed(w)
    w.images_feature.loader.wait(10)
    qtbot.wait(50)
    assert w.canvas.is_fitting() and _image_inside_view(w.canvas)
    iw, ih = w.canvas.image_size()
    vp = w.canvas.viewport().size()
    assert w.canvas.zoom() == pytest.approx(min((vp.width() - 2) / iw, (vp.height() - 2) / ih), rel=1e-6)


@pytest.mark.parametrize("size", [(68, 513), (513, 68), (3, 3), (1, 900)])
def test_fit_converges_in_one_pass_on_narrow_canvases(qtbot, size: tuple[int, int]) -> None:
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.zeros((90, 30, 3), np.uint8))  # a small portrait image
    for _ in range(5):
        QApplication.processEvents()
    n = view.fit_count
    for _ in range(20):
        QApplication.processEvents()
    assert view.fit_count == n  # no resize -> fit -> resize loop
    view.resize(size[0] + 1, size[1])
    for _ in range(5):
        QApplication.processEvents()
    assert view.fit_count <= n + 2
    assert view.horizontalScrollBar().isVisible() is False


def test_saved_window_state_with_a_narrow_canvas_does_not_loop(qtbot, demo_copy: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANCHORLAB_SETTINGS", str(tmp_path / "s.ini"))
    w = MainWindow(demo_copy)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.resize(w.minimumSizeHint().width() + 68, 600)
    for d in w.host.docks(w.dockWidgetArea(w.labeling.ui.labels_dock)):
        w.host.resize_dock(d, 2000, Qt_horizontal())
    qtbot.wait(50)
    w.close()
    w2 = MainWindow(demo_copy)  # the state it saved itself
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitExposed(w2)
    w2.images_feature.loader.wait(10)
    qtbot.wait(50)
    n = w2.canvas.fit_count
    for _ in range(20):
        QApplication.processEvents()
    assert w2.canvas.fit_count == n


def Qt_horizontal():  # noqa: N802, ANN201
    from PySide6.QtCore import Qt
    return Qt.Orientation.Horizontal


def test_stroke_on_a_20000_square_image_touches_only_its_crop(tmp_path: Path, qtbot) -> None:
    store = Store.create(tmp_path / "p")
    image = store.add_image("huge.png", 20000, 20000)
    cat = store.add_category("cell")
    runner = CommandRunner()
    runner.set_store(store)
    size = (20000, 20000)
    crop = np.ones((40, 60), np.uint8)
    mid = store.add_annotation(Annotation(image, cat.id, Mask.from_crop(15000, 12000, crop, size)))
    target = store.annotation(mid)
    tracemalloc.start()
    pts = np.array([[15050.0, 12020.0], [15120.0, 12030.0]])
    cmd = stroke_command(runner, image, size, pts, 8.0, False, target, None)
    assert cmd is not None and runner.execute(cmd) is cmd
    runner.undo()
    runner.redo()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 << 20  # a full 20,000^2 mask alone would be 400 MB
    g = store.annotation(mid).geometry
    assert isinstance(g, Mask) and g.size == size and g.crop_size[0] <= 60 and g.crop_size[1] <= 200
    x0, y0, c = g.crop()
    assert (x0, y0) == (15000, 12000) and c[:40, :60].all()
    stored = store.conn.execute("SELECT length(geometry) FROM annotations WHERE id=?", (mid,)).fetchone()[0]
    assert stored < 2000
    # the display item decodes only the crop
    from gui.canvas.items import MaskItem, color_of
    item = MaskItem(store.annotation(mid), color_of("#ff0000"))
    assert item.boundingRect().width() <= 200 and item.offset() == QPointF(15000, 12000)
    store.close()
