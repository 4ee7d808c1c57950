"""The two jobs of the Inside-the-CNN dock, submitted through the bridge (never run on the GUI thread).

- ``inspect_job(config, sink, cancel)``: ``engine.internals.job.internals_job`` (same config keys, same
  ``ArraysReady(kind="internals", arrays, meta)`` with the arrays of docs/internals.md) plus what the dock
  lists and the engine's arrays leave out, in ``meta``:
  ``layer_shapes`` (one output shape per entry of ``layers``, None where the module did not run),
  ``targets`` (what Grad-CAM can explain: detections by score, tags, or segmentation classes: dicts
  ``index``, ``label``, ``name``, ``score``, ``box`` (xyxy original pixels or None)), ``kind`` (the task's).
  The model is loaded once per checkpoint file (kept until another checkpoint is asked for), so a new
  image, layer or target costs one forward with Grad-CAM and one prediction, not a load.
- ``bn_stats_job({"project", "runs": [ids]})`` -> ``{"tables": {run_id: arrays.BNTable}}``: the runs'
  BatchNorm/GroupNorm statistics (metric rows of split "bn", ``engine.internals.bn_stats``) read from the
  store on the job's own connection.
"""

from __future__ import annotations

import numpy as np

from engine.events import ArraysReady, Notice, Progress
from engine.internals.inspect import inspect
from engine.internals.job import checkpoint_of, load_image, summary, target_of
from engine.internals.run import InternalsError
from engine.jobs import CancelToken, Sink
from engine.project.store import Store
from engine.tasks.checkpoint import CheckpointError, ModelCache
from gui.internals.arrays import bn_table

MAX_TARGETS = 50  # detections listed (by score); tags and classes: all

_models = ModelCache()  # one loaded checkpoint: a new image, layer or target costs no load


def clear_cache() -> None:
    _models.clear()


def _targets(kind: str, pred: dict, names: list[str]) -> list[dict]:
    def name(label: int) -> str:
        return names[label] if 0 <= label < len(names) else str(label)

    if kind == "detection":
        return [{"index": k, "label": int(lab), "name": name(int(lab)), "score": float(s),
                 "box": [float(v) for v in box]}
                for k, (box, s, lab) in enumerate(zip(pred["boxes"][:MAX_TARGETS], pred["scores"][:MAX_TARGETS],
                                                      pred["labels"][:MAX_TARGETS]))]
    if kind == "classification":
        scores = np.asarray(pred["scores"], np.float64)
        return [{"index": int(k), "label": int(k), "name": name(int(k)), "score": float(scores[k]), "box": None}
                for k in np.argsort(-scores, kind="stable")]
    counts = np.bincount(np.asarray(pred["class_map"]).ravel(), minlength=len(names)).astype(np.float64)
    share = counts / max(1.0, counts.sum())
    return [{"index": int(k), "label": int(k), "name": name(int(k)), "score": float(share[k]), "box": None}
            for k in np.argsort(-counts, kind="stable")]


def inspect_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Feature map, receptive field, Grad-CAM and the target list of one image (module docstring)."""
    if not config.get("project"):
        raise InternalsError("project: no project folder given")
    if config.get("image") in (None, ""):
        raise InternalsError("image: no image id or path given")
    target = target_of(config)
    device = str(config.get("device") or "cpu")
    sink(Progress(0, 3, "loading model"))
    with Store(config["project"]) as store:
        checkpoint = checkpoint_of(store, config)
        image, image_id, path = load_image(store, config["image"])
        root = str(store.root)
    cancel.check()
    try:
        with _models.use(checkpoint, device) as (task, model, _, labels, ck):  # used under the cache's lock
            cancel.check()
            sink(Progress(1, 3, "computing feature map and Grad-CAM"))
            result = inspect(model, image, config.get("layer") or None, target)
            cancel.check()
            pred = task.predict(model, [image], device)[0]
    except CheckpointError as e:
        raise InternalsError(str(e)) from e
    names = (["background"] if labels.background else []) + list(labels.names)
    meta = {"project": root, "image_id": image_id, "image_path": path, "checkpoint": checkpoint, "task": task.name,
            "kind": task.kind, "run_id": ck.get("run_id"), "step": ck.get("step"),
            "layer": result.features.layer.name, "label_names": names,
            "notice": result.gradcam.notice if result.gradcam else "",
            "layer_shapes": [list(i.out_shape) if i.out_shape else None for i in result.layers],
            "targets": _targets(task.kind, pred, names)}
    if meta["notice"]:
        sink(Notice(meta["notice"], "warning"))
    sink(ArraysReady(kind="internals", arrays=result.to_arrays(), meta=meta))
    sink(Progress(3, 3, "done"))
    return summary(result, meta)


def bn_stats_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """The BN statistics of ``config["runs"]`` (module docstring)."""
    tables = {}
    with Store(str(config["project"])) as store:
        for run_id in config.get("runs") or []:
            cancel.check()
            tables[int(run_id)] = bn_table(int(run_id), store.metrics(int(run_id)))
    return {"tables": tables}
