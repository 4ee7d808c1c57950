"""Quality bench: tiny Faster R-CNN from scratch on the 300-image demo, CPU, time-limited -> mAP@.5 on val.

    .venv/bin/python bench/bench_train_quality.py [--minutes 10] [--threads 2] [--project DIR]

Generates a fresh demo project (300 labeled images) in a temporary folder unless --project is
given, trains with the trainer's defaults for the tiny backbone (plus the options below) for at
most --minutes (the cosine schedule anneals within that time; the final weights are evaluated
inside the limit), and prints one JSON line with mAP@.5 (target >= 0.7), mAP, images/s, steps and
wall time. CPU time is shared with whatever else runs on the machine: note the load average.

Tuning notes (4-minute runs on the same 300-image demo, 1 thread on a busy 2-core box, mAP@.5):
SGD lr 0.02, one anchor size per level, scale+colour jitter, 204 px: 0.08; two anchor sizes per
level: 0.11; plus ratios 0.7/1/1.4: 0.14; AdamW 1e-3, flips only, 160 px: 0.31; same with lr 2e-3:
0.20; SGD 0.04: 0.19; batch 2 instead of 4: 0.21 at 3 minutes (0.26 with batch 4).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.config import TrainConfig  # noqa: E402
from engine.data.demo import generate_demo  # noqa: E402
from engine.events import EpochSummary, Notice, StepLosses  # noqa: E402
from engine.jobs import CancelToken  # noqa: E402
from engine.train.job import train_job  # noqa: E402


class Log:
    """Sink: one stderr line per epoch, the step rate kept for the summary."""

    def __init__(self) -> None:
        self.ips: list[float] = []
        self.t0 = time.monotonic()
        self.epoch_losses: dict[str, list[float]] = {}

    def __call__(self, e: object) -> None:
        if isinstance(e, StepLosses):
            self.ips.append(e.images_per_s)
            for k, v in e.losses.items():
                self.epoch_losses.setdefault(k, []).append(v)
        elif isinstance(e, EpochSummary):
            m = e.metrics
            train = " ".join(f"{k.removeprefix('loss_')[:6]}={sum(v) / len(v):.3f}"
                             for k, v in self.epoch_losses.items())
            self.epoch_losses = {}
            val = (f" | val loss {e.val_losses.get('loss', float('nan')):.3f} map50 {m['map50']:.3f} "
                   f"map {m['map']:.3f} {'*' if e.is_best else ''}") if m else ""
            print(f"[{time.monotonic() - self.t0:6.0f}s] epoch {e.epoch + 1} step {e.step} train {train}{val}",
                  file=sys.stderr, flush=True)
        elif isinstance(e, Notice):
            print(f"note: {e.message}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads; 0 = 2 on an idle machine, 1 when the load average is >= 1 "
                         "(two spinning OpenMP threads on a busy 2-core box ran a step 6x slower here)")
    ap.add_argument("--project", type=Path, default=None, help="existing demo project (default: generate one)")
    ap.add_argument("--epochs", type=int, default=40, help="schedule length if time allowed it")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--eval-every", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="any other TrainConfig field, e.g. --set optimizer='\"adamw\"'")
    args = ap.parse_args()
    if args.threads <= 0:
        args.threads = 2 if os.getloadavg()[0] < 1.0 else 1
    torch.set_num_threads(args.threads)
    tmp = None
    project = args.project
    if project is None:
        tmp = tempfile.TemporaryDirectory(prefix="anchorlab-bench-")
        project = Path(tmp.name) / "demo"
        t = time.monotonic()
        generate_demo(project, images=300, seed=0, unlabeled=0)
        print(f"generated demo in {time.monotonic() - t:.1f}s", file=sys.stderr)
    # short CPU budget: smaller input (160 px short side instead of the data's median 204) and flips
    # only — scale/colour jitter slowed learning within 4-10 minutes (see the module docstring)
    options = {"augment_scale": False, "augment_color": False, "min_size": 160, "max_size": 256,
               **{k: json.loads(v) for k, _, v in (item.partition("=") for item in args.set)}}
    cfg = TrainConfig(project=str(project), backbone="tiny", epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, max_minutes=args.minutes, eval_every=args.eval_every, device="cpu", **options)
    print(f"options: optimizer={cfg.optimizer} lr={cfg.lr} batch={cfg.batch_size} {options}", file=sys.stderr)
    log = Log()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    res = train_job(cfg.to_dict(), log, CancelToken())
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ips = sorted(log.ips)[len(log.ips) // 2] if log.ips else 0.0
    print(json.dumps({"map50": round(res["map50"], 4), "map": round(res["map"], 4), "target_map50": 0.7,
                      "steps": res["step"], "epochs": res["epoch"] + 1, "wall_s": round(wall, 1),
                      "train_cpu_s": round(ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime, 1),
                      "median_images_per_s": round(ips, 2), "threads": args.threads,
                      "load_avg_1m": round(os.getloadavg()[0], 2), "status": res["status"]}))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
