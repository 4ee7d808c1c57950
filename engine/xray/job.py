"""The X-ray job: ``xray_job(config, sink, cancel) -> summary`` (GUI lane 'tasks' and ``anchorlab xray``).

``config`` keys: ``project`` (folder), ``image`` (image id, or a path: relative to the project or
absolute; a path not in the project has no ground truth), optional ``checkpoint`` (path) or ``run``
(run id -> the run's best checkpoint), ``roi_index`` (int or None), ``seed`` (int, default 0),
``device`` ('cpu' default). Without a checkpoint an untrained tiny detector is used (with a Notice).
Emits one ``ArraysReady(kind="xray", arrays, meta)`` and returns the summary dict (counts + meta).

The capture depends on the checkpoint's task (``meta["task"]``): ``CAPTURES`` maps a task name to its
capture and summary — Faster R-CNN's pipeline (``engine.xray.capture``) or the YOLOv1 grid
(``engine.xray.yolo``). ``roi_index`` and ``seed`` only matter to Faster R-CNN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.data.dataset import DetectionDataset, SampleRecord, make_label_map
from engine.events import ArraysReady, Notice, Progress
from engine.jobs import CancelToken, Sink
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.project.imageio import read_rgb
from engine.project.store import Store, StoreError
from engine.tasks.checkpoint import load_model
from engine.xray.capture import capture
from engine.xray.yolo import capture_yolo, summarize_yolo


class XrayError(ValueError):
    """Bad X-ray input (unknown image, run without checkpoint...); the message names the field."""


# (model, image (H, W, 3) uint8, gt_boxes (N, 4) xyxy original px, gt_labels (N,) 1..K, roi_index, seed) -> arrays
CaptureFn = Callable[[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray, "int | None", int], dict[str, np.ndarray]]


def _capture_faster_rcnn(model: torch.nn.Module, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                         roi_index: int | None, seed: int) -> dict[str, np.ndarray]:
    return capture(model, image, boxes, labels, roi_index=roi_index, seed=seed)


def _capture_yolo_v1(model: torch.nn.Module, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                     roi_index: int | None, seed: int) -> dict[str, np.ndarray]:
    return capture_yolo(model, image, boxes, labels)  # deterministic: no sampler, no RoI


def summarize(a: dict[str, np.ndarray]) -> dict:
    """Counts of a Faster R-CNN capture, for logs and job results."""
    lab = a["anchor_label"]
    return {"anchors": int(len(a["anchors"])), "anchors_fg": int((lab == 1).sum()),
            "anchors_bg": int((lab == 0).sum()), "anchors_ignored": int((lab == -1).sum()),
            "anchors_sampled": int(a["anchor_sampled"].sum()), "proposals_pre_nms": int(len(a["proposals_pre_nms"])),
            "proposals": int(len(a["proposals"])), "rois": int(len(a["rois"])),
            "rois_fg": int((a["roi_label"] > 0).sum()), "detections_pre_nms": int(len(a["detections_pre_nms"])),
            "detections": int(len(a["detections"])), "gt": int(len(a["gt_boxes"])),
            "input_size": [int(v) for v in a["input_size"]], "image_size": [int(v) for v in a["image_size"]]}


# task name -> (capture, summary); a task with the "xray" capability needs an entry here
CAPTURES: dict[str, tuple[CaptureFn, Callable[[dict[str, np.ndarray]], dict]]] = {
    "faster_rcnn": (_capture_faster_rcnn, summarize),
    "yolo_v1": (_capture_yolo_v1, summarize_yolo),
}


def capture_for(task_name: str) -> tuple[CaptureFn, Callable[[dict[str, np.ndarray]], dict]]:
    """The capture and summary functions of ``task_name``'s models; XrayError when it has none."""
    if task_name not in CAPTURES:
        raise XrayError(f"{task_name} models have no X-ray (models with one: {', '.join(CAPTURES)})")
    return CAPTURES[task_name]


