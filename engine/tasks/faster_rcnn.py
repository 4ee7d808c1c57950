"""Faster R-CNN (torchvision) as a registered detection task.

Labels: the project's categories -> 1..K (0 is background). The model resizes its inputs so the
short side is ``spec.min_size`` (capped by ``max_size``), taken from the data unless set; its
outputs are already in original image pixels (torchvision's ``postprocess``). Metrics: the 12
COCO bbox stats (``engine.eval.detection.STAT_NAMES``), selection metric ``map50``.

Loss options come from the config (``rpn_loss``, ``roi_loss``, ``ohem_k``, ``focal_alpha``,
``focal_gamma``, ``box_loss_beta``) into the spec, so a checkpoint rebuilds the same heads.
``step_stats`` (optional task method) hands the trainer the heads' per-step imbalance numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from engine.config import MODEL_OPTIONS, TrainConfig
from engine.data.dataset import DetectionDataset, SampleRecord, collate, size_from_data
from engine.data.transforms import train_transform
from engine.eval.detection import STAT_NAMES, ImageDetections, ImageTargets, coco_map
from engine.jobs import CancelToken
from engine.models.faster_rcnn import BACKBONES, DetectorSpec, build_faster_rcnn, resolve_backbone_options
from engine.models.frcnn_heads import step_stats
from engine.project.store import Store
from engine.tasks.base import LabelSpace, TaskDataError


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    arr = np.ascontiguousarray(rgb)
    arr = arr if arr.flags.writeable else arr.copy()  # torch wants writable memory
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


def category_space(store: Store, background: bool = True) -> LabelSpace:
    """The project's categories in id order (shared by the detection and segmentation tasks)."""
    cats = store.categories()
    return LabelSpace(tuple(c.id for c in cats), tuple(c.name for c in cats), background)


def check_has_objects(records: list[SampleRecord], labels: LabelSpace, what: str) -> None:
    """TaskDataError unless some record has an annotation of a known category."""
    if not labels.ids:
        raise TaskDataError("the project has no categories to train on")
    known = set(labels.ids)
    if not any(a.category_id in known for r in records for a in r.annotations):
        raise TaskDataError(f"the training images have no {what} to learn from")


class FasterRCNNTask:
    name = "faster_rcnn"
    kind = "detection"
    backbones = BACKBONES
    metric_names = STAT_NAMES
    selection_metric = "map50"
    higher_is_better = True
    capabilities = frozenset({"xray", "suggest"})
    options = frozenset(MODEL_OPTIONS)  # TrainConfig fields only some families read (engine.config)

    def label_space(self, store: Store) -> LabelSpace:
        return category_space(store)

    def check_data(self, records: list[SampleRecord], labels: LabelSpace) -> None:
        check_has_objects(records, labels, "annotated objects")

    def spec_from_data(self, cfg: TrainConfig, records: list[SampleRecord], labels: LabelSpace) -> DetectorSpec:
        min_size, max_size = size_from_data(records)
        try:
            spec = DetectorSpec(backbone=cfg.backbone, num_classes=labels.num_outputs,
                                min_size=cfg.min_size or min_size, max_size=cfg.max_size or max(max_size, cfg.min_size),
                                norm=cfg.norm, pretrained=cfg.pretrained,
                                trainable_backbone_layers=cfg.trainable_backbone_layers,
                                box_batch_size_per_image=cfg.roi_samples or (128 if cfg.backbone == "tiny" else 512),
                                rpn_loss=cfg.rpn_loss, roi_loss=cfg.roi_loss, ohem_k=cfg.ohem_k,
                                focal_alpha=cfg.focal_alpha, focal_gamma=cfg.focal_gamma,
                                box_loss_beta=cfg.box_loss_beta)
            return resolve_backbone_options(spec)
        except ValueError as e:  # an option that does not apply to this backbone: refused, never ignored
            raise TaskDataError(str(e)) from e

    def spec_from_dict(self, d: dict) -> DetectorSpec:
        return DetectorSpec.from_dict(d)

    def step_stats(self, model: nn.Module) -> dict[str, float]:
        """The last training step's imbalance numbers (``engine.models.frcnn_heads.STAT_DOCS``); the trainer
        streams them as ``stat_<name>`` next to the losses, never adding them to the loss."""
        return step_stats(model)

    def build(self, spec: DetectorSpec) -> tuple[nn.Module, list[str]]:
        return build_faster_rcnn(spec)

    def dataset(self, records: list[SampleRecord], labels: LabelSpace, cfg: TrainConfig | None,
                train: bool) -> Dataset:
        transform = train_transform(cfg) if train and cfg is not None else None
        return DetectionDataset(records, labels.label_map, transform)

    def collate(self, batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
        return collate(batch)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device,
                 cancel: CancelToken | None) -> dict[str, float]:
        gts: list[ImageTargets] = []
        dets: list[ImageDetections] = []
        was_training = model.training
        model.eval()
        try:
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
        finally:
            model.train(was_training)
        num_classes = len(getattr(loader.dataset, "label_map", {})) + 1
        return coco_map(gts, dets, max(num_classes, int(max((g.labels.max(initial=0) for g in gts), default=0)) + 1))

    @torch.no_grad()
    def predict(self, model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
        was_training = model.training
        model.eval()
        try:
            outs = model([image_tensor(im).to(device) for im in images])
        finally:
            model.train(was_training)
        return [{"boxes": o["boxes"].cpu().numpy().astype(np.float32), "scores": o["scores"].cpu().numpy(),
                 "labels": o["labels"].cpu().numpy().astype(np.int64)} for o in outs]


TASK = FasterRCNNTask()
