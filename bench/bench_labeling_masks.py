"""Cropped masks (issue 12): stroke latency at 4000 x 3000 and 20,000 x 20,000 (target <= 30 ms each) and the
time to show an image with 500 masks (target <= 300 ms).

A stroke = what one brush release costs the GUI thread: ``stroke_command`` (rasterise, read the target's
pixels under the stroke) -> ``CommandRunner.execute`` (one SQLite transaction) -> the canvas item rebuilt
from the store (``AnnotationLayer.sync``). The target mask already holds a 300 x 200 px blob. Opening = the
store read + ``AnnotationLayer.show`` building 500 mask items (each decodes only its crop). Also printed:
the same stroke when the mask is stored as a full-image RLE (the layout this replaces).
Usage: python bench/bench_labeling_masks.py [strokes]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from pycocotools import mask as mask_utils  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsScene  # noqa: E402

from engine.project.shapes import Annotation, Mask  # noqa: E402
from engine.project.store import Store  # noqa: E402
from gui.canvas.annotation_layer import AnnotationLayer  # noqa: E402
from gui.labeling.commands import CommandRunner  # noqa: E402
from gui.labeling.stroke_command import stroke_command  # noqa: E402

STROKE_TARGET_MS, OPEN_TARGET_MS = 30.0, 300.0


def _full_rle(m: Mask) -> Mask:
    full = np.asfortranarray(m.to_array())
    rle = mask_utils.encode(full)
    return Mask({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")})


def strokes(size: tuple[int, int], n: int, legacy: bool = False) -> float:
    """Median ms per stroke on an (H, W) image."""
    H, W = size
    with tempfile.TemporaryDirectory() as d:
        store = Store.create(d)
        image = store.add_image("x.png", W, H)
        cat = store.add_category("c")
        runner = CommandRunner()
        runner.set_store(store)
        blob = np.ones((200, 300), np.uint8)
        m = Mask.from_crop(W // 2, H // 2, blob, (H, W))
        mid = store.add_annotation(Annotation(image, cat.id, _full_rle(m) if legacy else m))
        scene = QGraphicsScene()
        layer = AnnotationLayer(scene)
        layer.show(store.annotations(image), store.categories())
        rng = np.random.default_rng(0)
        times = []
        changed = 0
        for k in range(2 * n):  # erase a stroke, then paint it back: every stroke changes pixels
            if k % 2 == 0:
                x, y = W // 2 + rng.uniform(0, 300), H // 2 + rng.uniform(0, 200)
                pts = np.array([[x, y], [x + 40, y + 15], [x + 60, y + 5]])
            t = time.perf_counter()
            cmd = stroke_command(runner, image, (H, W), pts, 8.0, k % 2 == 0, store.annotation(mid), None)
            if cmd is not None:
                changed += runner.execute(cmd) is not None
            layer.sync({mid: store.annotation(mid)})
            times.append(time.perf_counter() - t)
        assert changed == 2 * n, changed
        store.close()
    return 1000 * float(np.median(times))


def open_500(size: tuple[int, int] = (3000, 4000), n: int = 500) -> float:
    H, W = size
    with tempfile.TemporaryDirectory() as d:
        store = Store.create(d)
        image = store.add_image("x.png", W, H)
        cat = store.add_category("c")
        rng = np.random.default_rng(1)
        anns = []
        for _ in range(n):
            h, w = rng.integers(20, 120, 2)
            crop = np.zeros((h, w), np.uint8)
            crop[h // 4:3 * h // 4, :] = 1
            crop[:, w // 4:3 * w // 4] = 1
            anns.append(Annotation(image, cat.id, Mask.from_crop(int(rng.integers(0, W - w)),
                                                                 int(rng.integers(0, H - h)), crop, (H, W))))
        store.add_annotations(anns)
        scene = QGraphicsScene()
        layer = AnnotationLayer(scene)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            layer.show(store.annotations(image), store.categories())
            best = min(best, time.perf_counter() - t)
        assert len(layer.items) == n
        store.close()
    return 1000 * best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    QApplication.instance() or QApplication([])
    for size in ((3000, 4000), (20000, 20000)):
        ms = strokes(size, n)
        print(f"stroke {size[1]}x{size[0]}: {ms:.1f} ms median over {2 * n} strokes "
              f"(target <= {STROKE_TARGET_MS:g} ms) {'OK' if ms <= STROKE_TARGET_MS else 'OVER'}")
    legacy = strokes((3000, 4000), max(5, n // 3), legacy=True)
    print(f"  same strokes on a legacy full-image RLE target (its first stroke stores it cropped): {legacy:.1f} ms")
    ms = open_500()
    print(f"open an image with 500 masks: {ms:.1f} ms (target <= {OPEN_TARGET_MS:g} ms) "
          f"{'OK' if ms <= OPEN_TARGET_MS else 'OVER'}")


if __name__ == "__main__":
    main()
