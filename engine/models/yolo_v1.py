"""YOLOv1 (Redmon et al. 2016): a backbone, the paper's fully connected head and its spec.

Input: (N, 3, input_size, input_size) float image (normalised like the rest of the app).
Output: (N, S, S, B*5 + C) float, one layout for every ``class_loss``:

    per cell (row i = y, column j = x):  [x, y, sqrt_w, sqrt_h, conf] * B,  then C class slots

* ``x, y``: the box centre's offset inside the cell, in [0, 1] (sigmoid);
  centre = ((j + x) / S, (i + y) / S) * input_size.
* ``sqrt_w, sqrt_h``: square roots of width and height relative to the input, in [0, 1]
  (sigmoid; predicted directly, so no square root of a negative number is ever taken).
* ``conf``: the predictor's objectness = Pr(object) * IoU (sigmoid).
* class slots: ``class_loss == "mse"`` -> softmax probabilities (the paper);
  ``"ce"`` / ``"focal"`` -> raw logits (softmax is applied by the loss and by decoding).
  ``YoloSpec.class_logits`` says which.

Labels are 0..C-1 (no background class). Loss: ``engine.models.yolo_v1_loss``; targets and
decoding: ``engine.models.yolo_v1_boxes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from engine.config import strict_from_dict
from engine.models.backbones import make_norm
from engine.models.faster_rcnn import hub_checkpoint_dir, local_weights_file

BACKBONES = ("tiny", "resnet18")
CLASS_LOSSES = ("mse", "ce", "focal")
HEADS = ("fc", "conv")


@dataclass
class YoloSpec:
    """Everything needed to rebuild a YOLOv1 model and its loss; saved next to its weights."""

    backbone: str = "tiny"  # tiny | resnet18
    num_classes: int = 3  # no background class
    S: int = 7  # grid cells per side
    B: int = 2  # boxes per cell
    input_size: int = 448  # square network input; 224/256 for CPU runs
    dropout: float = 0.5  # after the first FC layer (paper: 0.5); the fc head only
    hidden: int = 512  # first FC layer width (paper: 4096)
    head_channels: int = 128  # the head's conv layer before flattening
    class_loss: str = "mse"  # mse (paper) | ce | focal
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    focal_gamma: float = 2.0  # class_loss == "focal" only
    pretrained: bool = False  # resnet18: load local ImageNet weights when present
    head: str = "fc"  # fc: the paper's conv -> FC -> FC | conv: a 1x1 conv per cell (weights shared by cells)

    @property
    def cell_dim(self) -> int:
        """Values per cell: B*5 + C."""
        return self.B * 5 + self.num_classes

    @property
    def class_logits(self) -> bool:
        """True when the class slots of the output are logits (ce/focal), False for probabilities (mse)."""
        return self.class_loss != "mse"

    def validate(self) -> YoloSpec:
        """Raise ValueError for an unusable spec; returns self."""
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {BACKBONES}")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; expected one of {HEADS}")
        if self.class_loss not in CLASS_LOSSES:
            raise ValueError(f"unknown class_loss {self.class_loss!r}; expected one of {CLASS_LOSSES}")
        for name in ("num_classes", "S", "B", "hidden", "head_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32 (backbone stride), got {self.input_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lambda_coord < 0 or self.lambda_noobj < 0 or self.focal_gamma < 0:
            raise ValueError("lambda_coord, lambda_noobj and focal_gamma must be >= 0")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> YoloSpec:
        """Inverse of to_dict; missing keys take the dataclass defaults, unknown keys raise ValueError."""
        return strict_from_dict(YoloSpec, d, "YoloSpec keys")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), make_norm("bn", cout), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), make_norm("bn", cout), nn.LeakyReLU(0.1, inplace=True),
    )


class TinyYoloBackbone(nn.Module):
    """(N, 3, H, W) -> (N, 256, H/32, W/32); five stride-2 stages of 16-32-64-128-256 channels."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 16, 32, 64, 128, 256)
        self.body = nn.Sequential(*(_block(widths[i], widths[i + 1]) for i in range(5)))
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResNet18Backbone(nn.Module):
    """(N, 3, H, W) -> (N, 512, H/32, W/32): torchvision resnet18 without avgpool and fc."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                  net.layer1, net.layer2, net.layer3, net.layer4)
        self.out_channels = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class YoloV1Head(nn.Module):
    """The paper's head: conv -> S x S pooling -> flatten -> FC -> dropout -> FC -> (N, S, S, B*5+C).

    Returns raw values; ``YoloV1`` applies the activations of the output layout.
    """

    def __init__(self, in_channels: int, spec: YoloSpec) -> None:
        super().__init__()
        s, c = spec.S, spec.head_channels
        self.S, self.cell_dim = s, spec.cell_dim
        self.conv = nn.Sequential(nn.Conv2d(in_channels, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                                  nn.LeakyReLU(0.1, inplace=True), nn.AdaptiveAvgPool2d((s, s)))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, spec.hidden), nn.LeakyReLU(0.1, inplace=True),
                                nn.Dropout(spec.dropout), nn.Linear(spec.hidden, s * s * spec.cell_dim))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(feats)).view(-1, self.S, self.S, self.cell_dim)


class YoloV1ConvHead(nn.Module):
    """Convolutional alternative to the paper's head: conv -> S x S pooling -> 1x1 conv -> (N, S, S, B*5+C).

    Every cell is predicted by the same weights from its own pooled features (no FC layers). From
    scratch on 2 CPU cores it learned ~10x faster than the FC head (bench/bench_yolo_quality.py notes).
    Returns raw values, like ``YoloV1Head``.
    """

    def __init__(self, in_channels: int, spec: YoloSpec) -> None:
        super().__init__()
        s, c = spec.S, spec.head_channels
        self.conv = nn.Sequential(nn.Conv2d(in_channels, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                                  nn.LeakyReLU(0.1, inplace=True), nn.AdaptiveAvgPool2d((s, s)))
        self.out = nn.Conv2d(c, spec.cell_dim, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv(feats)).permute(0, 2, 3, 1)  # (N, D, S, S) -> (N, S, S, D): row i, column j


class YoloV1(nn.Module):
    """(N, 3, input_size, input_size) -> (N, S, S, B*5+C) in the layout of the module docstring."""

    def __init__(self, backbone: nn.Module, spec: YoloSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        head = YoloV1Head if spec.head == "fc" else YoloV1ConvHead
        self.head = head(backbone.out_channels, spec)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raw = self.head(self.backbone(images))
        b5 = self.spec.B * 5
        boxes = torch.sigmoid(raw[..., :b5])  # x, y, sqrt_w, sqrt_h, conf: all in [0, 1]
        cls = raw[..., b5:]
        if not self.spec.class_logits:
            cls = torch.softmax(cls, dim=-1)
        return torch.cat([boxes, cls], dim=-1)


def _resnet18_backbone(spec: YoloSpec, notices: list[str]) -> ResNet18Backbone:
    net = resnet18(weights=None)
    if not spec.pretrained:
        notices.append("resnet18: training from scratch (pretrained=False)")
        return ResNet18Backbone(net)
    local = local_weights_file(ResNet18_Weights.DEFAULT.url)
    if local is None:
        notices.append(f"resnet18: no local ImageNet weights in {hub_checkpoint_dir()}; training from scratch")
        return ResNet18Backbone(net)
    try:
        state = torch.load(local, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        notices.append(f"resnet18: loaded ImageNet weights from {local}")
    except Exception as e:  # corrupt, truncated or mismatched file: any failure falls back to scratch
        net = resnet18(weights=None)
        notices.append(f"resnet18: could not load {local} ({e}); training from scratch")
    return ResNet18Backbone(net)


def build_yolo_v1(spec: YoloSpec) -> tuple[YoloV1, list[str]]:
    """Build the model; returns it and notices for the user (weights, the one-object-per-cell limit)."""
    spec.validate()
    notices: list[str] = []
    if spec.backbone == "tiny":
        backbone: nn.Module = TinyYoloBackbone()
        notices.append("tiny backbone: training from scratch (no pretrained weights exist for it)")
    else:
        backbone = _resnet18_backbone(spec, notices)
    notices.append(f"YOLOv1 learns at most one object per grid cell ({spec.S}x{spec.S} cells); "
                   "ground-truth boxes whose centres share a cell are dropped from training")
    return YoloV1(backbone, spec), notices
