"""Faster R-CNN (torchvision) assembled from parts: backbone, anchors, RPN and RoI heads.

Label 0 is background; category ids of the project are mapped to labels 1..K by the caller
(``label_map``). Inputs are lists of (3, H, W) float tensors in [0, 1]; the model resizes them
so the short side is ``min_size`` (capped by ``max_size``) — set both from the data.

Every model gets the loss heads of ``engine.models.frcnn_heads`` (``FocalRPN``, ``LossRoIHeads``): the
spec's ``rpn_loss``, ``roi_loss``, ``ohem_k``, ``focal_alpha``, ``focal_gamma`` and ``box_loss_beta``
pick the losses (defaults: torchvision's, bit-identical) and the heads record per-step imbalance numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torchvision.models import detection, mobilenet_v3_large, resnet50
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead
from torchvision.ops.misc import FrozenBatchNorm2d

from engine.config import strict_from_dict
from engine.models.backbones import TinyFPNBackbone, tiny_anchor_sizes
from engine.models.frcnn_heads import LossOptions, install_loss_heads

BACKBONES = ("tiny", "mobilenet_v3_large_fpn", "resnet50_fpn")


@dataclass
class DetectorSpec:
    """Everything needed to rebuild a detector; saved next to its weights."""

    backbone: str = "tiny"
    num_classes: int = 4  # including background
    min_size: int = 256
    max_size: int = 512
    norm: str = "auto"  # auto (frozen with pretrained weights, else bn) | bn | frozen | gn
    trainable_backbone_layers: int = -1  # pretrained torchvision backbones: stages trained (-1 = 3, torchvision's)
    anchor_sizes: tuple[tuple[int, ...], ...] = field(default_factory=tiny_anchor_sizes)
    aspect_ratios: tuple[float, ...] = (0.7, 1.0, 1.4)  # tiny only (h / w); demo objects span 0.7-1.5
    pretrained: bool = True  # use local pretrained weights when present
    box_batch_size_per_image: int = 512  # RoIs sampled per image for the box head loss (torchvision's default)
    rpn_loss: str = "ce"  # ce (torchvision's sampled BCE) | focal (sigmoid focal over all labelled anchors)
    roi_loss: str = "ce"  # ce | focal (softmax focal over the sampled RoIs) | ohem (hardest ohem_k of all RoIs)
    ohem_k: int = 128  # roi_loss ohem: RoIs kept per image
    focal_alpha: float = 0.25  # focal: weight of foreground (background 1 - alpha); -1 = no weighting
    focal_gamma: float = 2.0  # focal: exponent of (1 - p_t)
    box_loss_beta: float = 1 / 9  # smooth L1 beta of the RPN and RoI box losses (torchvision's 1/9)

    def __post_init__(self) -> None:
        self.loss_options()  # a bad loss option is a one-line ValueError here, not a failure mid-run

    def loss_options(self) -> LossOptions:
        return LossOptions(self.rpn_loss, self.roi_loss, self.ohem_k, self.focal_alpha, self.focal_gamma,
                           self.box_loss_beta)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["anchor_sizes"] = [list(s) for s in self.anchor_sizes]
        d["aspect_ratios"] = list(self.aspect_ratios)
        return d

    @staticmethod
    def from_dict(d: dict) -> DetectorSpec:
        d = dict(d)
        d["anchor_sizes"] = tuple(tuple(int(v) for v in s) for s in d.get("anchor_sizes", tiny_anchor_sizes()))
        d["aspect_ratios"] = tuple(float(v) for v in d.get("aspect_ratios", DetectorSpec().aspect_ratios))
        return strict_from_dict(DetectorSpec, d, "detector spec fields")


def build_faster_rcnn(spec: DetectorSpec) -> tuple[FasterRCNN, list[str]]:
    """Build the model; returns it and notices for the user (e.g. 'training from scratch')."""
    notices: list[str] = []
    common = dict(min_size=spec.min_size, max_size=spec.max_size, box_detections_per_img=100,
                  box_batch_size_per_image=spec.box_batch_size_per_image)
    if spec.backbone == "tiny":
        anchors = AnchorGenerator(spec.anchor_sizes, (spec.aspect_ratios,) * len(spec.anchor_sizes))
        backbone = TinyFPNBackbone("bn" if spec.norm == "auto" else spec.norm)
        model = FasterRCNN(backbone, rpn_anchor_generator=anchors,
                           box_head=TwoMLPHead(backbone.out_channels * 7 * 7, 256),
                           box_predictor=FastRCNNPredictor(256, spec.num_classes),
                           rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
                           rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300, **common)
        install_loss_heads(model, spec.loss_options())
        notices.append("tiny backbone: training from scratch (no pretrained weights exist for it)")
        return model, notices
    if spec.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {spec.backbone!r}; expected one of {BACKBONES}")
    return _build_torchvision(spec, common, notices)


TORCHVISION = {  # backbone -> (COCO weights, number of backbone stages)
    "mobilenet_v3_large_fpn": (detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT, 6),
    "resnet50_fpn": (detection.FasterRCNN_ResNet50_FPN_Weights.DEFAULT, 5),
}


def resolve_backbone_options(spec: DetectorSpec) -> DetectorSpec:
    """The spec with ``norm`` and ``trainable_backbone_layers`` made explicit (so a checkpoint rebuilds the
    same layers) and ``pretrained`` true only when weights are on disk. An option that does not apply
    to the backbone is a ValueError, never ignored."""
    if spec.backbone == "tiny":
        if spec.trainable_backbone_layers >= 0:
            raise ValueError("trainable_backbone_layers applies to pretrained backbones; the tiny backbone always "
                             "trains from scratch")
        return replace(spec, norm="bn" if spec.norm == "auto" else spec.norm, pretrained=False)
    if spec.backbone not in TORCHVISION:
        raise ValueError(f"unknown backbone {spec.backbone!r}; expected one of {BACKBONES}")
    weights, stages = TORCHVISION[spec.backbone]
    found = spec.pretrained and local_weights_file(weights.url) is not None
    trainable = spec.trainable_backbone_layers
    if not found and trainable >= 0:
        raise ValueError(f"trainable_backbone_layers applies to pretrained weights; none were found for "
                         f"{spec.backbone} in {hub_checkpoint_dir()} (from scratch every stage trains)")
    if trainable > stages:
        raise ValueError(f"{spec.backbone} has {stages} backbone stages; trainable_backbone_layers {trainable} "
                         "is too many")
    norm = spec.norm if spec.norm != "auto" else ("frozen" if found else "bn")
    return replace(spec, norm=norm, pretrained=found, trainable_backbone_layers=trainable if trainable >= 0 else
                   (3 if found else stages))


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """BatchNorm (trainable), FrozenBatchNorm2d (pretrained statistics kept) or GroupNorm."""
    if kind == "frozen":
        return FrozenBatchNorm2d
    if kind == "gn":
        return lambda c: nn.GroupNorm(math.gcd(32, c), c)
    return nn.BatchNorm2d


def _build_torchvision(spec: DetectorSpec, common: dict, notices: list[str]) -> tuple[FasterRCNN, list[str]]:
    """torchvision's recipe: with pretrained weights FrozenBatchNorm2d in the backbone and only the last
    ``trainable_backbone_layers`` stages (default 3) trained; from scratch trainable norms, every stage."""
    weights_enum, stages = TORCHVISION[spec.backbone]
    local = local_weights_file(weights_enum.url) if spec.pretrained else None
    norm = spec.norm if spec.norm != "auto" else ("frozen" if local is not None else "bn")
    trainable = spec.trainable_backbone_layers
    trainable = trainable if trainable >= 0 else (3 if local is not None else stages)
    if spec.backbone == "resnet50_fpn":
        body = resnet50(weights=None, norm_layer=norm_layer(norm))
        backbone = _resnet_fpn_extractor(body, trainable)
        model = FasterRCNN(backbone, spec.num_classes, **common)
    else:
        body = mobilenet_v3_large(weights=None, norm_layer=norm_layer(norm))
        backbone = _mobilenet_extractor(body, True, trainable)
        anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
        model = FasterRCNN(backbone, spec.num_classes, rpn_anchor_generator=anchors, rpn_score_thresh=0.05, **common)
    install_loss_heads(model, spec.loss_options())
    if local is not None:
        state = torch.load(local, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("roi_heads.box_predictor")}
        missing, _ = model.load_state_dict(state, strict=False)
        notices.append(f"loaded pretrained weights from {local} ({len(missing)} head tensors trained anew); "
                       f"backbone norm {norm}, {trainable} of {stages} stages trained")
        if spec.rpn_loss == "focal":
            notices.append("focal RPN: the pretrained objectness bias is kept (the pi = 0.01 prior initialises "
                           "only a new head)")
    else:
        notices.append(f"{spec.backbone}: no pretrained weights loaded; training from scratch (norm {norm}, "
                       f"{trainable} of {stages} stages trained)")
    return model, notices


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def local_weights_file(url: str) -> Path | None:
    """The file torchvision would download for ``url``, if it is already on disk."""
    p = hub_checkpoint_dir() / url.rsplit("/", 1)[-1]
    return p if p.exists() else None
