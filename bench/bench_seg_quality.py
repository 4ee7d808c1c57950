"""Segmentation quality bench: the commands a user types, on a fresh 300-image demo, mIoU before/after CRF.

    .venv/bin/python bench/bench_seg_quality.py [--minutes 3] [--project DIR] [--backbone tiny]

Runs, as subprocesses (the ``anchorlab`` console script next to this Python):

    anchorlab demo --out DIR --images 300 --unlabeled 0      (unless --project is given)
    anchorlab train --project DIR --model deeplab --backbone tiny --max-minutes M
    anchorlab eval --project DIR --checkpoint best.pt --crf exact   (skipped without pydensecrf)
    anchorlab eval --project DIR --checkpoint best.pt --crf fast

and prints one JSON line: val mIoU / boundary F / pixel accuracy of the network, the same after
each CRF backend with its milliseconds per image (CRF only, at the images' own size, default
``CrfParams``), training steps and wall times. CPU time is shared with whatever else runs on the
machine: note the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def anchorlab() -> list[str]:
    exe = Path(sys.executable).with_name("anchorlab")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from gui.entry import main; "
                                                                   "sys.exit(main())"]


def run(args: list[str], threads: int = 0) -> tuple[dict, float]:
    """Run ``anchorlab <args>``; its one JSON stdout line and the wall time. Stderr passes through."""
    cmd = anchorlab() + args
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads > 0 else None
    print(f"$ {'OMP_NUM_THREADS=' + str(threads) + ' ' if env else ''}anchorlab " + " ".join(args),
          file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False, env=env)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"anchorlab {args[0]} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--project", type=Path, default=None, help="existing demo project (default: generate one)")
    ap.add_argument("--backbone", default="tiny")
    ap.add_argument("--threads", type=int, default=-1,
                    help="OMP_NUM_THREADS for the commands; -1 = unset on an idle machine, 1 when the load "
                         "average is >= 1 (two OpenMP threads on a busy 2-core box ran a step 5x slower here)")
    ap.add_argument("--train-arg", action="append", default=[],
                    help="extra flag for train, e.g. --train-arg=--lr=0.002")
    args = ap.parse_args()
    if args.threads < 0:
        args.threads = 0 if os.getloadavg()[0] < 1.0 else 1
    tmp = None
    project = args.project
    if project is None:
        tmp = tempfile.TemporaryDirectory(prefix="anchorlab-seg-bench-")
        project = Path(tmp.name) / "demo"
        run(["demo", "--out", str(project), "--images", "300", "--unlabeled", "0"])
    load0 = os.getloadavg()[0]
    train, train_wall = run(["train", "--project", str(project), "--model", "deeplab", "--backbone", args.backbone,
                             "--max-minutes", str(args.minutes), *args.train_arg], args.threads)
    ckpt = train["checkpoint"]
    out: dict = {"backbone": args.backbone, "omp_threads": args.threads or "default", "max_minutes": args.minutes,
                 "train_wall_s": round(train_wall, 1),
                 "steps": train["step"], "epochs": train["epoch"] + 1, "status": train["status"],
                 "train_miou": round(train["miou"], 4)}
    sys.path.insert(0, str(ROOT))
    from engine.crf import crf_available

    for backend in ("exact", "fast"):
        if backend == "exact" and not crf_available():
            out["exact"] = "pydensecrf not installed"
            continue
        res, wall = run(["eval", "--project", str(project), "--checkpoint", ckpt, "--crf", backend], args.threads)
        out.setdefault("miou", round(res["miou"], 4))
        out.setdefault("boundary_f", round(res["boundary_f"], 4))
        out.setdefault("pixel_acc", round(res["pixel_acc"], 4))
        out.setdefault("val_images", res["images"])
        out[f"miou_crf_{backend}"] = round(res["miou_crf"], 4)
        out[f"boundary_f_crf_{backend}"] = round(res["boundary_f_crf"], 4)
        out[f"pixel_acc_crf_{backend}"] = round(res["pixel_acc_crf"], 4)
        out[f"crf_ms_per_image_{backend}"] = round(res["crf_ms_per_image"], 1)
        out[f"eval_wall_s_{backend}"] = round(wall, 1)
    out["load_avg_1m_start"] = round(load0, 2)
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
