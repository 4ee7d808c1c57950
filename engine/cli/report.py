"""``anchorlab report``: the evaluation report of a checkpoint on a split, written to a folder.

``anchorlab report --project P --checkpoint C --split S --out DIR [--iou 0.5] [--score 0.25]
[--device auto] [--batch-size 4] [--max-images 0]`` writes report.json, per_class.csv,
confusion.csv (detection and segmentation), errors.csv (detection), pr_<class>.csv,
f1_<class>.csv, curves.csv (when the run is in the project) and PNG plots, shows progress on
stderr and prints ONE JSON line on stdout: ``{"task", "kind", "split", "images", "checkpoint",
"run_id", "metrics": {...}, "errors": {"TP", "FP", "FN", "FP_causes", "FN_causes"} (detection),
"out": DIR, "files": [paths written]}``. Any failure is one ``error: ...`` line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import CliError
from engine.cli.train import TrainProgress, _user_errors
from engine.jobs import CancelToken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="evaluation report of a checkpoint on a split: JSON, CSV and PNG files")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--out", type=Path, required=True, help="folder for the report files (created)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU for TP / confusion matrix, in (0, 1] (default 0.5)")
    p.add_argument("--score", type=float, default=0.25,
                   help="minimum score for the confusion matrix and error list, in [0, 1] (default 0.25)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-images", type=int, default=0, help="only the first N images of the split (0 = all)")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from engine.inference.report import report_job

    config = {"project": str(args.project), "checkpoint": str(args.checkpoint), "split": args.split,
              "iou": args.iou, "score": args.score, "device": args.device, "batch_size": args.batch_size,
              "max_images": args.max_images, "out": str(args.out)}
    sink = TrainProgress()
    try:
        result = report_job(config, sink, CancelToken())
    except _user_errors() as e:
        raise CliError(str(e)) from e
    finally:
        sink.close()
    result.pop("result")  # the report object itself (for the GUI); its numbers are in the files
    print(json.dumps(result))
    return 0
