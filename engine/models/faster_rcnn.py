"""Faster R-CNN (torchvision) assembled from parts: backbone, anchors, RPN and RoI heads.

Label 0 is background; category ids of the project are mapped to labels 1..K by the caller
(``label_map``). Inputs are lists of (3, H, W) float tensors in [0, 1]; the model resizes them
so the short side is ``min_size`` (capped by ``max_size``) — set both from the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision.models import detection
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead

from engine.models.backbones import TinyFPNBackbone, tiny_anchor_sizes

BACKBONES = ("tiny", "mobilenet_v3_large_fpn", "resnet50_fpn")


@dataclass
class DetectorSpec:
    """Everything needed to rebuild a detector; saved next to its weights."""

    backbone: str = "tiny"
    num_classes: int = 4  # including background
    min_size: int = 256
    max_size: int = 512
    norm: str = "bn"  # tiny only: bn | frozen | gn
    anchor_sizes: tuple[tuple[int, ...], ...] = field(default_factory=tiny_anchor_sizes)
    aspect_ratios: tuple[float, ...] = (0.7, 1.0, 1.4)  # tiny only (h / w); demo objects span 0.7-1.5
    pretrained: bool = True  # use local pretrained weights when present
    box_batch_size_per_image: int = 512  # RoIs sampled per image for the box head loss (torchvision's default)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["anchor_sizes"] = [list(s) for s in self.anchor_sizes]
        d["aspect_ratios"] = list(self.aspect_ratios)
        return d

    @staticmethod
    def from_dict(d: dict) -> DetectorSpec:
        d = dict(d)
        d["anchor_sizes"] = tuple(tuple(int(v) for v in s) for s in d.get("anchor_sizes", tiny_anchor_sizes()))
        d["aspect_ratios"] = tuple(float(v) for v in d.get("aspect_ratios", (0.5, 1.0, 2.0)))
        return DetectorSpec(**d)


def build_faster_rcnn(spec: DetectorSpec) -> tuple[FasterRCNN, list[str]]:
    """Build the model; returns it and notices for the user (e.g. 'training from scratch')."""
    notices: list[str] = []
    common = dict(min_size=spec.min_size, max_size=spec.max_size, box_detections_per_img=100,
                  box_batch_size_per_image=spec.box_batch_size_per_image)
    if spec.backbone == "tiny":
        anchors = AnchorGenerator(spec.anchor_sizes, (spec.aspect_ratios,) * len(spec.anchor_sizes))
        backbone = TinyFPNBackbone(spec.norm)
        model = FasterRCNN(backbone, rpn_anchor_generator=anchors,
                           box_head=TwoMLPHead(backbone.out_channels * 7 * 7, 256),
                           box_predictor=FastRCNNPredictor(256, spec.num_classes),
                           rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
                           rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300, **common)
        notices.append("tiny backbone: training from scratch (no pretrained weights exist for it)")
        return model, notices
    if spec.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {spec.backbone!r}; expected one of {BACKBONES}")
    builder, weights_enum = {
        "mobilenet_v3_large_fpn": (detection.fasterrcnn_mobilenet_v3_large_fpn,
                                   detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT),
        "resnet50_fpn": (detection.fasterrcnn_resnet50_fpn, detection.FasterRCNN_ResNet50_FPN_Weights.DEFAULT),
    }[spec.backbone]
    model = builder(weights=None, weights_backbone=None, num_classes=spec.num_classes, **common)
    local = local_weights_file(weights_enum.url) if spec.pretrained else None
    if local is not None:
        state = torch.load(local, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("roi_heads.box_predictor")}
        missing, _ = model.load_state_dict(state, strict=False)
        notices.append(f"loaded pretrained weights from {local} ({len(missing)} head tensors trained anew)")
    else:
        notices.append(f"{spec.backbone}: no local pretrained weights found in {hub_checkpoint_dir()}; "
                       "training from scratch")
    return model, notices


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def local_weights_file(url: str) -> Path | None:
    """The file torchvision would download for ``url``, if it is already on disk."""
    p = hub_checkpoint_dir() / url.rsplit("/", 1)[-1]
    return p if p.exists() else None
