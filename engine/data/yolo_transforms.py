"""The YOLOv1 paper's training augmentation (torchvision.transforms.v2 on tv_tensors, boxes follow).

"random scaling and translations of up to 20% of the original image size ... randomly adjust the
exposure and saturation of the image by up to a factor of 1.5 in the HSV color space" (Redmon et al.
2016, section 2.2), plus the horizontal flip Darknet applies. Each step is switched by the usual
``TrainConfig`` field: ``augment_flip`` (p = 0.5), ``augment_scale`` (scale 0.8-1.2 and shift up to
20 % of each side, on the same canvas; uncovered pixels are grey 114), ``augment_crop`` (the shared
random crop of ``engine.data.transforms``, off by default) and ``augment_color`` (HSV exposure and
saturation, each by a factor in [1/1.5, 1.5]). Boxes are clamped to the image and boxes under 2 px
are dropped with their labels. ``overfit_one_batch`` turns everything off.

Pipelines take and return ``(image, target)``: image a (3, H, W) uint8 ``tv_tensors.Image``, target
the dataset's dict (``boxes`` xyxy image pixels, ``labels``).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.config import TrainConfig
from engine.data.dataset import Transform
from engine.data.transforms import Pipeline, RandomCropFraction

JITTER = 0.2  # scale in [1 - JITTER, 1 + JITTER], shift up to JITTER of each side (paper: 20 %)
HSV_FACTOR = 1.5  # exposure and saturation scaled by a factor in [1 / HSV_FACTOR, HSV_FACTOR] (paper: 1.5)


def scale_hsv(image: torch.Tensor, exposure: float, saturation: float) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> the same image with HSV value * ``exposure`` and saturation *
    ``saturation`` (both clipped to [0, 1]), hue unchanged.

    For a fixed hue each channel is ``V * (1 - S * k)`` with ``k = (max - c) / (max - min)``, so the
    new channel is ``V' * (1 - S' * k)`` — no explicit hue round trip.
    """
    mx = image.amax(0, keepdim=True)
    mn = image.amin(0, keepdim=True)
    spread = mx - mn
    sat = torch.where(mx > 0, spread / mx.clamp(min=1e-12), torch.zeros_like(mx))
    k = torch.where(spread > 0, (mx - image) / spread.clamp(min=1e-12), torch.zeros_like(image))
    val = (mx * exposure).clamp(0, 1)
    s2 = (sat * saturation).clamp(0, 1)
    return val * (1 - s2 * k)


def _factor(limit: float) -> float:
    """A factor in [1 / limit, limit]: uniform in [1, limit], inverted half of the time (Darknet's rand_scale)."""
    f = float(torch.empty(()).uniform_(1.0, limit))
    return f if torch.rand(()) < 0.5 else 1.0 / f


class RandomHSV:
    """Scale HSV exposure (value) and saturation by random factors in [1 / limit, limit]; boxes unchanged."""

    def __init__(self, exposure: float = HSV_FACTOR, saturation: float = HSV_FACTOR) -> None:
        self.exposure = exposure
        self.saturation = saturation

    def __call__(self, image: tv_tensors.Image, target: dict) -> tuple[tv_tensors.Image, dict]:
        e, s = _factor(self.exposure), _factor(self.saturation)
        x = image.as_subclass(torch.Tensor)
        was_uint8 = x.dtype == torch.uint8
        x = x.float() / 255.0 if was_uint8 else x.float()
        y = scale_hsv(x, e, s)
        y = (y * 255.0).round().to(torch.uint8) if was_uint8 else y
        return tv_tensors.wrap(y, like=image), target


def yolo_train_transform(cfg: TrainConfig, jitter: float = JITTER, hsv: float = HSV_FACTOR) -> Pipeline | None:
    """The paper's augmentation for ``cfg`` (see the module docstring); None when every step is off."""
    if cfg.overfit_one_batch:
        return None
    steps: list[Transform] = []
    if cfg.augment_flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if cfg.augment_scale and jitter > 0:
        steps.append(v2.RandomAffine(degrees=0.0, translate=(jitter, jitter), scale=(1 - jitter, 1 + jitter),
                                     fill={tv_tensors.Image: 114, "others": 0}))
    if cfg.augment_crop:
        steps.append(RandomCropFraction(0.6, 0.5))
    if cfg.augment_color and hsv > 1:
        steps.append(RandomHSV(hsv, hsv))
    if not steps:
        return None
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2.0)]
    return Pipeline(steps)
