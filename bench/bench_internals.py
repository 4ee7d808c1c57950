"""Time to compute a feature map + stride/receptive field + Grad-CAM for one image with the tiny Faster R-CNN
on the CPU (target <= 300 ms on 2 cores), next to one plain forward of the same model in the same run.

Run: ``.venv/bin/python bench/bench_internals.py [--threads 1,2] [--repeats 7] [--size 256x320]``.
Prints, for the plain eval forward (no autograd), ``feature_map`` (one probed forward) and ``inspect``
(feature map, layer list and Grad-CAM of the top detection over every FPN level: one forward with
autograd, the box head again and one backward), the median wall time and the median CPU time of this
process (all its threads), and ``inspect`` / plain forward, for 1 and for 2 torch threads. The target is
judged on the best median wall time. On a shared, busy machine the wall time grows with the load, and with
2 threads OpenMP's spin-waiting inflates both numbers badly (a descheduled thread stalls the other); the
single-thread CPU time and the ratio to the plain forward are the numbers that hold under load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from engine.internals.features import feature_map
from engine.internals.inspect import inspect
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn

TARGET_MS = 300.0


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A demo-like picture: a smooth background with noise and a few flat-coloured boxes and discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([90 + 60 * xx / w, 100 + 40 * yy / h, 130 - 30 * xx / w], -1) + rng.normal(0, 8, (h, w, 3))
    for _ in range(5):
        c = rng.uniform(200, 255, 3)
        cy, cx, r = rng.uniform(20, h - 20), rng.uniform(20, w - 20), rng.uniform(8, 40)
        if rng.random() < 0.5:
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = c
        else:
            img[int(cy - r):int(cy + r), int(cx - r / 2):int(cx + r / 2)] = c
    return np.clip(img, 0, 255).astype(np.uint8)


def median_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process) over ``repeats`` calls after one warm-up call."""
    fn()  # warm-up (first-call allocations, lazy initialisation)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu))


def measure(model: torch.nn.Module, image: np.ndarray, threads: int, repeats: int) -> dict[str, tuple[float, float]]:
    torch.set_num_threads(threads)
    x = torch.tensor(image).permute(2, 0, 1).float() / 255

    def plain() -> None:
        with torch.no_grad():
            model([x])

    return {"plain forward (no autograd)": median_ms(plain, repeats),
            "feature map + stride/receptive field": median_ms(lambda: feature_map(model, image), repeats),
            "feature map + receptive field + Grad-CAM": median_ms(lambda: inspect(model, image), repeats)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="torch thread counts to measure, e.g. 2 or 1,2")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--size", default="256x320", help="image HxW (the tiny detector's default min_size is 256)")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec())  # tiny backbone, min_size 256, max_size 512
    model.eval()
    model.roi_heads.score_thresh = 0.0  # untrained weights: keep a detection to explain (same cost as trained)
    image = scene(h, w)
    result = inspect(model, image)
    g = result.gradcam
    print(f"tiny Faster R-CNN, image {h}x{w} -> model input {result.features.frame.input_hw}, "
          f"median of {args.repeats}; layer {result.features.layer.name} ({len(result.layers)} layers listed), feature "
          f"{tuple(result.features.feature.shape)}, Grad-CAM of detection {g.target_index} (label {g.target_label})")
    best = float("inf")
    for threads in (int(t) for t in args.threads.split(",")):
        times = measure(model, image, threads, args.repeats)
        print(f"  {threads} thread(s){'':32s} {'wall':>9s} {'CPU':>9s}")
        for name, (wall, cpu) in times.items():
            print(f"  {name:42s} {wall:6.1f} ms {cpu:6.1f} ms")
        (pw, pc), (aw, ac) = times["plain forward (no autograd)"], times["feature map + receptive field + Grad-CAM"]
        print(f"  ratio to the plain forward: {aw / pw:.2f} x wall, {ac / pc:.2f} x CPU")
        best = min(best, aw)
    print(f"feature map + Grad-CAM, best median wall time: {best:.1f} ms (target <= {TARGET_MS:.0f} ms: "
          f"{'met' if best <= TARGET_MS else 'NOT met'})")


if __name__ == "__main__":
    main()
