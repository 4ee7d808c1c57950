"""Loss-option bench: the same tiny Faster R-CNN, the same minutes, with CE, focal and OHEM -> mAP@.5 table.

    .venv/bin/python bench/bench_loss_options.py [--minutes 2] [--project DIR] [-- extra train flags]

Generates one fresh 300-image demo project (unless --project is given) and runs, as subprocesses, exactly
the commands a user types, one after the other on the same machine:

    anchorlab train --project DEMO --max-minutes M                                      (ce: torchvision's)
    anchorlab train --project DEMO --max-minutes M --rpn-loss focal --roi-loss focal    (focal)
    anchorlab train --project DEMO --max-minutes M --roi-loss ohem                      (ohem, k = 128)

Prints a markdown table (mAP@.5, mAP, optimisation steps, and the run's imbalance numbers averaged over
its last 50 steps, read from the project's metrics: foreground / background anchors per image, the share
of the objectness loss from easy negatives, the RoI foreground fraction) and one JSON line with the same.
Each run gets the same wall time, so a slower option trains fewer steps: that is part of what is measured.
The load average is printed too: this machine may be shared.
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
VARIANTS = {
    "ce": [],
    "focal": ["--rpn-loss", "focal", "--roi-loss", "focal"],
    "ohem": ["--roi-loss", "ohem"],
}
STATS = ("stat_fg_anchors", "stat_bg_anchors", "stat_easy_neg_share", "stat_roi_fg_fraction")


def run_user_command(project: Path, minutes: float, flags: list[str]) -> tuple[dict, float]:
    cmd = [*ANCHORLAB, "train", "--project", str(project), "--max-minutes", f"{minutes:g}", *flags]
    print("$ anchorlab " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"anchorlab train failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.monotonic() - t0


def last_stats(project: Path, run_id: int, last: int = 50) -> dict[str, float]:
    """Mean of each ``stat_*`` training metric over the run's last ``last`` steps."""
    from engine.project.store import Store

    rows: dict[str, list[tuple[int, float]]] = {}
    with Store(project) as store:
        for step, _, split, name, value in store.metrics(run_id):
            if split == "train" and name.startswith("stat_"):
                rows.setdefault(name, []).append((step, value))
    out = {}
    for name, values in rows.items():
        tail = [v for _, v in sorted(values)[-last:]]
        out[name] = sum(tail) / len(tail)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="per option (default 2)")
    ap.add_argument("--project", type=Path, default=None, help="existing demo project (default: generate one)")
    ap.add_argument("extra", nargs="*", help="more `anchorlab train` flags for every run (after --)")
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
    results = {}
    for name, flags in VARIANTS.items():
        res, wall = run_user_command(project, args.minutes, [*flags, *args.extra])
        stats = last_stats(project, int(res["run_id"]))
        results[name] = {"flags": " ".join(flags), "map50": round(res["map50"], 4), "map": round(res["map"], 4),
                         "steps": res["step"], "wall_s": round(wall, 1), "status": res["status"],
                         **{k: round(stats.get(k, float("nan")), 4) for k in STATS}}
    print(f"\nsame tiny Faster R-CNN, same demo (300 images), {args.minutes:g} min each "
          f"(load avg {load0:.2f} -> {os.getloadavg()[0]:.2f})\n")
    print("| loss | flags | mAP@.5 | mAP | steps | fg / bg anchors per image | easy-neg share of objectness loss "
          "| RoI fg fraction |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | `{r['flags'] or '(defaults)'}` | {r['map50']:.3f} | {r['map']:.3f} | {r['steps']} | "
              f"{r['stat_fg_anchors']:.1f} / {r['stat_bg_anchors']:.0f} | {r['stat_easy_neg_share']:.3f} | "
              f"{r['stat_roi_fg_fraction']:.3f} |")
    print(json.dumps({"minutes": args.minutes, "extra": args.extra, "results": results,
                      "load_avg_1m_start": round(load0, 2), "load_avg_1m_end": round(os.getloadavg()[0], 2)}))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
