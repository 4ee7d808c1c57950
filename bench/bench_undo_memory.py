"""Undo memory after N brush/eraser strokes on a 4000 x 3000 image (target: 1,000 strokes < 200 MB).

Runs the real commands (``stroke_command`` -> ``CommandRunner.execute``, committed to a real SQLite
store) and measures with tracemalloc what the undo stack holds: traced memory with the stack full
minus after ``stack.clear()``. Prints it against the target and against whole-image snapshots
(2 x H x W bytes per stroke), the design this replaces. Usage: python bench/bench_undo_memory.py [N]
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from engine.project.store import Store  # noqa: E402
from gui.labeling.commands import CommandRunner  # noqa: E402
from gui.labeling.stroke_command import PaintStroke, stroke_command  # noqa: E402

W, H = 4000, 3000
TARGET_MB = 200.0


def main(n: int = 1000) -> None:
    app = QCoreApplication.instance() or QCoreApplication([])  # noqa: F841 - QObjects want an application
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, Store.create(tmp) as store:
        image_id = store.add_image("big.png", W, H)
        cat = store.add_category("object").id
        runner = CommandRunner()
        runner.set_store(store)
        tracemalloc.start()
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        masks: list[int] = []
        patch_bytes = 0
        attempts = 0
        while runner.stack.count() < n and attempts < 4 * n:
            attempts += 1
            centre = rng.uniform([300, 300], [W - 300, H - 300])
            pts = centre + np.cumsum(rng.normal(0, 40, (int(rng.integers(3, 9)), 2)), axis=0)
            radius = float(rng.uniform(5, 30))
            erase = bool(masks) and rng.random() < 0.25
            target = store.annotation(masks[int(rng.integers(len(masks)))]) if masks and (
                erase or rng.random() < 0.9) else None
            cmd = stroke_command(runner, image_id, (H, W), pts, radius, erase, target, None if target else cat)
            if cmd is None or runner.execute(cmd) is None:
                continue
            patch_bytes += cmd.nbytes()
            if cmd.ann_id is not None and cmd.ann_id not in masks and cmd.exists_after:
                masks.append(cmd.ann_id)
            if runner.stack.count() % 250 == 0:
                print(f"  {runner.stack.count()} strokes, {time.perf_counter() - t0:.1f} s", flush=True)
        elapsed = time.perf_counter() - t0
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        steps = runner.stack.count()
        assert all(isinstance(runner.stack.command(i), PaintStroke) for i in range(steps))
        runner.stack.clear()
        gc.collect()
        empty = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    held_mb = (full - empty) / 2**20
    naive_mb = steps * 2 * W * H / 2**20
    print(f"undo memory: {steps} strokes on {W}x{H} hold {held_mb:.1f} MB "
          f"(patch bits {patch_bytes / 2**20:.1f} MB; {held_mb * 1024 / max(steps, 1):.1f} KB/stroke; "
          f"process growth while painting {(full - base) / 2**20:.1f} MB)")
    verdict = "PASS" if held_mb < TARGET_MB and steps >= n else "FAIL"
    print(f"ratio vs target {TARGET_MB:.0f} MB: {held_mb / TARGET_MB:.3f}  ({verdict})")
    print(f"ratio vs whole-image snapshots ({naive_mb / 1024:.1f} GB): {held_mb / naive_mb:.5f}")
    print(f"time: {elapsed / max(steps, 1) * 1000:.1f} ms per stroke (decode + patch + RLE encode + commit)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
