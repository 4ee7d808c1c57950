"""Detection evaluation: COCO mAP (faster-coco-eval; pycocotools as the reference) and validation losses.

Ground truth and detections are plain per-image records in original image pixels, boxes xyxy.
Labels are model labels 1..K (0 is background); they are used directly as COCO category ids.
``validation_losses`` runs the model in train mode (torchvision returns losses only there) with
every BatchNorm layer held in eval and under ``no_grad``, so running statistics stay untouched.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from engine.data.dataset import collate
from engine.jobs import CancelToken

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "mar1", "mar10", "mar100", "mar_small", "mar_medium", "mar_large")


@dataclass(frozen=True)
class ImageTargets:
    """Ground truth of one image: boxes (N, 4) float xyxy pixels, labels (N,) int in 1..K."""

    image_id: int
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image: boxes (N, 4) float xyxy pixels, scores (N,), labels (N,) in 1..K."""

    image_id: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def _coco_dicts(gts: list[ImageTargets], dets: list[ImageDetections], num_classes: int) -> tuple[dict, list]:
    images = [{"id": int(g.image_id), "width": int(g.width), "height": int(g.height)} for g in gts]
    anns = []
    for g in gts:
        for b, lab in zip(np.asarray(g.boxes, np.float64).reshape(-1, 4), np.asarray(g.labels).reshape(-1)):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": int(g.image_id), "category_id": int(lab),
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})
    cats = [{"id": i, "name": str(i)} for i in range(1, num_classes)]
    res = []
    for d in dets:
        for b, s, lab in zip(np.asarray(d.boxes, np.float64).reshape(-1, 4), np.asarray(d.scores).reshape(-1),
                             np.asarray(d.labels).reshape(-1)):
            res.append({"image_id": int(d.image_id), "category_id": int(lab), "score": float(s),
                        "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    return {"images": images, "annotations": anns, "categories": cats}, res


def coco_map(gts: list[ImageTargets], dets: list[ImageDetections], num_classes: int,
             backend: str = "faster_coco_eval") -> dict[str, float]:
    """COCO bbox metrics ``{map, map50, map75, ..., mar100, ...}`` (the 12 COCO stats).

    ``num_classes`` counts the background (labels are 1..num_classes-1). ``backend`` is
    ``faster_coco_eval`` (default) or ``pycocotools`` (the reference). Without ground-truth objects
    or without detections every stat is 0.0.
    """
    gt_dict, res = _coco_dicts(gts, dets, num_classes)
    if not gt_dict["annotations"] or not res:
        return dict.fromkeys(STAT_NAMES, 0.0)
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        quiet = lambda *a, **k: None  # noqa: E731
        coco_gt = COCO(gt_dict, print_function=quiet)
        ev = COCOeval_faster(coco_gt, coco_gt.loadRes(res), "bbox", print_function=quiet)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = gt_dict
            coco_gt.createIndex()
            ev = COCOeval(coco_gt, coco_gt.loadRes(res), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    else:
        raise ValueError(f"unknown COCO backend {backend!r}; expected faster_coco_eval or pycocotools")
    return {k: max(0.0, float(v)) for k, v in zip(STAT_NAMES, ev.stats)}


def targets_of(dataset: Dataset) -> list[ImageTargets]:
    """Ground truth of every item of an (un-augmented) detection dataset."""
    out = []
    for i in range(len(dataset)):
        image, t = dataset[i]
        h, w = image.shape[-2:]
        out.append(ImageTargets(int(t["image_id"]), int(w), int(h), t["boxes"].as_subclass(torch.Tensor).numpy(),
                                t["labels"].numpy()))
    return out


@torch.no_grad()
def predict(model: nn.Module, images: list[torch.Tensor], device: torch.device) -> list[dict[str, np.ndarray]]:
    """Eval-mode forward of (3, H, W) float images; ``[{boxes (N, 4) xyxy pixels, scores, labels}]``."""
    was_training = model.training
    model.eval()
    try:
        out = model([im.to(device) for im in images])
    finally:
        model.train(was_training)
    return [{k: v.detach().cpu().numpy() for k, v in o.items() if k in ("boxes", "scores", "labels")} for o in out]


def evaluate_detector(model: nn.Module, dataset: Dataset, device: torch.device, num_classes: int,
                      batch_size: int = 4, cancel: CancelToken | None = None
                      ) -> tuple[dict[str, float], list[ImageDetections]]:
    """COCO metrics of ``model`` on an un-augmented dataset, and its detections per image."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    gts: list[ImageTargets] = []
    dets: list[ImageDetections] = []
    for images, targets in loader:
        if cancel is not None:
            cancel.check()
        for im, t, o in zip(images, targets, predict(model, list(images), device)):
            h, w = im.shape[-2:]
            gts.append(ImageTargets(int(t["image_id"]), int(w), int(h),
                                    t["boxes"].as_subclass(torch.Tensor).numpy(), t["labels"].numpy()))
            dets.append(ImageDetections(int(t["image_id"]), o["boxes"], o["scores"], o["labels"]))
    return coco_map(gts, dets, num_classes), dets


def _is_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


@contextlib.contextmanager
def train_mode_norms_frozen(model: nn.Module) -> Iterator[None]:
    """Model in train mode, every BatchNorm layer in eval; restores every module's mode on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.train()
    for m in model.modules():
        if _is_norm(m):
            m.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def to_device(images: Iterable[torch.Tensor], targets: Iterable[dict], device: torch.device
              ) -> tuple[list[torch.Tensor], list[dict]]:
    """Move a batch to ``device``; targets keep only the tensors torchvision needs."""
    ims = [im.as_subclass(torch.Tensor).to(device, non_blocking=True) for im in images]
    ts = [{k: v.as_subclass(torch.Tensor).to(device, non_blocking=True) for k, v in t.items()
           if k in ("boxes", "labels", "masks")} for t in targets]
    return ims, ts


@torch.no_grad()
def validation_losses(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 4,
                      cancel: CancelToken | None = None) -> dict[str, float]:
    """Mean torchvision losses over ``dataset`` plus their sum ``loss``; BatchNorm statistics untouched."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    sums: dict[str, float] = {}
    n = 0
    with train_mode_norms_frozen(model):
        for images, targets in loader:
            if cancel is not None:
                cancel.check()
            ims, ts = to_device(images, targets, device)
            losses = model(ims, ts)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(ims)
            n += len(ims)
    if n == 0:
        return {}
    out = {k: v / n for k, v in sums.items()}
    out["loss"] = sum(out.values())
    return out


def evaluate_checkpoint(project: str, checkpoint: str, split: str = "val", device: str = "auto",
                        batch_size: int = 4, max_images: int = 0, cancel: CancelToken | None = None) -> dict:
    """COCO metrics of a saved detector on a split of ``project``:
    ``{map, map50, ... (12 stats), split, images, checkpoint, run_id}``."""
    from engine.data.dataset import DetectionDataset, make_label_map
    from engine.project.store import Store
    from engine.train.checkpoint import CheckpointError, load_detector
    from engine.train.job import select_device

    dev = select_device(device)
    model, spec, label_map, meta = load_detector(checkpoint, dev)
    with Store(project) as store:
        current = make_label_map(store)
        missing = sorted(set(label_map) - set(current))
        if missing:
            raise CheckpointError(f"checkpoint {checkpoint} predicts categories {missing} that project "
                                  f"{project} does not have")
        ds = DetectionDataset.from_store(store, split, label_map, max_images=max_images)
    if len(ds) == 0:
        raise ValueError(f"split {split!r} of {project} has no images")
    metrics, _ = evaluate_detector(model, ds, dev, spec.num_classes, batch_size, cancel)
    return {**metrics, "split": split, "images": len(ds), "checkpoint": str(checkpoint),
            "run_id": int(meta.get("run_id", 0))}
