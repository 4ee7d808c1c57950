"""Stride and theoretical receptive field of the named layers of a model, and where a cell looks.

Computed analytically (``engine.internals.trace``): one forward of an example input under a
``TorchFunctionMode`` that follows every convolution, pooling, resize and combining op in execution order,
with ``RF_l = RF_(l-1) + (k - 1) * d * jump_(l-1)`` and ``jump_l = jump_(l-1) * s`` per axis; forward hooks
name the modules and record their output shapes. Branches (residual shortcuts, FPN top-down paths,
concatenations) take the widest field of the paths that meet, so the numbers hold for any module graph,
not only a chain. Values are (y, x) in pixels of the model INPUT (the resized image the network sees);
``cell_box`` maps a cell's field to ORIGINAL image pixels with the model's resize (``adapters.Frame``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.tensors import image_tensor
from engine.internals.adapters import Frame, dummy_size, extras, family, forward, model_device, trunk_name
from engine.internals.probe import LayerInfo, Probe


def _eval_forward(model: nn.Module, run: Any) -> Any:
    """``run()`` with every module in eval mode and without autograd; the train flags are restored."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            return run()
    finally:
        for m, mode in modes.items():
            m.training = mode


def receptive_fields(module: nn.Module, example: torch.Tensor) -> dict[str, LayerInfo]:
    """``LayerInfo`` of every submodule of ``module`` after one eval forward of ``example`` (N, C, H, W);
    strides and fields in pixels of ``example``."""
    with Probe(module) as probe:
        _eval_forward(module, lambda: module(example))
    return {i.name: i for i in probe.layers()}


def layer_tree(model: nn.Module, image: np.ndarray | None = None) -> list[LayerInfo]:
    """The trunk's modules (name, type, out_shape, stride, receptive field) for an (H, W, 3) uint8 image,
    or for a blank image of the size the model works at; tree order, parents before children."""
    fam = family(model)
    if image is None:
        image = np.zeros((*dummy_size(model, fam), 3), np.uint8)
    x = image_tensor(image, model_device(model))
    with Probe(model, trunk_name(model), extras=extras(fam)) as probe:
        _eval_forward(model, lambda: forward(model, fam, x))
    return probe.layers()


def cell_centers(info: LayerInfo, frame: Frame, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the cells of an (h, w) feature map in ORIGINAL pixels: xs (w,), ys (h,) float32.
    Cell (i, j) of ``info``'s output looks at input pixel ``center0 + (i, j) * stride`` (y, x)."""
    if info.stride is None or info.center0 is None:
        raise ValueError(f"layer {info.name!r} has no spatial grid (its output is {info.out_shape})")
    sx, sy = frame.scale
    xs = (info.center0[1] + np.arange(w) * info.stride[1]) * sx
    ys = (info.center0[0] + np.arange(h) * info.stride[0]) * sy
    return xs.astype(np.float32), ys.astype(np.float32)


def cell_box(info: LayerInfo, frame: Frame, i: int, j: int) -> np.ndarray:
    """(4,) float32 xyxy in ORIGINAL pixels: the theoretical receptive field of cell (row i, column j).
    Not clipped: near the border the field reaches into the padding, beyond the image. The centre of the
    box is the cell's centre plus ``rf_offset``."""
    xs, ys = cell_centers(info, frame, i + 1, j + 1)
    sx, sy = frame.scale
    cx, cy = xs[j] + info.rf_offset[1] * sx, ys[i] + info.rf_offset[0] * sy
    rx, ry = info.receptive_field[1] * sx / 2, info.receptive_field[0] * sy / 2
    return np.array([cx - rx, cy - ry, cx + rx, cy + ry], np.float32)


def cell_step(info: LayerInfo, frame: Frame) -> np.ndarray:
    """(2,) float32 (x, y): ORIGINAL pixels between neighbouring cells (the stride step on the image)."""
    if info.stride is None:
        raise ValueError(f"layer {info.name!r} has no spatial grid")
    sx, sy = frame.scale
    return np.array([info.stride[1] * sx, info.stride[0] * sy], np.float32)
