"""Semantic segmentation data: the per-pixel target rasterised from a project's shapes, a dataset, augmentation.

The rule (``semantic_mask``), for one image (H, W) with model labels ``label_map`` (category id ->
1..K, 0 = background):

1. An image with no polygon or mask annotation of a known category has NO segmentation truth: every
   pixel is ``IGNORE_INDEX`` (255). Boxes alone are never segmentation truth. (Training sets leave
   such images out; in evaluation they count for nothing.)
2. Otherwise every pixel starts as background 0, then
3. objects (annotations grouped by ``group_id``) that have only a box get 255 inside that box
   (clipped to the image, rounded to whole pixels): what is inside is unknown, not background;
4. polygons (COCO's rasteriser) and brush masks paint their model label, in annotation order (a
   later shape wins where shapes overlap); shapes of categories outside ``label_map`` paint 255.

Items are ``(image (3, H, W) float32 [0, 1] tv_tensors.Image, {"mask": (H, W) int64
tv_tensors.Mask, "image_id": int})`` in original image pixels. Training augmentation
(``seg_train_transform``) moves image and mask together with ``torchvision.transforms.v2``:
horizontal flip, scale jitter 0.75-1.25 about the centre (new border: image grey 114, mask 255),
a random crop keeping 60-100 % of each side, colour jitter — each switched by the ``augment_*``
flags of ``TrainConfig``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.config import TrainConfig
from engine.data.dataset import SampleRecord
from engine.data.transforms import RandomCropFraction
from engine.project.imageio import read_rgb
from engine.project.shapes import Annotation, Polygon, group_annotations, object_box

IGNORE_INDEX = 255
SHAPE_KINDS = ("polygon", "mask")

SegTransform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[tv_tensors.Image, tv_tensors.Mask]]


def has_segmentation_truth(annotations: tuple[Annotation, ...] | list[Annotation], known: set[int]) -> bool:
    """True when some polygon or mask annotation has a category in ``known``."""
    return any(a.kind in SHAPE_KINDS and a.category_id in known for a in annotations)


def semantic_mask(annotations: list[Annotation], height: int, width: int, label_map: dict[int, int]) -> np.ndarray:
    """(H, W) int64 per-pixel model labels (0 background, 255 ignore) by the rule in the module docstring."""
    out = np.full((height, width), IGNORE_INDEX, np.int64)
    anns = list(annotations)
    if not has_segmentation_truth(anns, set(label_map)):
        return out
    out[:] = 0
    for members in group_annotations(anns):
        if all(m.kind == "box" for m in members):
            x1, y1, x2, y2 = np.round(object_box(members)).astype(int)
            out[max(0, y1):max(0, min(height, y2)), max(0, x1):max(0, min(width, x2))] = IGNORE_INDEX
    for a in anns:
        if a.kind not in SHAPE_KINDS:
            continue
        g = a.geometry
        m = g.to_mask(height, width) if isinstance(g, Polygon) else g.to_array()
        if m.shape != (height, width):
            raise ValueError(f"mask annotation {a.id} is {m.shape[1]}x{m.shape[0]} px but its image is "
                             f"{width}x{height}")
        out[m.astype(bool)] = label_map.get(a.category_id, IGNORE_INDEX)
    return out


class SegTrainTransform:
    """Joint (image uint8 (3, H, W), mask int64 (H, W)) augmentation; see the module docstring."""

    def __init__(self, flip: bool, scale: bool, crop: bool, color: bool) -> None:
        self.flip = v2.RandomHorizontalFlip(0.5) if flip else None
        self.scale = (v2.RandomAffine(degrees=0.0, scale=(0.75, 1.25),
                                      fill={tv_tensors.Image: 114, tv_tensors.Mask: IGNORE_INDEX}) if scale else None)
        self.crop = RandomCropFraction(0.6, 0.5) if crop else None
        self.color = v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3) if color else None

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        for step in (self.flip, self.scale):
            if step is not None:
                image, mask = step(image, mask)
        if self.crop is not None:
            image, target = self.crop(image, {"masks": mask})
            mask = target["masks"]
        if self.color is not None:
            image = self.color(image)
        return image, mask


def seg_train_transform(cfg: TrainConfig) -> SegTrainTransform | None:
    """The augmentation for ``cfg``'s ``augment_*`` flags; None when all are off (or overfit mode)."""
    flags = (cfg.augment_flip, cfg.augment_scale, cfg.augment_crop, cfg.augment_color)
    if cfg.overfit_one_batch or not any(flags):
        return None
    return SegTrainTransform(*flags)


class SegmentationDataset(Dataset):
    """Items ``(image, {"mask", "image_id"})`` of a snapshot (see the module docstring)."""

    def __init__(self, records: list[SampleRecord], label_map: dict[int, int],
                 transform: SegTransform | None = None) -> None:
        self.records = list(records)
        self.label_map = dict(label_map)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Untransformed sample: image (H, W, 3) uint8 RGB, mask (H, W) int64."""
        rec = self.records[index]
        img = read_rgb(rec.path)
        h, w = img.shape[:2]
        return img, semantic_mask(list(rec.annotations), h, w, self.label_map)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict]:
        img, mask = self.raw(index)
        img = img if img.flags.writeable else img.copy()  # torch wants writable memory
        image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        target_mask = tv_tensors.Mask(torch.from_numpy(mask))
        if self.transform is not None:
            image, target_mask = self.transform(image, target_mask)
        image = tv_tensors.Image(image.float() / 255.0)
        return image, {"mask": target_mask, "image_id": self.records[index].image_id}
