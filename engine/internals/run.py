"""One probed eval forward of one image: the shared first step of feature maps and Grad-CAM.

``probed_forward(model, image, layer, grad)`` puts every module in eval mode (restored afterwards), runs
the model the way its family takes an image (``adapters.forward``) under a ``Probe`` of its trunk, and
returns the ``Probed`` record: the layer list, the chosen layer (default: ``Probe.default_layer``) with
its output tensors and their grids, the model's outputs and the input frame. With ``grad`` the image
tensor requires grad, so every activation is part of an autograd graph even when the weights are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.tensors import image_tensor
from engine.internals.adapters import (
    Family,
    Frame,
    extras,
    family,
    forward,
    frame,
    model_device,
    trunk_name,
)
from engine.internals.probe import InternalsError, LayerInfo, Probe
from engine.internals.trace import Grid

__all__ = ["InternalsError", "Probed", "layer_error", "probed_forward"]


@dataclass
class Probed:
    """What one probed forward left: see the module docstring. ``tensors``: the chosen layer's 4-D
    outputs (one, or one per FPN level) with their grids, batch of one."""

    model: nn.Module
    family: Family
    probe: Probe
    outputs: Any
    frame: Frame
    layers: list[LayerInfo]
    layer: LayerInfo
    tensors: list[tuple[torch.Tensor, Grid | None]]


def _run(model: nn.Module, fam: Family, x: torch.Tensor, capture: list[str], grad: bool) -> tuple[Probe, Any]:
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with (torch.enable_grad() if grad else torch.no_grad(),
              Probe(model, trunk_name(model), capture, extras(fam)) as probe):
            outputs = forward(model, fam, x)
    finally:
        for m, mode in modes.items():
            m.training = mode
    return probe, outputs


def layer_error(model: nn.Module, layer: str) -> InternalsError:
    names = [n for n, _ in model.named_modules(prefix="") if n]
    trunk = trunk_name(model)
    shown = [n for n in names if not trunk or n == trunk or n.startswith(trunk + ".")]
    return InternalsError(f"unknown layer {layer!r}: pick one of the model's {len(shown)} layers, e.g. "
                          f"{', '.join(shown[:4])} ... (listed under 'layers' in the output)")


def probed_forward(model: nn.Module, image: np.ndarray, layer: str | None = None, grad: bool = False) -> Probed:
    """See the module docstring; ``image`` (H, W, 3) uint8 RGB; InternalsError for an unknown layer or
    a layer without a spatial output."""
    fam = family(model)
    x = image_tensor(image, model_device(model))
    if grad:
        x.requires_grad_(True)
    trunk = trunk_name(model)
    in_trunk = layer is not None and (not trunk or layer == trunk or layer.startswith(trunk + "."))
    if layer is not None and (not in_trunk or layer not in dict(model.named_modules())):
        raise layer_error(model, layer)
    probe, outputs = _run(model, fam, x, [layer] if layer else [], grad)
    name = layer or probe.default_layer()
    if not probe.tensors(name):  # a default leaf layer (plain nets) is kept only when captured
        probe, outputs = _run(model, fam, x, [name], grad)
    layers = probe.layers()
    info = next(i for i in layers if i.name == name)
    tensors = probe.tensors(name)
    if not tensors or info.stride is None:
        shape = "it did not run" if info.out_shape is None else f"its output is {info.out_shape}"
        raise InternalsError(f"layer {name!r} has no (C, h, w) feature map ({shape}); pick a convolutional layer")
    h, w = image.shape[:2]
    return Probed(model, fam, probe, outputs, frame(model, fam, probe, (int(h), int(w))), layers, info, tensors)
