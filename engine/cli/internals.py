"""``anchorlab internals``: one image's feature map, stride/receptive field and Grad-CAM into an .npz.

Keys, shapes and frames: docs/internals.md. Prints one JSON line (the job's summary plus ``out``);
a failure is one ``error: ...`` line. ``--out`` is checked before the model runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.cli import CliError
from engine.cli.progress import ProgressBar
from engine.cli.xray import check_out, write_npz
from engine.events import ArraysReady, Event
from engine.jobs import CancelToken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("internals", help="feature map, stride, receptive field and Grad-CAM of one image "
                                         "into an .npz (original image pixels)")
    p.add_argument("--project", type=Path, required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (.pt)")
    src.add_argument("--run", type=int, default=None, help="run id: use its checkpoint")
    p.add_argument("--image", required=True, help="image id, or an image path (project-relative or absolute)")
    p.add_argument("--layer", default=None, help="module name, e.g. backbone.stages.2 (default: the backbone's "
                                                 "last block; all names: 'layers' in the output)")
    p.add_argument("--target", type=int, default=None,
                   help="detection index by score (default 0: the top one), tag index or segmentation class")
    p.add_argument("--box", type=float, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"),
                   help="detectors: explain this box (original pixels) instead of a detection; needs --label")
    p.add_argument("--label", type=int, default=None, help="with --box: the class label to explain (1..K)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    p.set_defaults(func=_internals)


def _internals(args: argparse.Namespace) -> int:
    from engine.internals.job import internals_job
    from engine.internals.run import InternalsError

    check_out(args.out)  # before the model runs: a bad --out must not cost a forward
    if args.box is not None and args.label is None:
        raise CliError("--box needs --label (the class to explain)")
    if args.box is not None and args.target is not None:
        raise CliError("give either --target or --box, not both")
    got: list[ArraysReady] = []
    bar = ProgressBar()

    def sink(event: Event) -> None:
        if isinstance(event, ArraysReady) and event.kind == "internals":
            got.append(event)
        else:
            bar(event)

    config = {"project": str(args.project), "image": args.image, "run": args.run,
              "checkpoint": str(args.checkpoint) if args.checkpoint else None, "layer": args.layer,
              "target": args.target, "box": args.box, "label": args.label, "device": args.device}
    try:
        summary = internals_job(config, sink, CancelToken())
    except InternalsError as e:
        raise CliError(str(e)) from e
    if not got:
        raise CliError("the job produced no arrays")
    arrays = dict(got[-1].arrays)
    arrays["meta_json"] = np.asarray(json.dumps(got[-1].meta, default=str))
    write_npz(args.out, arrays)
    print(json.dumps({"out": str(args.out.resolve()), **summary}))
    return 0
