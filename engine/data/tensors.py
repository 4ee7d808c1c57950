"""THE image -> tensor conversion of the engine (torchvision ``v2.functional``), used by every task,
the X-ray and the internals: (H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F


def image_tensor(image: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1] on ``device``; read-only inputs are copied."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    arr = image if image.flags.writeable and image.flags.c_contiguous else np.array(image, copy=True, order="C")
    x = F.to_dtype(F.to_image(arr), torch.float32, scale=True).as_subclass(torch.Tensor)
    return x if device is None else x.to(device)