def load_image_and_gt(store: Store, image: int | str, label_map: dict[int, int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None, str]:
    """(H, W, 3) uint8 image, GT boxes (N, 4) float32 xyxy, labels (N,) int64 (model labels, as the
    trainer builds them), the image id (None for an outside file) and its path."""
    rec = None
    if isinstance(image, int) or (isinstance(image, str) and image.strip().isdigit()):
        try:
            rec = store.image(int(image))
        except StoreError as e:
            raise XrayError(f"image: {e}") from e
    else:
        p = Path(str(image))
        candidates = [p] if p.is_absolute() else [store.root / p, Path.cwd() / p]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise XrayError(f"image: {image!r} is neither an image id of the project nor a file")
        try:
            rec = store.image_by_path(path.resolve().relative_to(store.root).as_posix())
        except ValueError:  # outside the project folder
            rec = None
        if rec is None:
            return read_rgb(path), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), None, str(path)
    sample = SampleRecord(rec.id, store.image_path(rec), rec.width, rec.height, tuple(store.annotations(rec.id)))
    img, boxes, labels, _ = DetectionDataset([sample], label_map).raw(0)
    return img, boxes, labels, rec.id, str(sample.path)


def resolve_checkpoint(store: Store, config: dict) -> str | None:
    """The checkpoint path named by ``checkpoint`` or by ``run`` (its best checkpoint), else None."""
    if config.get("checkpoint"):
        return str(config["checkpoint"])
    run = config.get("run")
    if run in (None, "", 0):
        return None
    try:
        return str(store.run_checkpoint(int(run)))
    except (StoreError, ValueError) as e:
        raise XrayError(f"run: {e}") from e


def xray_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Capture one image's model internals (Faster R-CNN or YOLOv1; see module docstring)."""
    if not config.get("project"):
        raise XrayError("project: no project folder given")
    if config.get("image") in (None, ""):
        raise XrayError("image: no image id or path given")
    device = torch.device(config.get("device") or "cpu")
    sink(Progress(0, 3, "loading model"))
    with Store(config["project"]) as store:
        checkpoint = resolve_checkpoint(store, config)
        names = {c.id: c.name for c in store.categories()}
        meta: dict = {"project": str(store.root), "checkpoint": checkpoint or "", "run_id": config.get("run")}
        task_name = "faster_rcnn"
        if checkpoint:
            task, model, spec, labels, ck_meta = load_model(checkpoint, device)
            if "xray" not in task.capabilities:
                raise XrayError(f"checkpoint: {task.name} models have no detector X-ray")
            task_name = task.name
            label_map = labels.label_map
            meta.update(step=ck_meta.get("step"), epoch=ck_meta.get("epoch"), run_id=ck_meta.get("run_id"))
            label_names = ["background", *ck_meta.get("category_names", [])]
        else:
            label_map = make_label_map(store)
            spec = DetectorSpec(num_classes=len(label_map) + 1, pretrained=False)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(config.get("seed", 0)))
                model, _ = build_faster_rcnn(spec)
            model.to(device).eval()
            msg = "no checkpoint given: X-ray of an UNTRAINED tiny detector (random weights)"
            sink(Notice(msg, "warning"))
            meta["notice"] = msg
            label_names = ["background", *[names[c] for c in sorted(label_map, key=label_map.get)]]
        capture_fn, summary_fn = capture_for(task_name)
        cancel.check()
        sink(Progress(1, 3, "reading image"))
        image, gt_boxes, gt_labels, image_id, path = load_image_and_gt(store, config["image"], label_map)
    cancel.check()
    sink(Progress(2, 3, "capturing"))
    arrays = capture_fn(model, image, gt_boxes, gt_labels, config.get("roi_index"), int(config.get("seed", 0)))
    meta.update(task=task_name, image_id=image_id, image_path=path, label_names=label_names,
                spec=spec.to_dict(), live=False)
    summary = {"task": task_name, **summary_fn(arrays),
               **{k: meta[k] for k in ("image_id", "image_path", "checkpoint", "run_id")}}
    sink(ArraysReady(kind="xray", arrays=arrays, meta=meta))
    sink(Progress(3, 3, "done"))
    return summary

