"""Project commands: ``new``, ``demo``, ``info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli.progress import ProgressBar
from engine.data.demo import default_demo_dir, generate_demo
from engine.project.store import Store, is_project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new", help="create an empty project in DIR")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=_new)
    p = sub.add_parser("demo", help="generate the synthetic demo project")
    p.add_argument("--out", type=Path, default=None, help=f"folder (default {default_demo_dir()})")
    p.add_argument("--images", type=int, default=300, help="labeled images (default 300)")
    p.add_argument("--unlabeled", type=int, default=12, help="extra unlabeled images (default 12)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
    p = sub.add_parser("info", help="print a project's images, categories and runs as JSON")
    p.add_argument("--project", type=Path, required=True)
    p.set_defaults(func=_info)


def _new(args: argparse.Namespace) -> int:
    if is_project(args.dir):
        raise FileExistsError(f"{args.dir} is already an AnchorLab project")
    Store.create(args.dir).close()
    print(f"created empty project {args.dir.resolve()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = args.out or default_demo_dir()
    bar = ProgressBar()
    stats = generate_demo(out, images=args.images, seed=args.seed, unlabeled=args.unlabeled,
                          progress=lambda d, t: bar.update(d, t, "generating"))
    print(json.dumps({"project": str(Path(out).resolve()), **stats}))
    return 0


def _info(args: argparse.Namespace) -> int:
    with Store(args.project) as s:
        images = s.images()
        splits: dict[str, int] = {}
        for im in images:
            splits[im.split] = splits.get(im.split, 0) + 1
        print(json.dumps({"images": len(images), "splits": splits,
                          "categories": [c.name for c in s.categories()],
                          "annotations": len(s.annotations()), "runs": len(s.runs())}))
    return 0
