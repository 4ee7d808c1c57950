"""The internals job: ``internals_job(config, sink, cancel) -> summary`` (GUI engine lane and ``anchorlab internals``).

``config`` keys: ``project`` (folder), ``image`` (image id, or a path: relative to the project, to the
working directory, or absolute), ``checkpoint`` (path) or ``run`` (run id -> the run's checkpoint),
optional ``layer`` (module name; default: ``Probe.default_layer``), ``target`` (int: detection by score /
tag / class; default: the top detection, the highest tag, the most frequent predicted class), ``box``
([x0, y0, x1, y1] original pixels) with ``label`` (detectors: explain that box instead of a detection),
``device`` ('cpu' default). Emits one ``ArraysReady(kind="internals", arrays, meta)`` — arrays: the npz
layout of docs/internals.md (``Internals.to_arrays``), meta: project, image_id, image_path, checkpoint,
task, run_id, step, layer, label_names, notice — plus a ``Notice`` when Grad-CAM had nothing to
explain, and returns the one-line summary (``summary``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.events import ArraysReady, Notice, Progress
from engine.internals.inspect import Internals, inspect
from engine.internals.run import InternalsError
from engine.internals.targets import Target
from engine.jobs import CancelToken, Sink
from engine.project.imageio import read_rgb
from engine.project.store import Store, StoreError
from engine.tasks.checkpoint import CheckpointError, load_model


def load_image(store: Store, image: int | str) -> tuple[np.ndarray, int | None, str]:
    """(H, W, 3) uint8 RGB, its image id (None for a file outside the project) and its path."""
    if isinstance(image, int) or (isinstance(image, str) and image.strip().isdigit()):
        try:
            rec = store.image(int(image))
        except StoreError as e:
            raise InternalsError(f"image: {e}") from e
        path = store.image_path(rec)
        return read_rgb(path), rec.id, str(path)
    p = Path(str(image))
    candidates = [p] if p.is_absolute() else [store.root / p, Path.cwd() / p]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise InternalsError(f"image: {image!r} is neither an image id of the project nor a file")
    try:
        rec = store.image_by_path(path.resolve().relative_to(store.root.resolve()).as_posix())
    except ValueError:  # outside the project folder
        rec = None
    return read_rgb(path), (rec.id if rec is not None else None), str(path)


def checkpoint_of(store: Store, config: dict) -> str:
    """The checkpoint named by ``checkpoint`` or by ``run`` (its best, else last, checkpoint)."""
    if config.get("checkpoint"):
        return str(config["checkpoint"])
    run = config.get("run")
    if run in (None, ""):
        raise InternalsError("checkpoint: give a checkpoint file or a run id")
    try:
        return str(store.run_checkpoint(int(run)))
    except (StoreError, ValueError) as e:
        raise InternalsError(f"run: {e}") from e


def target_of(config: dict) -> Target:
    box = config.get("box")
    if box is not None:
        if len(box) != 4:
            raise InternalsError(f"box: expected 4 numbers x0 y0 x1 y1, got {len(box)}")
        label = config.get("label")
        return Target(box=tuple(float(v) for v in box), label=None if label is None else int(label))
    t = config.get("target")
    return Target(index=None if t is None else int(t))


def summary(result: Internals, meta: dict) -> dict:
    """Plain-data summary of a result (the CLI's JSON line)."""
    f, g = result.features, result.gradcam
    out = {"task": meta.get("task"), "family": result.family, "layer": f.layer.name,
           "layers": len(result.layers), "feature_shape": list(f.feature.shape),
           "stride": [float(v) for v in f.stride], "receptive_field": [float(v) for v in f.receptive_field],
           "image_size": list(f.frame.image_hw), "input_size": list(f.frame.input_hw),
           "image_id": meta.get("image_id"), "image_path": meta.get("image_path"),
           "checkpoint": meta.get("checkpoint")}
    if g is not None:
        box = None if np.isnan(g.target_box).any() else [round(float(v), 2) for v in g.target_box]
        names = meta.get("label_names") or []
        out.update(target_index=g.target_index, target_label=g.target_label,
                   target_name=names[g.target_label] if 0 <= g.target_label < len(names) else None,
                   target_score=None if np.isnan(g.target_score) else round(float(g.target_score), 6),
                   target_box=box, notice=g.notice or None)
    return out


def internals_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Feature map, receptive field and Grad-CAM of one image (see the module docstring)."""
    if not config.get("project"):
        raise InternalsError("project: no project folder given")
    if config.get("image") in (None, ""):
        raise InternalsError("image: no image id or path given")
    target = target_of(config)
    device = torch.device(config.get("device") or "cpu")
    sink(Progress(0, 3, "loading model"))
    with Store(config["project"]) as store:
        checkpoint = checkpoint_of(store, config)
        image, image_id, path = load_image(store, config["image"])
        root = str(store.root)
    try:
        task, model, _, labels, ck = load_model(checkpoint, device)
    except CheckpointError as e:
        raise InternalsError(str(e)) from e
    cancel.check()
    sink(Progress(1, 3, "computing feature map and Grad-CAM"))
    result = inspect(model, image, config.get("layer") or None, target)
    cancel.check()
    names = (["background"] if labels.background else []) + list(labels.names)
    meta = {"project": root, "image_id": image_id, "image_path": path, "checkpoint": checkpoint, "task": task.name,
            "run_id": ck.get("run_id"), "step": ck.get("step"), "layer": result.features.layer.name,
            "label_names": names, "notice": result.gradcam.notice if result.gradcam else ""}
    if meta["notice"]:
        sink(Notice(meta["notice"], "warning"))
    sink(ArraysReady(kind="internals", arrays=result.to_arrays(), meta=meta))
    sink(Progress(3, 3, "done"))
    return summary(result, meta)
