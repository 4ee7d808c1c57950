"""Interop commands: ``import`` and ``export`` of COCO, Pascal VOC, YOLO, labelme (and mask PNGs).

``anchorlab import --format coco|voc|yolo|labelme PATH --project P [--split NAME] [--images DIR] [--replace]``
``anchorlab export --format coco|voc|yolo|labelme|masks --out DIR --project P [--split S] [--include-suggested]``
(accepted annotations only; ``--include-suggested`` adds the pending model suggestions)

Both run the same job as the GUI, print the summary (imported, skipped, errors with reasons) to
stdout and return 1 when any file failed. A flag that does not apply to the format (``--remap``
without coco, ``--task`` without yolo, ``--names`` for coco/labelme) is refused before anything runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import CliError
from engine.cli.progress import ProgressBar
from engine.jobs import CancelToken, Job
from engine.project.formats.common import FormatError
from engine.project.formats.jobs import EXPORT_FORMATS, IMPORTERS, export_job, import_job
from engine.project.store import SPLITS

NAMES_FORMATS = ("yolo", "voc", "masks")  # the formats that read --names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import annotations (COCO, VOC, YOLO, labelme) into a project")
    p.add_argument("--format", required=True, choices=list(IMPORTERS))
    p.add_argument("path", type=Path, help="file or folder to import")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--split", choices=SPLITS, default=None, help="split for the imported images "
                   "(default: the format's own splits, else train)")
    p.add_argument("--images", type=Path, default=None, help="folder with the images, if not next to the labels")
    p.add_argument("--replace", action="store_true", help="re-import files imported before, replacing "
                   "their annotations")
    p.add_argument("--names", default=None, help="class names: a file with one per line, or a,b,c "
                   "(YOLO without data.yaml/classes.txt, class maps)")
    p.set_defaults(func=_import)
    p = sub.add_parser("export", help="export a project as COCO, VOC, YOLO, labelme or mask PNGs")
    p.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
    p.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--split", choices=SPLITS, default=None, help="export one split only")
    p.add_argument("--remap", action="store_true", help="COCO: number categories 1..K")
    p.add_argument("--task", choices=("detect", "segment"), default=None,
                   help="YOLO rows (default: segment if the project has polygons or masks)")
    p.add_argument("--include-suggested", action="store_true",
                   help="also export pending model suggestions (default: accepted annotations only)")
    p.set_defaults(func=_export)


def _import(args: argparse.Namespace) -> int:
    if args.names and args.format not in NAMES_FORMATS:
        raise CliError(f"--names applies to --format {', '.join(NAMES_FORMATS)} only, not {args.format} "
                       "(its files name their classes)")
    config = {"format": args.format, "path": str(args.path), "project": str(args.project), "split": args.split,
              "images": str(args.images) if args.images else None, "replace": args.replace, "names": args.names}
    result = _run(import_job, config)
    print(result["summary"])
    return 0 if result["ok"] else 1


def _export(args: argparse.Namespace) -> int:
    if args.remap and args.format != "coco":
        raise CliError(f"--remap applies to --format coco only, not {args.format}")
    if args.task and args.format != "yolo":
        raise CliError(f"--task applies to --format yolo only, not {args.format}")
    config = {"format": args.format, "out": str(args.out), "project": str(args.project), "split": args.split,
              "remap": args.remap, "task": args.task, "include_suggested": args.include_suggested}
    result = _run(export_job, config)
    print(result["summary"])
    return 0 if result["ok"] else 1


def _run(job: Job, config: dict) -> dict:
    try:
        return job(config, ProgressBar(), CancelToken())
    except FormatError as e:  # a refused input: one line, no exception name
        raise CliError(str(e)) from e
