"""Model-assisted labeling commands. Each ends by printing ONE JSON line on stdout; progress goes to stderr.

``anchorlab prelabel --project P --checkpoint C [--split S | --unlabeled | --image ID ...] [--threshold T]
[--overwrite-manual] [--device D]`` stores a checkpoint's suggestions (provenance ``model:<run id>``,
state ``suggested``) and prints ``{"images": n, "suggestions": m, "skipped_manual": k}``; images that
already have labels of the model's kind are skipped unless ``--overwrite-manual`` (which replaces them).

``anchorlab rank --project P --checkpoint C [--split S | --unlabeled | --image ID ...] [--limit N]``
prints ``{"order": [[image id, uncertainty], ...], "images": n}``, most uncertain first (default:
the unlabeled images).

``anchorlab suggestions --project P`` prints the per-run quality counts:
``{"runs": {"model:<run>": {"accepted_unchanged", "edited", "rejected", "pending"}}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import CliError
from engine.cli.args import int_at_least, score
from engine.cli.progress import ProgressBar
from engine.jobs import CancelToken, Job
from engine.project.store import Store, StoreError


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--split", default=None, help="images of this split")
    where.add_argument("--unlabeled", action="store_true", help="images without labels of the model's kind")
    where.add_argument("--image", type=int, action="append", default=None, metavar="ID", help="an image id (repeat)")
    p.add_argument("--device", default="auto")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prelabel", help="store a checkpoint's suggestions for images (accepted later)")
    _where(p)
    p.add_argument("--threshold", type=score, default=0.5, help="minimum score in [0, 1] (default 0.5)")
    p.add_argument("--overwrite-manual", action="store_true",
                   help="also pre-label images that have labels, replacing those labels")
    p.set_defaults(func=_prelabel)
    p = sub.add_parser("rank", help="order images by a checkpoint's uncertainty, most uncertain first")
    _where(p)
    p.add_argument("--limit", type=int_at_least(0), default=0, help="print the first N only (0: all)")
    p.set_defaults(func=_rank)
    p = sub.add_parser("suggestions", help="per-run counts of accepted, edited, rejected and pending suggestions")
    p.add_argument("--project", type=Path, required=True)
    p.set_defaults(func=_suggestions)


def _config(args: argparse.Namespace) -> dict:
    return {"project": str(args.project), "checkpoint": str(args.checkpoint), "split": args.split,
            "unlabeled": args.unlabeled, "image_ids": list(args.image or []), "device": args.device}


def _run(job: Job, config: dict) -> dict:
    from engine.assist.prelabel import PrelabelError
    from engine.device import DeviceError
    from engine.tasks.checkpoint import CheckpointError

    bar = ProgressBar()
    try:
        return job(config, bar, CancelToken())
    except (PrelabelError, CheckpointError, DeviceError, StoreError) as e:
        raise CliError(str(e)) from e
    finally:
        bar.end_line()


def _prelabel(args: argparse.Namespace) -> int:
    from engine.assist.prelabel import prelabel_job

    result = _run(prelabel_job, {**_config(args), "threshold": args.threshold,
                                 "overwrite_manual": args.overwrite_manual})
    print(json.dumps({k: result[k] for k in ("images", "suggestions", "skipped_manual")}))
    return 0


def _rank(args: argparse.Namespace) -> int:
    from engine.assist.uncertainty import uncertainty_job

    result = _run(uncertainty_job, _config(args))
    order = result["order"][: args.limit] if args.limit else result["order"]
    print(json.dumps({"order": order, "images": result["images"]}))
    return 0


def _suggestions(args: argparse.Namespace) -> int:
    with Store(args.project) as store:
        runs = {p: store.assist_stats(p) for p in store.assist_runs()}
    print(json.dumps({"runs": runs}))
    return 0
