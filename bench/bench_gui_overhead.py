"""Overhead of watching training in the GUI: images/s GUI-driven vs headless, and event-loop latency.

Same process, same config (tiny Faster R-CNN on CPU, a demo project, no validation so only the
training loop is timed). Runs alternate headless / GUI ``--repeats`` times after one warm-up:

* headless: ``train_job(config, null_sink, CancelToken())`` in a plain worker thread;
* GUI: the real ``MainWindow`` (offscreen) with the Train and Plots docks visible, Start clicked,
  the job on the bridge's ``train`` lane, plots redrawn by their timer, until ``job_done``.

Throughput = images trained / wall time of the job (model build included in both); the ratio is
printed for the best and the median of the runs (on a shared machine the best is the least
disturbed). Load-independent companions: the training thread's CPU time per image (GUI vs
headless) and the GUI thread's CPU time as a share of the run. A final GUI
run adds a 10 ms ``QTimer`` in the GUI thread that records how late each tick fires; its p99 is
the event-loop latency during training (kept out of the throughput runs: waking the GUI thread
100 times a second is the probe's own cost, not the app's). Targets (issue 4): ratio >= 0.95,
p99 <= 50 ms. Prints, never asserts.

    .venv/bin/python bench/bench_gui_overhead.py [--steps 30] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def make_config(project: Path, steps: int, threads: int) -> dict:
    from engine.config import TrainConfig

    return TrainConfig(project=str(project), backbone="tiny", pretrained=False, device="cpu", batch_size=2,
                       epochs=1000, max_steps=steps, max_images=16, val_split="", warmup_steps=5, lr=0.005,
                       extra={"threads": threads}).to_dict()


def threaded_job(config: dict, sink, cancel) -> dict:
    """train_job with the config's torch thread count set in the thread that runs it; adds the
    thread's CPU seconds as ``cpu_s`` to the result."""
    from engine.train.job import train_job

    torch.set_num_threads(int(config["extra"]["threads"]))
    c0 = time.thread_time()
    result = train_job(config, sink, cancel)
    LAST["job_cpu_s"] = time.thread_time() - c0
    return result


LAST: dict = {}  # CPU seconds of the last job's thread (set by threaded_job)


def headless(config: dict) -> dict:
    """One headless run (null sink) in a plain worker thread: {ips, job_cpu_s}."""
    from engine.jobs import CancelToken, null_sink

    out: dict = {}

    def work() -> None:
        t0 = time.perf_counter()
        result = threaded_job(config, null_sink, CancelToken())
        out["images"] = result["step"] * config["batch_size"]
        out["ips"] = out["images"] / (time.perf_counter() - t0)
        out["job_cpu_s"] = LAST["job_cpu_s"]

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return out


class LatencyProbe:
    """A 10 ms QTimer; ``lateness_ms`` holds how much later than 10 ms each tick came."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000
        self.lateness_ms: list[float] = []
        self._last = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last - self.interval) * 1000))
        self._last = now


def gui_run(window, config: dict, probe: LatencyProbe | None = None) -> dict:
    """One run started from the Train panel: {ips, job_cpu_s, gui_cpu_s, wall_s, redraws}."""
    from PySide6.QtCore import QEventLoop

    training = window.training
    training.job = threaded_job
    training.train.set_config(config)
    differ = {k for k, v in training.train.config().items() if config.get(k) != v}
    if differ:
        raise SystemExit(f"the Train panel cannot represent this config: {sorted(differ)}")
    loop = QEventLoop()
    done: dict = {}

    def on_done(job_id: str, ok: bool) -> None:
        if job_id != done.get("job"):  # other panels run jobs on the bridge too
            return
        done["t"] = time.perf_counter()
        done["ok"] = ok
        loop.quit()

    window.bridge.job_done.connect(on_done)  # runs on the GUI thread (bridge timer), not the lane thread
    redraws0 = training.plots.redraws
    if probe is not None:
        probe.start()
    t0, c0 = time.perf_counter(), time.thread_time()
    training.train.start_button.click()
    done["job"] = training.job_id
    loop.exec()
    gui_cpu = time.thread_time() - c0
    if probe is not None:
        probe.stop()
    window.bridge.job_done.disconnect(on_done)
    if not done.get("ok"):
        raise SystemExit("the GUI-driven run failed: " + training.train.messages.toPlainText()[-500:])
    images = training.train.progress.value() * config["batch_size"]
    wall = done["t"] - t0
    return {"images": images, "ips": images / wall, "job_cpu_s": LAST["job_cpu_s"], "gui_cpu_s": gui_cpu,
            "wall_s": wall, "redraws": training.plots.redraws - redraws0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from engine.data.demo import generate_demo

    tmp = Path(tempfile.mkdtemp(prefix="anchorlab-bench-gui-"))
    os.environ["ANCHORLAB_SETTINGS"] = str(tmp / "settings.ini")
    project = tmp / "project"
    generate_demo(project, images=24, unlabeled=0)
    config = make_config(project, args.steps, args.threads)
    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow

    window = MainWindow(project)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    probe = LatencyProbe()

    print(f"tiny Faster R-CNN, CPU, {args.threads} torch thread(s), batch 2, {args.steps} steps, "
          f"{os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.1f}", flush=True)
    headless({**config, "max_steps": 3})  # warm-up: imports, allocator, first-call costs
    h, g = [], []
    for i in range(args.repeats):
        h.append(headless(config))
        g.append(gui_run(window, config))
        print(f"  repeat {i + 1}: headless {h[-1]['ips']:.2f} img/s   GUI {g[-1]['ips']:.2f} img/s   "
              f"GUI thread busy {g[-1]['gui_cpu_s'] / g[-1]['wall_s']:.1%}   plot setData calls "
              f"{g[-1]['redraws']}   load {os.getloadavg()[0]:.1f}", flush=True)
    med = statistics.median
    cpu_ratio = med(r["job_cpu_s"] / r["images"] for r in h) / med(r["job_cpu_s"] / r["images"] for r in g)
    for how, f in (("best of", max), ("median", med)):
        hi, gi = f(r["ips"] for r in h), f(r["ips"] for r in g)
        print(f"images/s {how} {args.repeats}: headless {hi:.2f}   GUI {gi:.2f}   ratio GUI/headless {gi / hi:.3f}  "
              "(target >= 0.95; wall clock: other load on the machine shows up here)")
    print(f"training-thread CPU per image  ratio headless/GUI {cpu_ratio:.3f}   GUI thread CPU "
          f"{med(r['gui_cpu_s'] / r['wall_s'] for r in g):.1%} of the run's wall time "
          f"({med(r['gui_cpu_s'] / r['images'] * 1000 for r in g):.1f} ms per image)")
    p = gui_run(window, config, probe)
    lat = np.asarray(probe.lateness_ms)
    print(f"GUI event-loop lateness of a 10 ms timer during training: p50 {np.percentile(lat, 50):.1f} ms   "
          f"p99 {np.percentile(lat, 99):.1f} ms   max {lat.max():.1f} ms   ({len(lat)} ticks; "
          f"target p99 <= 50 ms; that run {p['ips']:.2f} img/s)")
    window.close()


if __name__ == "__main__":
    main()
