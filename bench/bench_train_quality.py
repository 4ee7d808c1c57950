"""Quality bench, run as a user runs it: ``anchorlab train --project DEMO --max-minutes M`` -> mAP@.5 on val.

    .venv/bin/python bench/bench_train_quality.py [--minutes 10] [--project DIR] [-- extra train flags]

Generates a fresh 300-image demo project unless --project is given, runs exactly the command a user
types (the tiny Faster R-CNN from scratch, every default, the time budget alone deciding how long it
trains) as a subprocess on the CPU, and prints one JSON line: mAP@.5 (target >= 0.79, what the
hand-tuned bench reached before), mAP, steps, epochs, wall time and the load average (this machine
is shared: note it). Extra flags after ``--`` are passed to ``anchorlab train`` unchanged.
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
ANCHORLAB = [sys.executable, "-c", "import sys; from gui.entry import main; sys.exit(main())"]


def run_user_command(project: Path, minutes: float, extra: list[str]) -> tuple[dict, float]:
    cmd = [*ANCHORLAB, "train", "--project", str(project), "--max-minutes", str(minutes), *extra]
    print("$ anchorlab " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"anchorlab train failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--project", type=Path, default=None, help="existing demo project (default: generate one)")
    ap.add_argument("extra", nargs="*", help="more `anchorlab train` flags (after --)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.data.demo import generate_demo

    tmp = None
    project = args.project
    if project is None:
        tmp = tempfile.TemporaryDirectory(prefix="anchorlab-bench-")
        project = Path(tmp.name) / "demo"
        generate_demo(project, images=300, seed=0, unlabeled=0)
    load0 = os.getloadavg()[0]
    res, wall = run_user_command(project, args.minutes, args.extra)
    print(json.dumps({"command": f"anchorlab train --project DEMO --max-minutes {args.minutes:g} "
                                 + " ".join(args.extra),
                      "map50": round(res["map50"], 4), "map": round(res["map"], 4), "target_map50": 0.79,
                      "steps": res["step"], "epochs": res["epoch"] + 1, "wall_s": round(wall, 1),
                      "status": res["status"], "load_avg_1m_start": round(load0, 2),
                      "load_avg_1m_end": round(os.getloadavg()[0], 2)}))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
