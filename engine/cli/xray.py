"""``anchorlab xray``: capture one image's Faster R-CNN internals into an .npz (keys: docs/xray.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.cli import CliError
from engine.cli.progress import ProgressBar
from engine.events import ArraysReady, Event
from engine.jobs import CancelToken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("xray", help="capture anchors, proposals, sampled RoIs and detections of one image "
                                    "into an .npz (original image pixels)")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--image", required=True, help="image id, or an image path (project-relative or absolute)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", type=int, default=None, help="run id: use its best checkpoint")
    src.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (.pt)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--roi", type=int, default=None, help="sampled RoI whose RoI Align grid is saved "
                                                        "(default: the first foreground RoI)")
    p.add_argument("--seed", type=int, default=0, help="seed of the anchor and RoI samplers (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    p.set_defaults(func=_xray)


def _xray(args: argparse.Namespace) -> int:
    from engine.xray.job import xray_job

    if args.out.suffix != ".npz":
        raise CliError(f"--out {args.out}: the output must be an .npz file")
    got: list[ArraysReady] = []
    bar = ProgressBar()

    def sink(event: Event) -> None:
        if isinstance(event, ArraysReady) and event.kind == "xray":
            got.append(event)
        else:
            bar(event)

    config = {"project": str(args.project), "image": args.image, "run": args.run,
              "checkpoint": str(args.checkpoint) if args.checkpoint else None, "roi_index": args.roi,
              "seed": args.seed, "device": args.device}
    summary = xray_job(config, sink, CancelToken())
    if not got:
        raise CliError("the capture produced no arrays")
    arrays = dict(got[-1].arrays)
    meta = got[-1].meta
    arrays["meta_json"] = np.asarray(json.dumps(meta, default=str))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(args.out)
    print(json.dumps({"out": str(args.out.resolve()), **summary}))
    return 0
