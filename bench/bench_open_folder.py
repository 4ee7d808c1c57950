"""Opening a folder of 10,000 images vs just listing it.

Creates 10,000 tiny PNGs in a temp dir, then times (a) ``os.scandir`` listing of the directory (the floor:
no file is opened) and (b) what File > Add images from folder does: ``scan.add_folder_job`` (header-only
size of every file + batched inserts into a fresh project) followed by loading the image list model.
Prints both and their ratio.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine.jobs import CancelToken, Collector  # noqa: E402
from engine.project.store import Store  # noqa: E402

N = 10_000


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from engine.project.scan import add_folder_job
    from gui.images.panel import ImageListPanel

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        ok, buf = cv2.imencode(".png", np.full((12, 16, 3), 90, np.uint8))
        data = buf.tobytes()
        for i in range(N):
            (folder / f"img_{i:05d}.png").write_bytes(data)

        t0 = time.perf_counter()
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if e.name.endswith(".png"))
        t_list = time.perf_counter() - t0
        assert len(names) == N

        proj = Path(tmp) / "project"
        Store.create(proj).close()
        panel = ImageListPanel()
        t0 = time.perf_counter()
        res = add_folder_job({"project": str(proj), "folder": str(folder)}, Collector(), CancelToken())
        t_add = time.perf_counter() - t0
        with Store(proj) as store:
            t1 = time.perf_counter()
            panel.load(store)
            t_model = time.perf_counter() - t1
        t_open = time.perf_counter() - t0
        assert res["added"] == N and panel.model.rowCount() == N
        app.processEvents()

    print(f"list directory (os.scandir, {N} files): {t_list * 1e3:8.1f} ms")
    print(f"add folder job (headers + inserts):     {t_add * 1e3:8.1f} ms  ({t_add / N * 1e6:.0f} us/image)")
    print(f"image list model load:                  {t_model * 1e3:8.1f} ms")
    print(f"open folder total:                      {t_open * 1e3:8.1f} ms")
    print(f"ratio open / list: {t_open / t_list:.1f}x")


if __name__ == "__main__":
    main()
