"""The labeling monkey (issue 12) at full length: 2,000 seeded random actions through real mouse and key events
on the main window over a demo project, then the same checks as the test (store == canvas, undo-all returns the
store to its start, no thread left behind). Prints actions per second.
Usage: python bench/bench_monkey.py [actions] [seed]
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.data.demo import generate_demo  # noqa: E402
from gui.labeling.monkey import Monkey, snapshot  # noqa: E402


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as d:
        os.environ["ANCHORLAB_SETTINGS"] = str(Path(d) / "settings.ini")
        root = Path(d) / "project"
        generate_demo(root, images=40, seed=7, unlabeled=4)
        from gui.main_window import MainWindow
        w = MainWindow(root)
        w.resize(1100, 760)
        w.show()
        app.processEvents()
        w.images_feature.loader.wait(10)
        threads = set(threading.enumerate())  # the process-wide worker pool is up by now; it is meant to stay
        w.labeling.tags.add_tag("monkey")
        w.labeling.stack.clear()
        start = snapshot(w.store)
        errors: list[str] = []
        sys.excepthook = lambda t, v, tb: errors.append(f"{t.__name__}: {v}")
        monkey = Monkey(w.canvas, w.labeling, lambda: w.images.step(1), seed=seed,
                        wait_image=lambda: w.images_feature.loader.wait(10))
        t = time.perf_counter()
        counts = monkey.run(n)
        dt = time.perf_counter() - t
        w.images_feature.loader.wait(10)
        stored = {a.id for a in w.store.annotations(w.image_id)}
        same = stored == set(w.annotations.items)
        undone = 0
        while w.labeling.stack.canUndo():
            w.labeling.undo()
            undone += 1
        back = snapshot(w.store) == start
        w.close()
        app.processEvents()
        left = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
    print(f"monkey: {n} actions in {dt:.1f} s = {n / dt:.1f} actions/s (seed {seed}); "
          f"{sum(1 for k in counts if counts[k])} kinds of action")
    print(f"  exceptions: {len(errors)}; store == canvas: {same}; undo-all ({undone} steps) back to start: {back}; "
          f"threads left: {left or 'none'}")
    for e in errors[:5]:
        print("  ", e)
    return 0 if not errors and same and back and not left else 1


if __name__ == "__main__":
    sys.exit(main())
