"""``anchorlab xray``: capture one image's Faster R-CNN internals into an .npz (keys: docs/xray.md).

``--out`` is checked before the capture (a file in the way is named plainly); only the missing folders of
``--out`` itself are created, and removed again if writing fails.
"""

from __future__ import annotations

import argparse
import contextlib
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


def check_out(out: Path) -> None:
    """``--out`` must name an .npz file; whatever is in the way (a file where a folder must be, a folder
    where the file must be) is named plainly, before the capture runs."""
    if out.suffix != ".npz":
        raise CliError(f"--out {out}: the output must be an .npz file")
    if out.is_dir():
        raise CliError(f"--out {out}: is a folder; name the .npz file to write (e.g. {out / 'xray.npz'})")
    for p in out.parents:
        if p.exists():
            if not p.is_dir():
                raise CliError(f"--out {out}: {p} is a file, not a folder")
            break


def write_npz(out: Path, arrays: dict) -> None:
    """Write atomically (temp file + rename). Creates only the missing folders of ``out`` itself, and
    removes them again when the write fails: nothing is left behind outside what the user named."""
    check_out(out)
    made = [p for p in reversed(out.parents) if not p.exists()]
    tmp = out.with_name(out.name + ".tmp.npz")
    try:
        for p in made:
            p.mkdir()
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def _xray(args: argparse.Namespace) -> int:
    from engine.xray.job import xray_job

    check_out(args.out)  # before the capture: a bad --out must not cost a model run
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
    write_npz(args.out, arrays)
    print(json.dumps({"out": str(args.out.resolve()), **summary}))
    return 0
