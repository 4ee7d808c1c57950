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

from torch import nn
from torch.utils.data import Dataset

from engine.config import MODEL_OPTIONS, TrainConfig
from engine.data.dataset import DetectionDataset, SampleRecord, size_from_data
from engine.data.transforms import train_transform
from engine.eval.detection import STAT_NAMES
from engine.models.faster_rcnn import BACKBONES, DetectorSpec, build_faster_rcnn, resolve_backbone_options
from engine.models.frcnn_heads import step_stats
from engine.project.store import Store
from engine.tasks.base import LabelSpace, TaskDataError
from engine.tasks.detection import DetectionMethods


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


def anchor_options(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg.extra`` ``anchor_sizes`` (one list of sizes per FPN level, input pixels) and ``aspect_ratios``
    (h / w) -> DetectorSpec keyword arguments (none given: the spec's defaults). The Analytics panel's
    "Apply to training" writes them. Only the tiny backbone's anchors are configurable (the torchvision
    backbones keep their pretrained RPN's anchors): a ValueError otherwise, never ignored."""
    out: dict[str, Any] = {}
    sizes, ratios = cfg.extra.get("anchor_sizes"), cfg.extra.get("aspect_ratios")
    if sizes is None and ratios is None:
        return out
    if cfg.backbone != "tiny":
        raise ValueError(f"extra anchor_sizes/aspect_ratios apply to the tiny backbone only, not {cfg.backbone}")
    if sizes is not None:
        try:
            levels = tuple(tuple(int(v) for v in level) for level in sizes)
        except (TypeError, ValueError) as e:
            raise ValueError(f"extra anchor_sizes must be one list of sizes per FPN level (got {sizes!r})") from e
        default = DetectorSpec().anchor_sizes
        if len(levels) != len(default) or len({len(lv) for lv in levels}) != 1 or not levels[0]:
            raise ValueError(f"extra anchor_sizes needs {len(default)} FPN levels with the same number of sizes "
                             f"each (got {sizes!r})")
        if min(min(lv) for lv in levels) <= 0:
            raise ValueError("extra anchor_sizes must be positive")
        out["anchor_sizes"] = levels
    if ratios is not None:
        try:
            r = tuple(float(v) for v in ratios)
        except (TypeError, ValueError) as e:
            raise ValueError(f"extra aspect_ratios must be a list of numbers (got {ratios!r})") from e
        if not r or min(r) <= 0:
            raise ValueError("extra aspect_ratios must be positive numbers (height / width)")
        out["aspect_ratios"] = r
    return out


class FasterRCNNTask(DetectionMethods):
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
            spec = DetectorSpec(backbone=cfg.backbone, num_classes=labels.num_outputs, **anchor_options(cfg),
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


TASK = FasterRCNNTask()
