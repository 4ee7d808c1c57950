"""Cross-validation commands: ``folds`` and ``cv``. Each ends with ONE JSON line on stdout.

``anchorlab folds --project P --folds K [--seed S] [--splits train,val]`` prints (and stores) the
stratified fold assignment ``{"k", "seed", "assignment": {image_id: fold}}``.
``anchorlab cv --project P --folds K [--seed S] [--configs A.json B.json ...]
[--max-minutes-per-fold M] [training flags]`` trains one model per fold and candidate config
(each JSON file holds TrainConfig overrides on top of the flags) and prints
``{"metric", "configs": [{"config", "folds": [{"fold", "train_images", "val_images", "value"}],
"mean", "std"}], "best"}`` plus ``retrain``: the command that trains the best config on all data.
Under ``torchrun --nproc_per_node N -m engine.cli.cv ...`` folds are spread over the processes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from engine.cli import CliError
from engine.cli.train import TrainProgress, _user_errors, add_train_arguments, config_from_args
from engine.jobs import CancelToken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("folds", help="stratified k-fold assignment of a project's images, as JSON")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--splits", default="train,val", help="images of these splits take part (default train,val)")
    p.set_defaults(func=_folds)
    p = sub.add_parser("cv", help="k-fold cross-validation of one or more training configs")
    add_train_arguments(p)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--splits", default="train,val", help="images of these splits take part (default train,val)")
    p.add_argument("--configs", nargs="*", type=Path, default=[], metavar="CONFIG.json",
                   help="candidate configs: JSON objects of training options over the flags")
    p.add_argument("--max-minutes-per-fold", type=float, default=0.0)
    p.set_defaults(func=_cv)


def _folds(args: argparse.Namespace) -> int:
    from engine.train.cv import assign_folds

    try:
        assignment = assign_folds(str(args.project), args.folds, args.seed, args.splits.split(","))
    except _user_errors() as e:
        raise CliError(str(e)) from e
    print(json.dumps({"k": args.folds, "seed": args.seed, "assignment": {str(i): f for i, f in
                                                                        sorted(assignment.items())}}))
    return 0


def _candidates(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CliError(f"--configs {p}: {e}") from e
        if not isinstance(d, dict):
            raise CliError(f"--configs {p}: expected a JSON object of training options")
        out.append(d)
    return out or [{}]


def _cv(args: argparse.Namespace) -> int:
    from engine.train import distributed
    from engine.train.cv import cv_job

    if args.folds < 2:
        raise CliError(f"--folds must be >= 2 (got {args.folds})")
    base = config_from_args(args).to_dict()
    base.pop("project")
    config = {"project": str(args.project), "folds": args.folds, "seed": base["seed"],
              "splits": args.splits.split(","), "base": base, "configs": _candidates(args.configs),
              "max_minutes_per_fold": args.max_minutes_per_fold}
    info = distributed.env_info()
    sink = TrainProgress()
    try:
        result = cv_job(config, sink, CancelToken())
    except _user_errors() as e:
        raise CliError(str(e)) from e
    finally:
        sink.close()
    best = result["configs"][result["best"]]["config"]
    flags = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in best.items()
                     if not isinstance(v, (bool, list, dict)))
    result["retrain"] = f"anchorlab train --project {shlex.quote(str(args.project))} {flags}".strip()
    if info.is_main:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":  # torchrun -m engine.cli.cv ...
    from engine.cli import main

    sys.exit(main(["cv", *sys.argv[1:]]))
