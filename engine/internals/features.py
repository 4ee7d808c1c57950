"""Feature maps: a chosen layer's output for one image, with where each cell looks in ORIGINAL pixels.

``feature_map(model, image, layer)`` runs one eval forward (``engine.internals.run``) and returns a
``FeatureMap``: ``feature`` (C, h, w) float32 — exactly the layer's output (a forward hook's, batch of
one; an FPN-style layer returning several maps gives its first), channels sorted by mean activation,
highest first (``channel_order[k]`` is the layer's own channel index of row k). The layer's stride and
theoretical receptive field (``engine.internals.receptive``) are in model-input pixels; ``cell_box(i, j)``
and ``cell_centers`` map a cell to ORIGINAL image pixels through the model's resize (``frame``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.internals.adapters import Frame
from engine.internals.probe import LayerInfo
from engine.internals.receptive import cell_box, cell_centers, cell_step
from engine.internals.run import Probed, probed_forward


@dataclass(frozen=True)
class FeatureMap:
    """One layer's feature map for one image (see the module docstring)."""

    layer: LayerInfo
    feature: np.ndarray  # (C, h, w) float32, channels by mean activation, descending
    channel_order: np.ndarray  # (C,) int64: row k of ``feature`` is the layer's channel channel_order[k]
    frame: Frame

    @property
    def channel_mean(self) -> np.ndarray:
        """(C,) float32 mean activation of each row of ``feature`` (descending)."""
        return self.feature.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    @property
    def stride(self) -> np.ndarray:
        """(2,) float32 (y, x) model-input pixels between neighbouring cells."""
        return np.asarray(self.layer.stride, np.float32)

    @property
    def receptive_field(self) -> np.ndarray:
        """(2,) float32 (y, x) theoretical receptive field in model-input pixels."""
        return np.asarray(self.layer.receptive_field, np.float32)

    def cell_box(self, i: int, j: int) -> np.ndarray:
        """(4,) float32 xyxy ORIGINAL pixels: the receptive field of cell (row i, column j)."""
        return cell_box(self.layer, self.frame, i, j)

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres in ORIGINAL pixels: xs (w,), ys (h,) float32."""
        return cell_centers(self.layer, self.frame, self.feature.shape[1], self.feature.shape[2])

    def cell_step(self) -> np.ndarray:
        """(2,) float32 (x, y) ORIGINAL pixels between neighbouring cells."""
        return cell_step(self.layer, self.frame)


def sorted_channels(act: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(C, h, w) activation -> (the same, channels by mean activation descending, float32; the order (C,))."""
    a = act.detach().to(torch.float32).cpu().numpy()
    order = np.argsort(-a.mean(axis=(1, 2), dtype=np.float64), kind="stable").astype(np.int64)
    return np.ascontiguousarray(a[order]), order


def from_probed(p: Probed) -> FeatureMap:
    """The FeatureMap of a probed forward's chosen layer (its first 4-D output, batch item 0)."""
    feature, order = sorted_channels(p.tensors[0][0][0])
    return FeatureMap(p.layer, feature, order, p.frame)


def feature_map(model: nn.Module, image: np.ndarray, layer: str | None = None) -> FeatureMap:
    """``layer``'s feature map for ``image`` (H, W, 3) uint8 RGB; default layer: ``Probe.default_layer``."""
    return from_probed(probed_forward(model, image, layer, grad=False))
