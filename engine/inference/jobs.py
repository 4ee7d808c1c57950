"""``eval_job`` and ``predict_job``: the CLI's ``eval``/``predict`` and the GUI run these.

Both load a checkpoint through the task registry (``engine.tasks.checkpoint.load_model``), so they
work for every registered model family. Configs are plain dicts:

- eval: ``{"project", "checkpoint", "split": "val", "image_ids": [], "device": "auto",
  "batch_size": 4, "max_images": 0}`` -> ``{<the task's metrics (its ``evaluate_details`` when it has
  one, e.g. the tagger's ``per_tag``)>, "task", "split", "images", "checkpoint", "run_id"}``. A split
  without ground truth is an error, never a metric of 0.
  Segmentation tasks also take ``"crf": "none" | "exact" | "fast"`` and ``"crf_params": {CrfParams
  fields}`` (checked before the model loads) and then add ``miou_crf``, ``boundary_f_crf``,
  ``pixel_acc_crf`` and ``crf_ms_per_image``.
- predict: ``{"project", "checkpoint", "split": None, "image_ids": [], "score": 0.5,
  "device": "auto", "write": False}`` -> ``{"images", "predictions", "written", "provenance",
  "results": [{"image_id", "detections" | "tags" | "classes" + "regions"}]}``. ``write`` stores
  detections as box annotations, segmentation regions as mask annotations (one per connected
  component of each predicted class, score = the class's mean probability over it, see
  ``engine.inference.regions``), with provenance ``model:<run id>``, replacing that run's earlier
  ones on those images; manual annotations are never touched.
"""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data import DataLoader

from engine.crf import CrfParams, crf_available
from engine.crf.exact import INSTALL_HINT
from engine.data.dataset import snapshot_ids, snapshot_split
from engine.device import select_device
from engine.events import Progress
from engine.inference.regions import class_regions
from engine.jobs import CancelToken, Sink
from engine.project.imageio import read_rgb
from engine.project.shapes import Annotation, Box, Mask
from engine.project.store import Store
from engine.tasks.base import TaskDataError
from engine.tasks.checkpoint import CheckpointError, load_model


class InferenceError(ValueError):
    """Bad input to eval/predict; one line for the user."""


def _splits(store: Store) -> list[str]:
    return sorted({im.split for im in store.images()})


def _check_split(store: Store, split: str) -> None:
    if split not in _splits(store):
        have = ", ".join(_splits(store)) or "none"
        raise InferenceError(f"split {split!r} has no images; splits with images: {have}")


def _images(store: Store, split: str | None, image_ids: list[int]) -> list:
    if image_ids:
        known = {im.id: im for im in store.images()}
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise InferenceError(f"image {missing[0]} is not in the project")
        return [known[i] for i in image_ids]
    if split is not None:
        _check_split(store, split)
    return store.images(split)


def eval_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """The task's metrics of a checkpoint on a split (or explicit image ids)."""
    project, checkpoint = str(config["project"]), str(config["checkpoint"])
    split = config.get("split", "val")
    options = _eval_options(config)
    device = select_device(config.get("device", "auto"))
    task, model, _, labels, meta = load_model(checkpoint, device)
    if options and "crf" not in task.capabilities:
        raise InferenceError(f"--crf needs a segmentation model; {task.name} is a {task.kind} model")
    with Store(project) as store:
        current = task.label_space(store)
        missing = sorted(set(labels.ids) - set(current.ids))
        if missing:
            raise CheckpointError(f"checkpoint {checkpoint} predicts ids {missing} that project {project} "
                                  "does not have")
        ids = list(config.get("image_ids") or [])
        if not ids:
            _check_split(store, split)
        max_images = int(config.get("max_images", 0))
        records = snapshot_ids(store, ids, max_images) if ids else snapshot_split(store, split, max_images)
    if not records:
        raise InferenceError(f"split {split!r} of {project} has no images")
    try:
        task.check_data(records, labels)
    except TaskDataError as e:
        raise InferenceError(f"split {split!r} has no ground truth to evaluate against: {e}") from e
    ds = task.dataset(records, labels, None, train=False)
    loader = DataLoader(ds, batch_size=int(config.get("batch_size", 4)), shuffle=False, collate_fn=task.collate)
    sink(Progress(0, len(ds), f"evaluating {len(ds)} images"))
    details = getattr(task, "evaluate_details", None)  # optional: the metrics plus per-class details
    metrics = details(model, loader, device, cancel, **options) if details else task.evaluate(
        model, loader, device, cancel)
    sink(Progress(len(ds), len(ds), "evaluated"))
    return {**metrics, "task": task.name, "split": split if not config.get("image_ids") else None,
            "images": len(ds), "checkpoint": checkpoint, "run_id": int(meta.get("run_id", 0))}


