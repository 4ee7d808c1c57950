"""YOLOv1 as a detector of the app: list of images in, five losses (train) or detections (eval) out.

``YoloV1Detector`` wraps ``engine.models.yolo_v1.YoloV1`` with the task conventions of
``engine.tasks.base``:

- input: a list of (3, H, W) float images in [0, 1], any sizes. Each is resized to
  ``input_size`` x ``input_size`` (a plain bilinear resize with antialiasing, no letterbox; the
  aspect ratio is not kept, as in the paper) and normalised with the ImageNet mean/std. The scale
  per image is ``(sx, sy) = (W / input_size, H / input_size)``: input px * (sx, sy) = original px.
- train mode: ``targets`` (list of dicts with ``boxes`` (N, 4) float xyxy ORIGINAL pixels and
  ``labels`` (N,) int64 in 1..K) are mapped into the input frame, encoded one object per cell
  (``encode_targets``, YOLO classes 0..K-1) and the five terms of ``yolo_v1_loss`` are returned
  (``loss_xy``, ``loss_wh``, ``loss_obj``, ``loss_noobj``, ``loss_cls``).
- eval mode: a list of ``{"boxes" (D, 4) float32 xyxy ORIGINAL pixels, "scores" (D,),
  "labels" (D,) int64 in 1..K}`` after the score threshold and class-aware NMS
  (``decode_predictions``).

``YoloDetectorSpec`` is ``YoloSpec`` plus the post-processing (score threshold, NMS IoU, detections
per image), so a checkpoint rebuilds exactly the detector that was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import strict_from_dict
from engine.models.yolo_v1 import YoloSpec, YoloV1, build_yolo_v1
from engine.models.yolo_v1_boxes import decode_predictions, encode_targets, stack_targets
from engine.models.yolo_v1_loss import yolo_v1_loss

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class YoloDetectorSpec(YoloSpec):
    """``YoloSpec`` plus post-processing; saved with every checkpoint (``to_dict``)."""

    score_threshold: float = 0.005  # keep (predictor, class) pairs with class_prob * conf above this
    nms_iou: float = 0.5  # class-aware NMS IoU
    max_detections: int = 100  # per image, after NMS

    def validate(self) -> YoloDetectorSpec:
        """Raise ValueError (one line) for an unusable spec; returns self."""
        super().validate()
        if not (math.isfinite(self.score_threshold) and 0.0 <= self.score_threshold < 1.0):
            raise ValueError(f"score_threshold must be in [0, 1), got {self.score_threshold}")
        if not (math.isfinite(self.nms_iou) and 0.0 < self.nms_iou <= 1.0):
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if int(self.max_detections) < 1:
            raise ValueError(f"max_detections must be >= 1, got {self.max_detections}")
        return self

    @staticmethod
    def from_dict(d: dict) -> YoloDetectorSpec:
        """Inverse of to_dict; missing keys take the defaults, unknown keys raise ValueError."""
        return strict_from_dict(YoloDetectorSpec, d, "YOLOv1 spec keys")


class YoloV1Detector(nn.Module):
    """The detector of the module docstring; ``net`` is the bare ``YoloV1`` network."""

    def __init__(self, net: YoloV1, spec: YoloDetectorSpec) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        # not persistent: checkpoints hold only learned weights
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def prepare(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[float, float]]]:
        """(3, H, W) float [0, 1] images -> (N, 3, s, s) normalised batch and (sx, sy) per image."""
        s = int(self.spec.input_size)
        batch, scales = [], []
        for im in images:
            im = im.as_subclass(torch.Tensor) if isinstance(im, torch.Tensor) else torch.as_tensor(im)
            if im.ndim != 3 or im.shape[0] != 3:
                raise ValueError(f"expected a (3, H, W) image, got {tuple(im.shape)}")
            h, w = int(im.shape[-2]), int(im.shape[-1])
            x = im[None].float()
            if (h, w) != (s, s):
                x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            batch.append(x)
            scales.append((w / s, h / s))
        x = torch.cat(batch) if batch else torch.zeros(0, 3, s, s, device=self.mean.device)
        return (x - self.mean) / self.std, scales

    def raw(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[float, float]]]:
        """The network output (N, S, S, B*5+C) in the layout of ``engine.models.yolo_v1`` and (sx, sy) per image."""
        x, scales = self.prepare(images)
        return self.net(x), scales

    def encode(self, target: dict, scale: tuple[float, float]) -> dict[str, torch.Tensor]:
        """One image's target (original pixels, labels 1..K) -> ``encode_targets`` output (input frame, 0..K-1)."""
        boxes = target["boxes"].as_subclass(torch.Tensor).detach().float().cpu().reshape(-1, 4)
        labels = target["labels"].as_subclass(torch.Tensor).detach().cpu().reshape(-1).long()
        sx, sy = scale
        boxes = boxes / boxes.new_tensor([sx, sy, sx, sy])
        return encode_targets(boxes, labels - 1, self.spec.S, self.spec.input_size, self.spec.num_classes)

    def decode(self, pred: torch.Tensor, scale: tuple[float, float]) -> dict[str, torch.Tensor]:
        """One image's output (S, S, B*5+C) -> ``decode_predictions`` output (original pixels, labels 0..K-1)."""
        sp = self.spec
        return decode_predictions(pred, sp.S, sp.B, sp.input_size, scale, sp.score_threshold, sp.nms_iou,
                                  sp.max_detections, sp.class_logits)

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None
                ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        pred, scales = self.raw(images)
        if self.training:
            if targets is None or len(targets) != len(images):
                raise ValueError("YOLOv1 needs one target dict per image in train mode")
            encoded = [self.encode(t, sc) for t, sc in zip(targets, scales)]
            return yolo_v1_loss(pred, stack_targets(encoded), self.spec)
        out = []
        for p, sc in zip(pred, scales):
            d = self.decode(p, sc)
            out.append({"boxes": d["det_boxes"], "scores": d["det_scores"], "labels": d["det_labels"] + 1})
        return out


def build_yolo_detector(spec: YoloDetectorSpec) -> tuple[YoloV1Detector, list[str]]:
    """A fresh detector for ``spec`` and notices for the user (weights, one object per cell)."""
    spec.validate()
    net, notices = build_yolo_v1(spec)
    return YoloV1Detector(net, spec), notices
