"""YOLOv1 (Redmon et al. 2016) as a registered detection task.

Labels: the project's categories -> 1..K in the app (``LabelSpace`` with background 0, like Faster
R-CNN); the network's classes are 0..K-1 (YOLO has no background class), mapped inside
``YoloV1Detector``. Every image is resized to ``input_size`` x ``input_size`` (a plain resize) and
predictions come back in original image pixels. Metrics: the 12 COCO bbox stats
(``engine.eval.detection.STAT_NAMES``), selection metric ``map50``.

Spec from the config (``YoloDetectorSpec``):

- ``input_size`` = ``cfg.min_size`` or 448 (the paper). On a CPU pass e.g. ``--min-size 256``
  (``max_size`` is not used: the input is square);
- ``cfg.extra`` (``--extra KEY=VALUE``), the paper's values by default: ``yolo_S`` (7), ``yolo_B`` (2),
  ``yolo_class_loss`` (mse | ce | focal; mse), ``yolo_focal_gamma`` (2.0), ``yolo_lambda_coord`` (5.0),
  ``yolo_lambda_noobj`` (0.5), ``yolo_score`` (score threshold of class_prob * conf, 0.005: low, as
  Darknet's evaluation, so mAP sees the whole ranking), ``yolo_nms_iou`` (class-aware NMS, 0.5) and
  ``yolo_head`` (``DEFAULT_HEAD``; fc: the paper's conv -> FC -> FC head; conv: a 1x1 conv per cell,
  which learned ~10x faster from scratch on a CPU). A bad value or an unknown ``yolo_*`` key is a
  one-line ValueError.

Training data: the paper's augmentation (``engine.data.yolo_transforms``) under the usual
``augment_*`` switches. One object per grid cell: ``data_notices`` counts the training boxes that
lose their cell to a larger box (they are never learned) and the job shows it as a notice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from engine.config import TrainConfig
from engine.data.dataset import DetectionDataset, SampleRecord
from engine.data.yolo_transforms import yolo_train_transform
from engine.eval.detection import STAT_NAMES
from engine.models.yolo_v1 import BACKBONES, CLASS_LOSSES, HEADS
from engine.models.yolo_v1_boxes import encode_targets
from engine.models.yolo_v1_detector import YoloDetectorSpec, build_yolo_detector
from engine.project.shapes import instances
from engine.project.store import Store
from engine.tasks.base import LabelSpace
from engine.tasks.detection import DetectionMethods
from engine.tasks.faster_rcnn import category_space, check_has_objects

DEFAULT_INPUT_SIZE = 448  # the paper's; CPU users pass --min-size 256 (or 224)
DEFAULT_HEAD = "conv"  # "fc" is the paper's head: on a CPU it did not learn in 10 min (mAP@.5 0.02); conv 0.35
CHOICES = {"yolo_class_loss": CLASS_LOSSES, "yolo_head": HEADS}

# cfg.extra key -> (YoloDetectorSpec field, kind, valid range as text)
EXTRA_KEYS: dict[str, tuple[str, str, str]] = {
    "yolo_S": ("S", "int", ">= 1"),
    "yolo_B": ("B", "int", ">= 1"),
    "yolo_class_loss": ("class_loss", "choice", " | ".join(CLASS_LOSSES)),
    "yolo_head": ("head", "choice", " | ".join(HEADS)),
    "yolo_focal_gamma": ("focal_gamma", "float", ">= 0"),
    "yolo_lambda_coord": ("lambda_coord", "float", ">= 0"),
    "yolo_lambda_noobj": ("lambda_noobj", "float", ">= 0"),
    "yolo_score": ("score_threshold", "float", "in [0, 1)"),
    "yolo_nms_iou": ("nms_iou", "float", "in (0, 1]"),
}


def _in_range(value: float, rule: str) -> bool:
    if rule == ">= 1":
        return value >= 1
    if rule == ">= 0":
        return value >= 0
    if rule == "in [0, 1)":
        return 0 <= value < 1
    return 0 < value <= 1  # in (0, 1]


def spec_options(extra: dict) -> dict[str, Any]:
    """``cfg.extra`` -> YoloDetectorSpec keyword arguments; ValueError (one line) for a bad value or an
    unknown ``yolo_*`` key. Keys of other features (no ``yolo_`` prefix) are left alone."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if not key.startswith("yolo_"):
            continue
        if key not in EXTRA_KEYS:
            raise ValueError(f"unknown YOLOv1 option extra {key!r}; valid: {', '.join(EXTRA_KEYS)}")
        name, kind, rule = EXTRA_KEYS[key]
        if kind == "choice":
            if value not in CHOICES[key]:
                raise ValueError(f"extra {key} must be one of {rule} (got {value!r})")
            out[name] = value
            continue
        ok_type = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not _in_range(value, rule):
            what = "an integer" if kind == "int" else "a number"
            raise ValueError(f"extra {key} must be {what} {rule} (got {value!r})")
        out[name] = int(value) if kind == "int" else float(value)
    return out


