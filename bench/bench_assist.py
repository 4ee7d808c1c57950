"""Model-assisted labeling (issue 19): seconds of simulated labeling per image, with and without the assistant.

An oracle labeler (it knows the ground-truth boxes) labels the held-out test split of a demo project through
REAL mouse and key events on the main window (offscreen), twice, each on a fresh copy:

- without assistance: per image the Box tool key, then per object press + drag + release + category key;
- with assistance (a Faster R-CNN trained here on the train split for ``--minutes`` CPU minutes or ``--steps``):
  per suggestion shown (score >= ``--min-score``), Enter when it matches an object not labeled yet (IoU >= 0.5,
  same category), else Del; then the Box tool key and press + drag + release + category key per object missed.

The driver counts every click and keystroke it issues (opening the image is not counted: the same in both).
Seconds follow the keystroke-level model (Card, Moran & Newell 1980): key K = 0.28 s, press = point + button
P + B = 1.2 s, drag = P = 1.1 s, release = B = 0.1 s, plus one mental step M = 1.35 s per object drawn and per
suggestion judged. Printed: events and seconds per image for both, their ratio, and that both runs end with
every object labeled. Usage: python bench/bench_assist.py [--images 60] [--minutes 3] [--steps 0] [--min-score 0.5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.config import TrainConfig  # noqa: E402
from engine.data.demo import generate_demo  # noqa: E402
from engine.jobs import CancelToken  # noqa: E402
from engine.project.store import Store  # noqa: E402
from engine.train.job import train_job  # noqa: E402
from gui.canvas.testing import drag, key  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

K, P, B, M = 0.28, 1.1, 0.1, 1.35
SECONDS = {"key": K, "press": P + B, "drag": P, "release": B, "decide": M}
IOU = 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def wait(app: QApplication, cond: Callable[[], bool], timeout_s: float = 300.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.002)


def hold_out(root: Path) -> tuple[dict[int, list[tuple[np.ndarray, int]]], list[int]]:
    """Delete every annotation of the test split; returns its ground-truth boxes {image: [(xyxy, category)]}."""
    with Store(root) as s:
        cats = [c.id for c in s.categories()]
        gt = {}
        for im in s.images("test"):
            anns = s.annotations(im.id)
            gt[im.id] = [(a.geometry.bbox(), a.category_id) for a in anns if a.geometry.kind == "box"]
            s.delete_annotations(a.id for a in anns if a.id is not None)
    return gt, cats


class Driver:
    """Real events on the canvas, counted."""

    def __init__(self, window: object) -> None:
        self.w = window
        self.events: Counter[str] = Counter()

    def key(self, k: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        key(self.w.canvas, k, mods)
        self.events["key"] += 1

    def draw(self, box: np.ndarray, category_index: int) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        drag(self.w.canvas, [(x1, y1), (x2, y2)])
        self.events.update(press=1, drag=1, release=1, decide=1)
        self.key(Qt.Key(Qt.Key.Key_1 + category_index))

    def open(self, app: QApplication, image_id: int) -> None:
        self.w.session.request_image(image_id)
        wait(app, lambda: self.w.session.image_id == image_id)
        self.w.images_feature.loader.wait(10)
        self.w.canvas.setFocus()


def label(app: QApplication, root: Path, gt: dict, cats: list[int], run_id: int | None,
          min_score: float) -> tuple[Counter, int, float]:
    """Label every held-out image; returns (events, objects labeled right, seconds waiting for suggestions)."""
    w = MainWindow(root)
    w.resize(1280, 900)
    w.show()
    app.processEvents()
    d = Driver(w)
    waited = 0.0
    a = w.assist
    if run_id is not None:
        a.show()
        a.panel.min_score.setValue(min_score)
        a.set_run(run_id)
    for image_id, objects in gt.items():
        d.open(app, image_id)
        todo = list(range(len(objects)))
        if run_id is not None:
            t = time.perf_counter()
            wait(app, lambda i=image_id: "suggest" not in a.jobs and w.session.image_id == i)
            waited += time.perf_counter() - t
            while a.pending:
                s = next(x for x in a.pending if x.id == a.current)
                box = s.geometry.bbox()
                hit = next((k for k in todo if objects[k][1] == s.category_id and iou(box, objects[k][0]) >= IOU),
                           None)
                d.events["decide"] += 1
                if hit is not None:
                    todo.remove(hit)
                    d.key(Qt.Key.Key_Return)
                else:
                    d.key(Qt.Key.Key_Delete)
        if todo:
            d.key(Qt.Key.Key_R)  # Box tool
            for k in todo:
                d.draw(objects[k][0], cats.index(objects[k][1]))
            d.key(Qt.Key.Key_V)  # back to Select: Enter/Del review the next image's suggestions
    right = 0
    for image_id, objects in gt.items():
        anns = [x for x in w.store.annotations(image_id) if x.geometry.kind == "box"]
        right += sum(any(x.category_id == c and iou(x.geometry.bbox(), b) >= IOU for x in anns) for b, c in objects)
    w.close()
    app.processEvents()
    return d.events, right, waited


def seconds(events: Counter) -> float:
    return sum(SECONDS[k] * n for k, n in events.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--minutes", type=float, default=3.0, help="CPU minutes of training for the assistant")
    ap.add_argument("--steps", type=int, default=0, help="training steps instead of minutes (0: use minutes)")
    ap.add_argument("--min-score", type=float, default=0.5, help="suggestions shown from this score")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ANCHORLAB_SETTINGS"] = str(Path(tmp) / "settings.ini")
        base = Path(tmp) / "base"
        generate_demo(base, images=args.images, seed=11, unlabeled=0)
        gt, cats = hold_out(base)
        n_obj = sum(len(v) for v in gt.values())
        t = time.perf_counter()
        cfg = TrainConfig(project=str(base), model="faster_rcnn", backbone="tiny", pretrained=False, val_split="",
                          device="cpu", min_size=160, max_size=320, batch_size=4, max_steps=args.steps,
                          max_minutes=0.0 if args.steps else args.minutes, run_name="bench assist")
        run = train_job(cfg.to_dict(), lambda e: None, CancelToken())
        train_s = time.perf_counter() - t
        results = {}
        for name, run_id in (("without", None), ("with", int(run["run_id"]))):
            root = Path(tmp) / name
            shutil.copytree(base, root)
            results[name] = label(app, root, gt, cats, run_id, args.min_score)
    n = len(gt)
    print(f"assist bench: {n} held-out demo images, {n_obj} objects; assistant = Faster R-CNN tiny trained "
          f"{train_s:.0f} s on the train split (run {run['run_id']}); suggestions shown from score {args.min_score}")
    for name, (events, right, waited) in results.items():
        clicks = sum(v for k, v in events.items() if k != "decide")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(events.items()))
        extra = f"; waited {waited / n:.2f} s/image for suggestions (wall clock, not counted)" if name == "with" else ""
        print(f"  {name:7s} assistance: {clicks / n:5.2f} clicks+keys/image, {seconds(events) / n:5.2f} s/image "
              f"simulated ({detail}); objects labeled right {right}/{n_obj}{extra}")
    s_without, s_with = seconds(results["without"][0]) / n, seconds(results["with"][0]) / n
    print(f"  with / without: {s_with / s_without:.2f} of the time ({s_without - s_with:+.2f} s saved per image); "
          f"KLM seconds per event: {SECONDS}")


if __name__ == "__main__":
    main()
