"""Backbones with FPN for the detectors.

``tiny``: a 5-stage CNN (16-32-64-128-128 channels, strides 2..32) with an FPN of 64 channels on
strides 4, 8, 16, 32 plus a max-pool level (64) — trains on 2 CPU cores in minutes.
``norm`` picks the normalisation: ``bn`` (trainable BatchNorm), ``frozen`` (torchvision's
FrozenBatchNorm2d) or ``gn`` (GroupNorm with 8 groups).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

NORMS = ("bn", "frozen", "gn")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "frozen":
        return FrozenBatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def _block(cin: int, cout: int, stride: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), make_norm(norm, cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), make_norm(norm, cout), nn.ReLU(inplace=True),
    )


class TinyFPNBackbone(nn.Module):
    """Input (B, 3, H, W) normalised image; output OrderedDict of 5 maps with 64 channels.

    Keys '0'..'3' have strides 4, 8, 16, 32; 'pool' has stride 64.
    """

    strides = (4, 8, 16, 32, 64)

    def __init__(self, norm: str = "bn", out_channels: int = 64) -> None:
        super().__init__()
        widths = (16, 32, 64, 128, 128)
        self.stem = _block(3, widths[0], 2, norm)
        self.stages = nn.ModuleList(_block(widths[i], widths[i + 1], 2, norm) for i in range(4))
        self.fpn = FeaturePyramidNetwork(list(widths[1:]), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats[str(i)] = x
        return self.fpn(feats)


def tiny_anchor_sizes() -> tuple[tuple[int, ...], ...]:
    """Two anchor sizes per FPN level (a factor sqrt(2) apart) of the tiny backbone, for objects of 8-270 px.

    With one size per octave only ~23 % of the demo's objects had an anchor at IoU >= 0.7 (the RPN's
    positive threshold); two per octave raise that to ~70 % and the demo's mAP@.5 after a fixed
    CPU budget went up accordingly (bench/bench_train_quality.py)."""
    return ((12, 17), (24, 34), (48, 68), (96, 136), (192, 272))
