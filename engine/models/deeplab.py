"""DeepLabV3 (torchvision) for semantic segmentation, wrapped to the Task conventions.

Backbones: ``tiny`` — a small residual CNN trained from scratch (16-32-64-96 channels, output
stride 8: the last two stages are dilated instead of strided) under torchvision's ``DeepLabV3``
with an ASPP head of 64 channels and atrous rates 3, 6, 9 (fits the small feature maps of CPU
runs); ``mobilenet_v3_large`` (output stride 16) and ``resnet50`` (output stride 8) — torchvision's
``deeplabv3_*`` builders with ``weights=None``. Pretrained weights are loaded only from files
already in the torch hub cache (the COCO/VOC DeepLabV3 weights without the last classifier layer,
else the ImageNet backbone); otherwise a notice says the model trains from scratch. With loaded
weights, the backbone's BatchNorm layers are held in eval (statistics frozen). No auxiliary
classifier.

``DeeplabModel(images, targets)``: ``images`` a list of (3, H, W) float tensors in [0, 1] of any
sizes. Each is resized (bilinear) so its short side is ``spec.min_size`` with the long side capped
at ``spec.max_size``, normalised with the ImageNet mean/std and zero-padded (bottom/right) to a
batch size divisible by 16. Train mode: ``targets[i]["mask"]`` (H, W) int64 class map in original
pixels (0 = background, 255 = ignore), resized nearest and padded with 255; returns
``{"loss_ce": cross-entropy over non-ignored pixels}`` at the model input resolution. Eval mode:
returns ``[{"probs": (C, H, W) float32}]`` per image in its ORIGINAL pixels: the logits of the
image's unpadded area are upsampled bilinearly (align_corners=False) to (H, W), then softmaxed.

The ASPP image-pooling branch normalises a 1x1 map, so its BatchNorm cannot train on a batch of
one: for a single-image training batch that layer is held in eval for the step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights, segmentation
from torchvision.models.segmentation.deeplabv3 import ASPP, ASPPPooling, DeepLabV3

from engine.config import strict_from_dict

BACKBONES = ("tiny", "mobilenet_v3_large", "resnet50")
IGNORE_INDEX = 255
SIZE_DIVISIBLE = 16
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DeeplabSpec:
    """Everything needed to rebuild a segmenter; saved next to its weights.

    ``min_size``: the model input's short side in pixels; ``max_size``: cap on its long side.
    """

    backbone: str = "tiny"
    num_classes: int = 4  # including background (label 0)
    min_size: int = 160
    max_size: int = 320
    pretrained: bool = True  # use local pretrained weights when present

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> DeeplabSpec:
        """Inverse of ``to_dict``; missing keys take the defaults, unknown keys raise ValueError."""
        return strict_from_dict(DeeplabSpec, d, "DeepLab spec keys")

    def validate(self) -> DeeplabSpec:
        """Raise ValueError (one line) naming the first field that cannot work; returns self."""
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown deeplab backbone {self.backbone!r}; expected one of {', '.join(BACKBONES)}")
        if int(self.num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {self.num_classes}")
        if not 16 <= int(self.min_size) <= int(self.max_size) <= 8192:
            raise ValueError(f"need 16 <= min_size <= max_size <= 8192, got min_size {self.min_size}, "
                             f"max_size {self.max_size}")
        return self


def _conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, identity or 1x1 projection shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, stride, dilation), nn.ReLU(inplace=True),
                                  *_conv_bn(cout, cout, 1, dilation))
        self.short = (nn.Identity() if cin == cout and stride == 1 else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class TinyDilatedBackbone(nn.Module):
    """(B, 3, H, W) normalised image -> ``{"out": (B, 96, H/8, W/8)}`` (output stride 8)."""

    out_channels = 96

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 16, 2), nn.ReLU(inplace=True))  # /2
        self.layers = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 64, 2),  # /4, /8
                                    BasicBlock(64, 96, 1, 2), BasicBlock(96, 96, 1, 4))  # dilated, /8

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.layers(self.stem(x))}


def _tiny_deeplab(num_classes: int) -> DeepLabV3:
    width = 64
    head = nn.Sequential(ASPP(TinyDilatedBackbone.out_channels, (3, 6, 9), width),
                         nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, num_classes, 1))
    return DeepLabV3(TinyDilatedBackbone(), head, None)


class DeeplabModel(nn.Module):
    """The task's module: resize/normalise/pad around a torchvision ``DeepLabV3`` (see the module docstring)."""

    def __init__(self, net: DeepLabV3, spec: DeeplabSpec, frozen_norms: bool = False) -> None:
        super().__init__()
        self.net = net
        self.min_size, self.max_size = int(spec.min_size), int(spec.max_size)
        self.num_classes = int(spec.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(3, 1, 1), persistent=False)
        self._pool_norms = [m[2] for m in net.modules() if isinstance(m, ASPPPooling)]
        self._frozen = ([m for m in net.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
                        if frozen_norms else [])

    def train(self, mode: bool = True) -> DeeplabModel:
        super().train(mode)
        for m in self._frozen:  # pretrained backbone: BatchNorm statistics stay frozen
            m.eval()
        return self

    def input_size(self, h: int, w: int) -> tuple[int, int]:
        """(h, w) of an (H, W) image inside the model: short side min_size, long side <= max_size."""
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _batch(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        sizes = [self.input_size(*im.shape[-2:]) for im in images]
        hp = math.ceil(max(s[0] for s in sizes) / SIZE_DIVISIBLE) * SIZE_DIVISIBLE
        wp = math.ceil(max(s[1] for s in sizes) / SIZE_DIVISIBLE) * SIZE_DIVISIBLE
        x = images[0].new_zeros((len(images), 3, hp, wp))
        for i, (im, (h, w)) in enumerate(zip(images, sizes)):
            im = F.interpolate(im[None].float(), size=(h, w), mode="bilinear", align_corners=False,
                               antialias=True)[0]
            x[i, :, :h, :w] = (im - self.mean) / self.std
        return x, sizes

    @contextlib.contextmanager
    def _single_image_pool_norms(self, batch: int) -> Iterator[None]:
        """Hold the ASPP pooling BatchNorm in eval for a training batch of one (it cannot normalise 1 value)."""
        hold = [m for m in self._pool_norms if m.training] if batch == 1 else []
        for m in hold:
            m.eval()
        try:
            yield
        finally:
            for m in hold:
                m.train()

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None
                ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        x, sizes = self._batch(images)
        with self._single_image_pool_norms(len(images) if self.training else 0):
            logits = self.net(x)["out"]  # (B, C, Hp, Wp): torchvision upsamples to the input size
        if self.training:
            if targets is None:
                raise ValueError("DeeplabModel needs targets in train mode")
            y = torch.full(logits.shape[:1] + logits.shape[2:], IGNORE_INDEX, dtype=torch.long, device=x.device)
            for i, (t, (h, w)) in enumerate(zip(targets, sizes)):
                m = t["mask"].as_subclass(torch.Tensor).to(x.device)
                y[i, :h, :w] = F.interpolate(m[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="sum")
            valid = (y != IGNORE_INDEX).sum().clamp(min=1)
            return {"loss_ce": loss / valid}
        out = []
        for i, (im, (h, w)) in enumerate(zip(images, sizes)):
            lg = F.interpolate(logits[i:i + 1, :, :h, :w], size=tuple(im.shape[-2:]), mode="bilinear",
                               align_corners=False)
            out.append({"probs": torch.softmax(lg[0].float(), 0)})
        return out


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _local(url: str) -> Path | None:
    p = hub_checkpoint_dir() / url.rsplit("/", 1)[-1]
    return p if p.exists() else None


def _load_pretrained(net: DeepLabV3, backbone: str) -> tuple[bool, str]:
    """Load local weights into ``net`` if the hub cache has them: (loaded, notice)."""
    full, base = {
        "mobilenet_v3_large": (segmentation.DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT,
                               MobileNet_V3_Large_Weights.IMAGENET1K_V1),
        "resnet50": (segmentation.DeepLabV3_ResNet50_Weights.DEFAULT, ResNet50_Weights.IMAGENET1K_V1),
    }[backbone]
    own = net.state_dict()
    path = _local(full.url)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items()  # the last layer's 21 VOC classes are never ours
                 if k in own and own[k].shape == v.shape and not k.startswith("classifier.4.")}
    elif (path := _local(base.url)) is not None:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "backbone."
        state = {}
        for k, v in raw.items():  # resnet: layer1.* ; mobilenet: features.N.* -> backbone.N.*
            key = prefix + (k[len("features."):] if k.startswith("features.") else k)
            if key in own and own[key].shape == v.shape:
                state[key] = v
    else:
        return False, (f"{backbone}: no local pretrained weights found in {hub_checkpoint_dir()}; "
                       "training from scratch")
    net.load_state_dict(state, strict=False)
    return True, f"loaded pretrained weights from {path} ({len(own) - len(state)} tensors trained anew)"


def build_deeplab(spec: DeeplabSpec) -> tuple[DeeplabModel, list[str]]:
    """Build the model; returns it and notices for the user (e.g. 'training from scratch')."""
    spec.validate()
    if spec.backbone == "tiny":
        return DeeplabModel(_tiny_deeplab(spec.num_classes), spec), [
            "tiny backbone: training from scratch (no pretrained weights exist for it)"]
    builder = {"mobilenet_v3_large": segmentation.deeplabv3_mobilenet_v3_large,
               "resnet50": segmentation.deeplabv3_resnet50}[spec.backbone]
    net = builder(weights=None, weights_backbone=None, num_classes=spec.num_classes, aux_loss=False)
    loaded, notice = _load_pretrained(net, spec.backbone) if spec.pretrained else (
        False, f"{spec.backbone}: pretrained weights off; training from scratch")
    return DeeplabModel(net, spec, frozen_norms=loaded), [notice]
