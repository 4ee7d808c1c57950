"""``anchorlab analyze``: dataset statistics and suggested anchors into a JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import CliError
from engine.project.store import SPLITS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="class counts, box shape statistics and k-means anchors of a project "
                                       "into a JSON file")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--split", choices=SPLITS, default=None, help="one split (default: all images)")
    p.add_argument("--k", type=int, default=9, help="number of k-means anchors (default 9)")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output .json")
    p.set_defaults(func=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    from engine.analysis.analyze import analyze_project

    if args.k < 1:
        raise CliError(f"--k {args.k}: need at least 1 anchor")
    try:
        stats = analyze_project(args.project, args.split, args.k, seed=args.seed)
    except ValueError as e:
        raise CliError(str(e)) from e
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(stats, indent=1))
    tmp.replace(args.out)
    km, cur = stats["kmeans_anchors"], stats["current_anchors"]
    print(json.dumps({"out": str(args.out.resolve()), "split": args.split, "images": stats["images"],
                      "objects": stats["objects"], "k": km["k"],
                      "kmeans_mean_best_iou": round(km["mean_best_iou"], 4),
                      "kmeans_recall_at_0_5": round(km["recall_at_0_5"], 4),
                      "current_mean_best_iou": round(cur["mean_best_iou"], 4),
                      "current_recall_at_0_5": round(cur["recall_at_0_5"], 4)}))
    return 0
