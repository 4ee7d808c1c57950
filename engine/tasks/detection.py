"""What every detection task shares: an eval-mode context, COCO evaluation over a loader and box
predictions in original pixels. Models here take a list of (3, H, W) float images and, in eval mode,
return ``[{"boxes" (N, 4) xyxy original px, "scores" (N,), "labels" (N,) 1..K}]`` (torchvision's
convention, which the YOLOv1 wrapper follows too)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.data.dataset import collate
from engine.data.tensors import image_tensor
from engine.eval.detection import ImageDetections, ImageTargets, coco_map
from engine.jobs import CancelToken
from engine.tasks.base import eval_mode


def coco_evaluate(model: nn.Module, loader: DataLoader, device: torch.device,
                  cancel: CancelToken | None) -> dict[str, float]:
    """The 12 COCO bbox stats of ``model`` over an un-augmented detection loader."""
    gts: list[ImageTargets] = []
    dets: list[ImageDetections] = []
    with eval_mode(model):
        for images, targets in loader:
            if cancel is not None:
                cancel.check()
            outs = model([im.as_subclass(torch.Tensor).to(device) for im in images])
            for im, t, o in zip(images, targets, outs):
                h, w = im.shape[-2:]
                gts.append(ImageTargets(int(t["image_id"]), int(w), int(h),
                                        t["boxes"].as_subclass(torch.Tensor).numpy(), t["labels"].numpy()))
                dets.append(ImageDetections(int(t["image_id"]), o["boxes"].cpu().numpy(),
                                            o["scores"].cpu().numpy(), o["labels"].cpu().numpy()))
    num_classes = len(getattr(loader.dataset, "label_map", {})) + 1
    return coco_map(gts, dets, max(num_classes, int(max((g.labels.max(initial=0) for g in gts), default=0)) + 1))


def predict_boxes(model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
    """Eval-mode detections of original (H, W, 3) uint8 images, in their pixels."""
    with eval_mode(model):
        outs = model([image_tensor(im, device) for im in images])
    return [{"boxes": o["boxes"].cpu().numpy().astype(np.float32), "scores": o["scores"].cpu().numpy(),
             "labels": o["labels"].cpu().numpy().astype(np.int64)} for o in outs]


class DetectionMethods:
    """The box detectors' shared ``collate``, ``evaluate`` (COCO mAP) and ``predict`` (boxes in original
    pixels), mixed into their tasks (Faster R-CNN, YOLOv1)."""

    def collate(self, batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
        return collate(batch)

    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device,
                 cancel: CancelToken | None) -> dict[str, float]:
        return coco_evaluate(model, loader, device, cancel)

    def predict(self, model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
        return predict_boxes(model, images, device)
