"""Model commands: ``train``, ``eval``, ``predict``. Each ends by printing ONE JSON line on stdout.

``train`` has a flag for every ``TrainConfig`` field (``--batch-size``, ``--no-augment-flip``,
``--max-minutes`` ...) plus ``--extra key=value``; progress goes to stderr; Ctrl-C stops the run
cleanly (last.pt written, JSON printed, exit 130). ``predict --write`` adds detections as
annotations with provenance ``model:<run id>`` and a score, replacing that run's earlier
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
from engine.cli.progress import ProgressBar
from engine.events import Event, RunStarted, StepLosses
from engine.jobs import CancelToken
from engine.project.store import StoreError
from engine.train.config import TrainConfig


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that become one ``error: ...`` line (imported lazily: torch loads only for these commands)."""
    from engine.train.checkpoint import CheckpointError
    from engine.train.trainer import TrainingError

    return (TrainingError, CheckpointError, StoreError, OSError, ValueError)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (bools get --x/--no-x), plus --extra KEY=VALUE."""
    p.add_argument("--project", type=Path, required=True)
    for f in fields(TrainConfig):
        if f.name in ("project", "extra"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"(default {default})")
        else:
            p.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")
    p.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                   help="extra options (JSON values), e.g. inject_nan_at_step=5 for fault-injection tests")


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
    return TrainConfig(**values)


class TrainProgress:
    """Sink: a progress bar over optimisation steps (stderr)."""

    def __init__(self) -> None:
        self.bar = ProgressBar()
        self.total = 1
        self.drawn = False  # something was written to the terminal (end the line before an error)

    def __call__(self, event: Event) -> None:
        self.drawn = True
        if isinstance(event, RunStarted):
            self.total = max(1, event.total_steps)
        elif isinstance(event, StepLosses):
            self.bar.update(min(event.step, self.total), self.total,
                            f"epoch {event.epoch + 1} loss {event.losses.get('loss', float('nan')):.3f} "
                            f"{event.images_per_s:.1f} img/s")
        else:
            self.bar(event)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a detector; prints one JSON line with the final metrics")
    add_train_arguments(p)
    p.set_defaults(func=_train)
    p = sub.add_parser("eval", help="COCO metrics of a checkpoint on a split, as one JSON line")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-images", type=int, default=0)
    p.set_defaults(func=_eval)
    p = sub.add_parser("predict", help="run a checkpoint on images; --write stores the detections")
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--split", default=None, help="images of this split (default: all images)")
    where.add_argument("--image", type=int, default=None, help="one image id")
    p.add_argument("--score", type=float, default=0.5, help="minimum score (default 0.5)")
    p.add_argument("--device", default="auto")
    p.add_argument("--write", action="store_true", help="store detections as annotations (model:<run id>)")
    p.set_defaults(func=_predict)


def run_train(cfg: TrainConfig, sink: Any) -> dict:
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
        return train_job(cfg.to_dict(), sink, cancel)
    finally:
        signal.signal(signal.SIGINT, old)


def _train(args: argparse.Namespace) -> int:
    sink = TrainProgress()
    try:
        result = run_train(config_from_args(args), sink)
    except _user_errors() as e:
        if sink.drawn:
            print(file=sys.stderr)
        raise CliError(str(e)) from e
    print(json.dumps(result))
    return 130 if result["status"] == "stopped" else 0


def _eval(args: argparse.Namespace) -> int:
    from engine.eval.detection import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(str(args.project), str(args.checkpoint), args.split, args.device,
                                     args.batch_size, args.max_images)
    except _user_errors() as e:
        raise CliError(str(e)) from e
    print(json.dumps(result))
    return 0


def _predict(args: argparse.Namespace) -> int:
    try:
        result = predict_images(args.project, args.checkpoint, args.split, args.image, args.score, args.device,
                                args.write)
    except _user_errors() as e:
        raise CliError(str(e)) from e
    print(json.dumps(result))
    return 0


def predict_images(project: Path, checkpoint: Path, split: str | None, image_id: int | None, score: float,
                   device: str, write: bool) -> dict:
    """Detections (image pixels, xyxy) for a split / one image / all images; optionally stored."""
    import torch

    from engine.eval.detection import predict
    from engine.project.imageio import read_rgb
    from engine.project.shapes import Annotation, Box
    from engine.project.store import Store
    from engine.train.checkpoint import load_detector
    from engine.train.job import select_device

    dev = select_device(device)
    model, _, label_map, meta = load_detector(checkpoint, dev)
    provenance = f"model:{int(meta.get('run_id', 0))}"
    inverse = {lab: cat for cat, lab in label_map.items()}
    results, new = [], []
    with Store(project) as store:
        cats = {c.id: c.name for c in store.categories()}
        images = [store.image(image_id)] if image_id is not None else store.images(split)
        for im in images:
            rgb = read_rgb(store.image_path(im))
            x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255.0
            out = predict(model, [x], dev)[0]
            dets = []
            for box, s, lab in zip(out["boxes"], out["scores"], out["labels"]):
                cat = inverse.get(int(lab))
                if s < score or cat not in cats:
                    continue
                dets.append({"category_id": cat, "category": cats[cat], "box": [round(float(v), 2) for v in box],
                             "score": round(float(s), 4)})
                new.append(Annotation(im.id, cat, Box(box), provenance, score=float(s)))
            results.append({"image_id": im.id, "detections": dets})
        if write:
            ids = {im.id for im in images}
            with store.transaction():
                old = [a.id for a in store.annotations() if a.image_id in ids and a.provenance == provenance]
                store.delete_annotations(old)
                store.add_annotations(new)
    return {"images": len(results), "detections": len(new), "written": len(new) if write else 0,
            "provenance": provenance, "checkpoint": str(checkpoint), "results": results}