def record_boxes(rec: SampleRecord, label_map: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A record's objects as the dataset builds them, without decoding the image: boxes (N, 4) float32
    xyxy pixels clipped to the image (boxes under 1 px dropped), labels (N,) int64 model labels."""
    h, w = rec.height, rec.width
    objs = [o for o in instances(list(rec.annotations), h, w) if o.category_id in label_map]
    boxes = np.array([o.box for o in objs], np.float32).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    labels = np.array([label_map[o.category_id] for o in objs], np.int64).reshape(-1)[keep]
    return boxes[keep], labels


def count_dropped(records: list[SampleRecord], labels: LabelSpace, spec: YoloDetectorSpec) -> tuple[int, int, int]:
    """(dropped boxes, all boxes, images with a drop) when ``records`` are encoded on ``spec``'s grid,
    without augmentation: boxes whose centre shares a cell with a larger box are never learned."""
    dropped = total = images = 0
    s = spec.input_size
    for rec in records:
        boxes, labs = record_boxes(rec, labels.label_map)
        if len(boxes) == 0:
            continue
        scale = np.array([s / rec.width, s / rec.height] * 2, np.float32)
        enc = encode_targets(torch.from_numpy(boxes * scale), torch.from_numpy(labs - 1), spec.S, s,
                             spec.num_classes)
        n = int(enc["dropped"].numel())
        dropped, total, images = dropped + n, total + len(boxes), images + (n > 0)
    return dropped, total, images


class YoloV1Task(DetectionMethods):
    name = "yolo_v1"
    kind = "detection"
    backbones = BACKBONES
    metric_names = STAT_NAMES
    selection_metric = "map50"
    higher_is_better = True
    capabilities = frozenset({"xray", "suggest"})

    def label_space(self, store: Store) -> LabelSpace:
        return category_space(store)

    def check_data(self, records: list[SampleRecord], labels: LabelSpace) -> None:
        check_has_objects(records, labels, "annotated objects")

    def spec_from_data(self, cfg: TrainConfig, records: list[SampleRecord], labels: LabelSpace) -> YoloDetectorSpec:
        spec = YoloDetectorSpec(backbone=cfg.backbone, num_classes=max(1, len(labels.ids)),
                                input_size=cfg.min_size or DEFAULT_INPUT_SIZE, pretrained=cfg.pretrained,
                                **{"head": DEFAULT_HEAD, **spec_options(cfg.extra)})
        return spec.validate()

    def spec_from_dict(self, d: dict) -> YoloDetectorSpec:
        return YoloDetectorSpec.from_dict(d)

    def build(self, spec: YoloDetectorSpec) -> tuple[nn.Module, list[str]]:
        return build_yolo_detector(spec)

    def data_notices(self, records: list[SampleRecord], labels: LabelSpace, spec: YoloDetectorSpec) -> list[str]:
        """One notice when training boxes share a grid cell (YOLOv1 learns one object per cell)."""
        dropped, total, images = count_dropped(records, labels, spec)
        if not dropped:
            return []
        return [f"YOLOv1 grid {spec.S}x{spec.S}: {dropped} of {total} training boxes ({100 * dropped / total:.1f} %, "
                f"in {images} images) share a cell with a larger box and are never learned"]

    def dataset(self, records: list[SampleRecord], labels: LabelSpace, cfg: TrainConfig | None,
                train: bool) -> Dataset:
        transform = yolo_train_transform(cfg) if train and cfg is not None else None
        return DetectionDataset(records, labels.label_map, transform)


TASK = YoloV1Task()
