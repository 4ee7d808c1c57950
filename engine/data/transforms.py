"""Training augmentations (torchvision.transforms.v2) that keep boxes and masks consistent.

Each step is switched by a ``TrainConfig`` field: ``augment_flip`` (horizontal flip, p=0.5),
``augment_scale`` (scale jitter: the content is scaled by 0.75-1.25 about the centre on the same
canvas, so objects change size relative to the model's fixed input size), ``augment_crop``
(a random crop keeping 60-100 % of each side) and ``augment_color`` (brightness, contrast,
saturation). Boxes are clamped to the image and boxes under 2 px are dropped together with
their labels and masks. ``overfit_one_batch`` turns every augmentation off.

Pipelines take and return ``(image, target)``: image a (3, H, W) uint8 ``tv_tensors.Image``,
target the dataset's dict (``boxes`` xyxy image pixels, ``labels``, optional ``masks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from engine.config import TrainConfig
from engine.data.dataset import DetectionDataset, Transform, make_label_map
from engine.project.store import Store


class RandomCropFraction:
    """Crop a random window whose sides are ``min_frac``..1 of the image's; p = probability."""

    def __init__(self, min_frac: float = 0.6, p: float = 0.5) -> None:
        self.min_frac = min_frac
        self.p = p

    def __call__(self, image: tv_tensors.Image, target: dict) -> tuple[tv_tensors.Image, dict]:
        if torch.rand(()) >= self.p:
            return image, target
        h, w = image.shape[-2:]
        ch = int(h * float(torch.empty(()).uniform_(self.min_frac, 1.0)))
        cw = int(w * float(torch.empty(()).uniform_(self.min_frac, 1.0)))
        top = int(torch.randint(0, h - ch + 1, ()))
        left = int(torch.randint(0, w - cw + 1, ()))
        image = F.crop(image, top, left, ch, cw)
        target = dict(target)
        for key in ("boxes", "masks"):
            if key in target:
                target[key] = F.crop(target[key], top, left, ch, cw)
        return image, target


class Pipeline:
    """Apply ``(image, target) -> (image, target)`` steps in order."""

    def __init__(self, steps: list[Transform]) -> None:
        self.steps = steps

    def __call__(self, image: tv_tensors.Image, target: dict) -> tuple[tv_tensors.Image, dict]:
        for step in self.steps:
            image, target = step(image, target)
        return image, target

    def __len__(self) -> int:
        return len(self.steps)


def train_transform(cfg: TrainConfig) -> Pipeline | None:
    """The augmentation pipeline for ``cfg``; None when every augmentation is off."""
    if cfg.overfit_one_batch:
        return None
    steps: list[Transform] = []
    if cfg.augment_flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if cfg.augment_scale:
        steps.append(v2.RandomAffine(degrees=0.0, scale=(0.75, 1.25), fill={tv_tensors.Image: 114, "others": 0}))
    if cfg.augment_crop:
        steps.append(RandomCropFraction(0.6, 0.5))
    if cfg.augment_color:
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3))
    if not steps:
        return None
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2.0)]
    return Pipeline(steps)


def augment_preview(project: str | Path, config: TrainConfig | dict, n: int = 6,
                    seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` augmented training samples for a preview.

    Returns ``[(image (H, W, 3) uint8 RGB, boxes (N, 4) float32 xyxy in that image's pixels,
    category_ids (N,) int64 — project category ids, not model labels)]``. Draws from the first
    ``max(n, 64)`` images of ``config.train_split``; ``seed`` fixes the draw (None = fresh).
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    with Store(project) as store:
        label_map = make_label_map(store)
        ds = DetectionDataset.from_store(store, cfg.train_split, label_map, train_transform(cfg),
                                         max_images=max(n, 64))
    if len(ds) == 0:
        return []
    inverse = {v: k for k, v in label_map.items()}
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        order = torch.randint(0, len(ds), (n,), generator=gen).tolist()
        out = []
        for i in order:
            image, target = ds[i]
            img = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            boxes = target["boxes"].as_subclass(torch.Tensor).numpy().astype(np.float32).reshape(-1, 4)
            cats = np.array([inverse[int(v)] for v in target["labels"]], np.int64)
            out.append((np.ascontiguousarray(img), boxes, cats))
    finally:
        if seed is not None:
            torch.random.set_rng_state(state)
    return out