def _eval_options(config: dict) -> dict:
    """The CRF options of an eval config, checked: {} for none, else {"crf", "crf_params"}."""
    crf = config.get("crf") or "none"
    if crf not in ("none", "exact", "fast"):
        raise InferenceError(f"unknown CRF backend {crf!r}; expected none, exact or fast")
    raw = config.get("crf_params")
    if raw is not None and not isinstance(raw, dict):
        raise InferenceError(f"CRF parameters must be a JSON object, got {raw!r}")
    try:
        params = CrfParams.from_dict(raw or {})
    except (TypeError, ValueError) as e:
        raise InferenceError(f"bad CRF parameters: {e}") from e
    if crf == "none":
        return {}
    if crf == "exact" and not crf_available():
        raise InferenceError(f"--crf exact needs the `pydensecrf` module: {INSTALL_HINT}; --crf fast needs nothing")
    return {"crf": crf, "crf_params": params.to_dict()}


def predict_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Predictions of a checkpoint on images of a project (see the module docstring)."""
    project, checkpoint = str(config["project"]), str(config["checkpoint"])
    score = float(config.get("score", 0.5))
    if not math.isfinite(score) or not 0 <= score <= 1:
        raise InferenceError(f"score must be a number in [0, 1] (got {config.get('score')})")
    device = select_device(config.get("device", "auto"))
    task, model, _, labels, meta = load_model(checkpoint, device)
    provenance = f"model:{int(meta.get('run_id', 0))}"
    write = bool(config.get("write", False))
    if write and task.kind not in ("detection", "segmentation"):
        raise InferenceError(f"--write stores detections or masks; {task.name} is a {task.kind} model")
    results, new = [], []
    with Store(project) as store:
        images = _images(store, config.get("split"), list(config.get("image_ids") or []))
        names = dict(zip(labels.ids, labels.names))
        inverse = {lab: cid for cid, lab in labels.label_map.items()}
        for i, im in enumerate(images):
            cancel.check()
            sink(Progress(i, len(images), im.path))
            pred = task.predict(model, [read_rgb(store.image_path(im))], device)[0]
            entry: dict = {"image_id": im.id}
            if task.kind == "detection":
                entry["detections"] = []
                for box, s, lab in zip(pred["boxes"], pred["scores"], pred["labels"]):
                    cid = inverse.get(int(lab))
                    if s < score or cid is None:
                        continue
                    entry["detections"].append({"category_id": cid, "category": names.get(cid, str(cid)),
                                                "box": [round(float(v), 2) for v in box], "score": round(float(s), 4)})
                    new.append(Annotation(im.id, cid, Box(np.asarray(box, np.float64)), provenance, score=float(s)))
            elif task.kind == "classification":
                entry["tags"] = [{"tag_id": cid, "tag": names.get(cid, str(cid)), "score": round(float(s), 4)}
                                 for cid, s in zip(labels.ids, pred["scores"]) if s >= score]
            else:
                counts = np.bincount(pred["class_map"].ravel(), minlength=labels.num_outputs)
                entry["classes"] = {names.get(inverse.get(lab), "background"): int(c)
                                    for lab, c in enumerate(counts) if c}
                entry["regions"] = []
                for r in class_regions(pred["class_map"], pred["probs"], min_score=score):
                    cid = inverse.get(r.label)
                    if cid is None:
                        continue
                    geom = Mask.from_array(r.mask)
                    entry["regions"].append({"category_id": cid, "category": names.get(cid, str(cid)),
                                             "area": r.area, "box": [round(float(v), 2) for v in geom.bbox()],
                                             "score": round(r.score, 4)})
                    new.append(Annotation(im.id, cid, geom, provenance, score=r.score))
            results.append(entry)
        sink(Progress(len(images), len(images), "done"))
        if write:
            ids = {im.id for im in images}
            with store.transaction():
                old = [a.id for a in store.annotations() if a.image_id in ids and a.provenance == provenance]
                store.delete_annotations(old)
                store.add_annotations(new)
    return {"task": task.name, "images": len(results), "predictions": len(new) if task.kind != "classification" else
            sum(len(r.get("tags", ())) for r in results), "detections": len(new) if task.kind == "detection" else 0,
            "written": len(new) if write else 0,
            "provenance": provenance, "checkpoint": checkpoint, "results": results}
