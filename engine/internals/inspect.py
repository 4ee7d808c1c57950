"""Feature map + receptive field + Grad-CAM of one image from ONE forward: what the panel and the CLI show.

``inspect(model, image, layer, target)`` -> ``Internals``; ``Internals.to_arrays()`` is the documented
array layout of ``anchorlab internals`` (docs/internals.md): pairs named like sizes — ``stride``,
``receptive_field``, ``image_size``, ``input_size`` — are (y, x) / (h, w); points and steps in the image
are (x, y); boxes are xyxy ORIGINAL pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from engine.internals.features import FeatureMap, from_probed
from engine.internals.gradcam import GradCam, explain
from engine.internals.probe import LayerInfo
from engine.internals.run import probed_forward
from engine.internals.targets import Target


def _pairs(values: list[tuple[float, float] | None]) -> np.ndarray:
    return np.asarray([v if v is not None else (np.nan, np.nan) for v in values], np.float32).reshape(-1, 2)


def _strings(values: list[str]) -> np.ndarray:
    return np.asarray(values, dtype=str) if values else np.zeros(0, "<U1")


@dataclass(frozen=True)
class Internals:
    """One image through one model: the trunk's layers, the chosen layer's feature map, its Grad-CAM."""

    family: str  # frcnn | yolo | segmentation | classification
    layers: list[LayerInfo]
    features: FeatureMap
    gradcam: GradCam | None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The npz arrays (keys, shapes and frames: docs/internals.md)."""
        f = self.features
        frame = f.frame
        xs, ys = f.cell_centers()
        a = {
            "layers": _strings([i.name for i in self.layers]),
            "layer_types": _strings([i.type for i in self.layers]),
            "layer_stride": _pairs([i.stride for i in self.layers]),
            "layer_receptive_field": _pairs([i.receptive_field for i in self.layers]),
            "layer": np.asarray(f.layer.name),
            "feature": f.feature,
            "channel_order": f.channel_order,
            "channel_mean": f.channel_mean,
            "stride": f.stride,
            "receptive_field": f.receptive_field,
            "rf_box0": f.cell_box(0, 0),
            "cell_center0": np.array([xs[0], ys[0]], np.float32),
            "cell_step": f.cell_step(),
            "image_size": np.asarray(frame.image_hw, np.int32),
            "input_size": np.asarray(frame.input_hw, np.int32),
            "scale": np.asarray(frame.scale, np.float32),
        }
        if self.gradcam is not None:
            g = self.gradcam
            a.update(gradcam=g.cam, target_box=np.asarray(g.target_box, np.float32).reshape(4),
                     target_label=np.asarray(g.target_label, np.int64),
                     target_score=np.asarray(g.target_score, np.float32),
                     target_index=np.asarray(g.target_index, np.int64))
        return a


def inspect(model: nn.Module, image: np.ndarray, layer: str | None = None, target: Target | int | None = None,
            gradcam: bool = True) -> Internals:
    """Everything of ``Internals`` for ``image`` (H, W, 3) uint8 RGB from one eval forward; ``layer``
    default: ``Probe.default_layer``; ``target``: ``engine.internals.targets`` (default: the top detection,
    the highest tag, the most frequent predicted class)."""
    p = probed_forward(model, image, layer, grad=gradcam)
    features = from_probed(p)
    return Internals(p.family, p.layers, features, explain(p, target) if gradcam else None)
