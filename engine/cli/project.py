"""Project commands: ``new``, ``demo``, ``info`` (``info --check`` runs SQLite's full integrity check),
``add-images --project P DIR [--split S] [--recursive]`` (the GUI's File > Add images, headless)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import CliError
from engine.cli.args import int_at_least
from engine.cli.progress import ProgressBar
from engine.data.demo import default_demo_dir, generate_demo
from engine.jobs import CancelToken
from engine.project.dbfile import integrity_problems
from engine.project.scan import add_folder_job
from engine.project.store import SPLITS, Store, is_project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new", help="create an empty project in DIR")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=_new)
    p = sub.add_parser("demo", help="generate the synthetic demo project")
    p.add_argument("--out", type=Path, default=None, help=f"folder (default {default_demo_dir()})")
    p.add_argument("--images", type=int_at_least(1), default=300, help="labeled images (default 300)")
    p.add_argument("--unlabeled", type=int_at_least(0), default=12, help="extra unlabeled images (default 12)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
    p = sub.add_parser("info", help="print a project's images, categories and runs as JSON")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--check", action="store_true", help="also run a full integrity check of the database "
                   "(reads every page; exit 1 if it is damaged)")
    p.set_defaults(func=_info)
    p = sub.add_parser("add-images", help="add the images of a folder to a project (headers only, with a progress "
                                          "bar); images already there are skipped, unreadable ones reported")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("dir", type=Path, help="folder of images")
    p.add_argument("--split", choices=SPLITS, default="train", help="split of the new images (default train)")
    p.add_argument("--recursive", action="store_true", help="also add images in sub-folders")
    p.set_defaults(func=_add_images)


def _new(args: argparse.Namespace) -> int:
    if is_project(args.dir):
        raise CliError(f"{args.dir} is already an AnchorLab project")
    if args.dir.exists() and not args.dir.is_dir():
        raise CliError(f"{args.dir} is a file, not a folder")
    Store.create(args.dir).close()  # on failure (disk full) it leaves no database file behind
    print(f"created empty project {args.dir.resolve()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = args.out or default_demo_dir()
    bar = ProgressBar()
    stats = generate_demo(out, images=args.images, seed=args.seed, unlabeled=args.unlabeled,
                          progress=lambda d, t: bar.update(d, t, "generating"))
    bar.end_line()
    print(json.dumps({"project": str(Path(out).resolve()), **stats}))
    return 0


def _info(args: argparse.Namespace) -> int:
    with Store(args.project) as s:
        images = s.images()
        splits: dict[str, int] = {}
        for im in images:
            splits[im.split] = splits.get(im.split, 0) + 1
        info = {"images": len(images), "splits": splits, "categories": [c.name for c in s.categories()],
                "annotations": len(s.annotations()), "runs": len(s.runs())}
        problems = integrity_problems(s.conn) if args.check else []
    if args.check:
        info["integrity"] = problems[:20] or "ok"
    print(json.dumps(info))
    if problems:
        raise CliError(f"the project database is damaged: {problems[0][:160]}"
                       + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else "")
                       + "; restore it from a backup")
    return 0


def _add_images(args: argparse.Namespace) -> int:
    if not is_project(args.project):
        raise CliError(f"{args.project} is not an AnchorLab project (create one with 'anchorlab new {args.project}')")
    if not args.dir.is_dir():
        raise CliError(f"{args.dir}: not a folder")
    bar = ProgressBar()
    config = {"project": str(args.project), "folder": str(args.dir), "split": args.split,
              "recursive": bool(args.recursive)}
    try:
        result = add_folder_job(config, bar, CancelToken())
    finally:
        bar.end_line()
    report = result.pop("report")
    print(json.dumps({"added": report.added, "skipped": report.skipped, "unreadable": report.unreadable,
                      "problems": report.problems[:20]}))
    return 0
