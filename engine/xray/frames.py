"""Mapping between the detector's input frame and original image pixels.

torchvision's ``GeneralizedRCNNTransform`` resizes an (H, W) image to ``input_size`` (h, w) and pads
it at the bottom/right to a multiple of 32. Boxes in the model frame go back to the original image
with ``torchvision.models.detection.transform.resize_boxes(boxes, input_size, image_size)``: a float32
scale per axis, ``original / input`` (not the padded size). Everything here uses exactly that math,
so a box mapped here is bit-identical to what the model's own ``postprocess`` returns.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

Size = tuple[int, int]  # (height, width)


def scale_xy(input_size: Size, image_size: Size) -> torch.Tensor:
    """(2,) float32 tensor ``(sx, sy)`` = original / input per axis, as torchvision computes it."""
    ry = torch.tensor(image_size[0], dtype=torch.float32) / torch.tensor(input_size[0], dtype=torch.float32)
    rx = torch.tensor(image_size[1], dtype=torch.float32) / torch.tensor(input_size[1], dtype=torch.float32)
    return torch.stack([rx, ry])


def boxes_to_original(boxes: torch.Tensor, input_size: Size, image_size: Size) -> np.ndarray:
    """(N, 4) xyxy in the model's input frame -> (N, 4) float32 xyxy in original image pixels."""
    boxes = boxes.detach().reshape(-1, 4).to(torch.float32)
    return resize_boxes(boxes, list(input_size), list(image_size)).cpu().numpy().astype(np.float32, copy=False)


def boxes_to_input(boxes: torch.Tensor, image_size: Size, input_size: Size) -> torch.Tensor:
    """(N, 4) xyxy original pixels -> the model frame, as the transform resizes training targets."""
    return resize_boxes(boxes.reshape(-1, 4).to(torch.float32), list(image_size), list(input_size))


def points_to_original(points: torch.Tensor, input_size: Size, image_size: Size) -> np.ndarray:
    """(N, 2) (x, y) in the input frame -> (N, 2) float32 original pixels (same per-axis scale)."""
    s = scale_xy(input_size, image_size).to(points.device)
    return (points.detach().to(torch.float32) * s).cpu().numpy()
