"""Model commands: ``models``, ``train``, ``eval``, ``predict``. Each ends by printing ONE JSON line on stdout.

``models`` lists the registered tasks (``engine.tasks.registry``); ``--model`` accepts exactly
those names. ``train`` has a flag for every ``TrainConfig`` field (``--batch-size``,
``--no-augment-flip``, ``--max-minutes`` ...) plus ``--extra key=value``; progress goes to stderr
(tqdm, whose line is always finished before anything else is printed); Ctrl-C stops the run
cleanly (last.pt written, JSON printed, exit 130). ``eval``/``predict`` run the jobs of
``engine.inference.jobs`` for any task (segmentation: ``eval --crf exact|fast --crf-params JSON``
adds the metrics after a dense CRF); ``predict --write`` adds detections (or a segmenter's masks)
as annotations with provenance ``model:<run id>`` and a score, replacing that run's earlier
predictions on those images; manual annotations are never touched.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from engine.cli import CliError
from engine.config import ConfigError, TrainConfig
from engine.events import Event, JobFailed, Notice, Progress, RunStarted, StepLosses
from engine.jobs import CancelToken
from engine.project.store import StoreError
from engine.tasks.registry import describe_all, task_names


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that become one ``error: ...`` line (imported lazily: torch loads only for these commands)."""
    from engine.device import DeviceError
    from engine.tasks.checkpoint import CheckpointError
    from engine.train.trainer import TrainingError

    return (TrainingError, CheckpointError, DeviceError, StoreError, OSError, ValueError)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (bools get --x/--no-x), plus --extra KEY=VALUE."""
    p.add_argument("--project", type=Path, required=True)
    for f in fields(TrainConfig):
        if f.name in ("project", "extra"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if f.name == "model":
            p.add_argument(flag, default=None, metavar="MODEL",
                           help=f"one of {', '.join(task_names())} (default {default})")
        elif f.name in ("train_ids", "val_ids"):
            p.add_argument(flag, type=_id_list, default=None, help="comma-separated image ids (override the split)")
        elif f.name == "epochs":
            p.add_argument(flag, type=int, default=None, help="epochs (default: until --max-minutes, else 10)")
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"(default {default})")
        else:
            p.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")
    p.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                   help="extra options (JSON values), e.g. inject_nan_at_step=5 for fault-injection tests")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _id_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated image ids, got {text!r}") from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {"project": str(args.project)}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if f.name not in ("project", "extra") and v is not None:
            values[f.name] = v
    extra = {}
    for item in args.extra:
        key, sep, raw = item.partition("=")
        if not sep:
            raise CliError(f"--extra {item!r}: expected KEY=VALUE")
        try:
            extra[key] = json.loads(raw)
        except json.JSONDecodeError:
            extra[key] = raw
    values["extra"] = extra
    if values.get("model", "faster_rcnn") not in task_names():
        raise CliError(f"unknown model {values['model']!r}; valid models: {', '.join(task_names())}")
    try:
        return TrainConfig(**values).validate()
    except ConfigError as e:
        raise CliError(str(e)) from e


class TrainProgress:
    """Sink: a tqdm bar over optimisation steps on stderr (open-ended under a pure time budget).

    ``close()`` ends the bar's line; the CLI calls it on every exit path (finished, stopped, time
    limit, error) before printing anything else, so the JSON result is alone on its stdout line.
    """

    def __init__(self) -> None:
        self.bar = None
        self.drawn = False

    def _bar(self, total: int | None) -> object:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total or None, unit="step", file=sys.stderr, dynamic_ncols=True,
                            mininterval=0.2, leave=True)
        return self.bar

    def __call__(self, event: Event) -> None:
        self.drawn = True
        if isinstance(event, RunStarted):
            bar = self._bar(event.total_steps)
            bar.n = 0
        elif isinstance(event, StepLosses):
            bar = self._bar(None)
            bar.n = event.step
            bar.set_postfix_str(f"epoch {event.epoch + 1} loss {event.losses.get('loss', float('nan')):.3f} "
                                f"{event.images_per_s:.1f} img/s", refresh=False)
            bar.refresh()
        elif isinstance(event, Progress):
            bar = self._bar(event.total)
            bar.total, bar.n = event.total, event.done
            bar.set_description_str(event.message[-40:], refresh=False)
            bar.refresh()
        elif isinstance(event, (Notice, JobFailed)):
            from tqdm import tqdm

            level = event.level if isinstance(event, Notice) else "error"
            tqdm.write(f"{level}: {event.message}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the registered model families as one JSON line")
    p.set_defaults(func=_models)
    p = sub.add_parser("train", help="train a model; prints one JSON line with the final metrics")
    add_train_arguments(p)
    p.set_defaults(func=_train)
    p = sub.add_parser("eval", help="metrics of a checkpoint on a split, as one JSON line")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--crf", choices=("none", "exact", "fast"), default="none",
                   help="segmentation: also score the predictions after a dense CRF (default none)")
    p.add_argument("--crf-params", type=_json_object, default=None, metavar="JSON",
                   help='CRF parameters, e.g. \'{"w_bilateral": 5, "theta_alpha": 80}\' (others: defaults)')
    p.set_defaults(func=_eval)
    p = sub.add_parser("predict", help="run a checkpoint on images; --write stores the detections or masks")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--split", default=None, help="images of this split (default: all images)")
    where.add_argument("--image", type=int, default=None, help="one image id")
    p.add_argument("--score", type=float, default=0.5, help="minimum score in [0, 1] (default 0.5)")
    p.add_argument("--device", default="auto")
    p.add_argument("--write", action="store_true", help="store detections/masks as annotations (model:<run id>)")
    p.set_defaults(func=_predict)


def run_train(cfg: TrainConfig, sink: Any, hooks: list | None = None) -> dict:
    """``train_job`` with Ctrl-C mapped to a clean Stop (a second Ctrl-C aborts)."""
    from engine.train.job import train_job

    cancel = CancelToken()

    def on_sigint(signum: int, frame: object) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)
        cancel.cancel()

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        return train_job(cfg.to_dict(), sink, cancel, hooks=hooks)
    finally:
        signal.signal(signal.SIGINT, old)


def _models(args: argparse.Namespace) -> int:
    print(json.dumps({"models": describe_all()}))
    return 0


def _train(args: argparse.Namespace) -> int:
    sink = TrainProgress()
    try:
        result = run_train(config_from_args(args), sink)
    except _user_errors() as e:
        raise CliError(str(e)) from e
    finally:
        sink.close()
    print(json.dumps(result))
    return 130 if result["status"] == "stopped" else 0


def _run_job(job_name: str, config: dict) -> dict:
    from engine.inference import jobs

    sink = TrainProgress()
    try:
        return getattr(jobs, job_name)(config, sink, CancelToken())
    except _user_errors() as e:
        raise CliError(str(e)) from e
    finally:
        sink.close()


def _eval(args: argparse.Namespace) -> int:
    result = _run_job("eval_job", {"project": str(args.project), "checkpoint": str(args.checkpoint),
                                   "split": args.split, "device": args.device, "batch_size": args.batch_size,
                                   "max_images": args.max_images, "crf": args.crf, "crf_params": args.crf_params})
    print(json.dumps(result))
    return 0


def _predict(args: argparse.Namespace) -> int:
    result = _run_job("predict_job", {"project": str(args.project), "checkpoint": str(args.checkpoint),
                                      "split": args.split, "image_ids": [args.image] if args.image is not None else [],
                                      "score": args.score, "device": args.device, "write": args.write})
    print(json.dumps(result))
    return 0
