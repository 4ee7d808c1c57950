"""Image list at scale: load + scroll-render a 100,000-image project vs a 1,000-image one.

Builds both stores in a temp dir (rows only, added in one transaction, 1 object on every 10th image,
a tag on every 100th), then for each: time ``ImageListPanel.load`` (aggregate queries + in-memory
columns) and the time per rendered frame while scrolling through the list in 200 jumps (each jump
repaints the viewport, calling ``data`` for every visible row, thumbnails included), plus applying a
search filter. Prints per-size numbers and the 100k / 1k ratios (1.0 = no slowdown with size).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.project.shapes import Annotation, Box  # noqa: E402
from engine.project.store import Store  # noqa: E402

FRAMES = 200


def build(root: Path, n: int) -> None:
    store = Store.create(root)
    ids = store.add_images((f"frames/f{i:06d}.jpg", 640, 480, "", "train") for i in range(n))
    cat = store.add_category("car")
    store.add_annotations(Annotation(ids[i], cat.id, Box(np.array([0.0, 0, 5, 5])), group_id=i + 1)
                          for i in range(0, n, 10))
    tag = store.add_tag("night")
    with store.transaction():
        for i in range(0, n, 100):
            store.set_image_tag(ids[i], tag.id, True)
    store.close()


def measure(root: Path) -> dict[str, float]:
    from PySide6.QtWidgets import QApplication

    from gui.images.filter import ImageFilter
    from gui.images.panel import ImageListPanel

    app = QApplication.instance() or QApplication([])
    panel = ImageListPanel()
    panel.resize(320, 900)
    panel.show()
    app.processEvents()
    with Store(root) as store:
        t0 = time.perf_counter()
        panel.load(store)
        app.processEvents()
        t_load = time.perf_counter() - t0
    bar = panel.view.verticalScrollBar()
    positions = np.linspace(0, bar.maximum(), FRAMES).astype(int)
    t0 = time.perf_counter()
    for p in positions:
        bar.setValue(int(p))
        panel.view.viewport().repaint()
    t_frame = (time.perf_counter() - t0) / FRAMES
    t0 = time.perf_counter()
    panel.set_filter(ImageFilter(text="f0009"))
    t_filter = time.perf_counter() - t0
    panel.set_filter(ImageFilter())
    assert panel.thumbnails is not None
    panel.thumbnails.wait(30)
    panel.close()
    return {"load": t_load, "frame": t_frame, "filter": t_filter}


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1_000, 100_000):
            root = Path(tmp) / f"p{n}"
            t0 = time.perf_counter()
            build(root, n)
            t_build = time.perf_counter() - t0
            results[n] = measure(root)
            r = results[n]
            print(f"{n:>7} images: build store {t_build:6.2f} s | load {r['load'] * 1e3:7.1f} ms | "
                  f"scroll frame {r['frame'] * 1e3:6.2f} ms | search filter {r['filter'] * 1e3:6.1f} ms")
    a, b = results[1_000], results[100_000]
    print(f"ratio 100k / 1k: load {b['load'] / a['load']:.1f}x (rows x100), "
          f"scroll frame {b['frame'] / a['frame']:.2f}x, filter {b['filter'] / a['filter']:.1f}x")


if __name__ == "__main__":
    main()
