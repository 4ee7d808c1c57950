"""A torch Dataset over one split of a project store, snapshotted when it is built.

``DetectionDataset.from_store`` reads the split's image rows and annotations once into memory,
so labeling can go on while a job trains on the snapshot. Images are decoded on access with
``engine.project.imageio.read_rgb``. Category ids map to model labels 1..K (0 is background)
through ``label_map``, which is saved in every checkpoint.

An item is ``(image, target)``: ``image`` a (3, H, W) float32 tensor in [0, 1] (a
``tv_tensors.Image``), ``target`` a dict with ``boxes`` (N, 4) float32 xyxy image pixels (a
``tv_tensors.BoundingBoxes``), ``labels`` (N,) int64 in 1..K, ``image_id`` int and, when masks
are asked for, ``masks`` (N, H, W) uint8 (a ``tv_tensors.Mask``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from engine.project.imageio import read_rgb
from engine.project.shapes import Annotation, instances
from engine.project.store import Store

Transform = Callable[[tv_tensors.Image, dict], tuple[tv_tensors.Image, dict]]


@dataclass(frozen=True)
class SampleRecord:
    """One image of the snapshot: absolute path, size, and its annotations as read at job start."""

    image_id: int
    path: Path
    width: int
    height: int
    annotations: tuple[Annotation, ...]
    tags: tuple[int, ...] = ()  # image-level tag ids


def make_label_map(store: Store) -> dict[int, int]:
    """Category id -> model label 1..K, in category-id order (0 stays background)."""
    return {c.id: i + 1 for i, c in enumerate(store.categories())}


def snapshot_split(store: Store, split: str, max_images: int = 0) -> list[SampleRecord]:
    """Read the rows of ``split`` (first ``max_images`` if > 0) and their annotations into memory."""
    images = store.images(split)
    return _snapshot(store, images[:max_images] if max_images > 0 else images)


def snapshot_ids(store: Store, image_ids: list[int], max_images: int = 0) -> list[SampleRecord]:
    """Like ``snapshot_split`` for explicit image ids (in the given order); unknown ids are an error."""
    known = {im.id: im for im in store.images()}
    missing = [i for i in image_ids if i not in known]
    if missing:
        raise ValueError(f"{len(missing)} image ids are not in the project (e.g. {missing[0]})")
    images = [known[i] for i in image_ids]
    return _snapshot(store, images[:max_images] if max_images > 0 else images)


def _snapshot(store: Store, images: list) -> list[SampleRecord]:
    by_image: dict[int, list[Annotation]] = {im.id: [] for im in images}
    for a in store.annotations():
        if a.image_id in by_image:
            by_image[a.image_id].append(a)
    tags = store.all_image_tags()
    return [SampleRecord(im.id, store.image_path(im), im.width, im.height, tuple(by_image[im.id]),
                         tuple(sorted(tags.get(im.id, ())))) for im in images]


class DetectionDataset(Dataset):
    """Items ``(image, target)`` of a split snapshot (see the module docstring for shapes)."""

    def __init__(self, records: list[SampleRecord], label_map: dict[int, int],
                 transform: Transform | None = None, with_masks: bool = False) -> None:
        self.records = list(records)
        self.label_map = dict(label_map)
        self.transform = transform
        self.with_masks = with_masks

    @classmethod
    def from_store(cls, store: Store, split: str, label_map: dict[int, int] | None = None,
                   transform: Transform | None = None, max_images: int = 0,
                   with_masks: bool = False) -> DetectionDataset:
        return cls(snapshot_split(store, split, max_images), label_map or make_label_map(store),
                   transform, with_masks)

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Untransformed sample: image (H, W, 3) uint8, boxes (N, 4) float32 xyxy, labels (N,) int64,
        masks (N, H, W) uint8 or None. Objects of unknown categories and empty boxes are dropped."""
        rec = self.records[index]
        img = read_rgb(rec.path)
        h, w = img.shape[:2]
        objs = [o for o in instances(list(rec.annotations), h, w, self.with_masks) if o.category_id in self.label_map]
        boxes = np.array([o.box for o in objs], np.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        labels = np.array([self.label_map[o.category_id] for o in objs], np.int64)[keep]
        masks = None
        if self.with_masks:
            masks = np.stack([o.mask if o.mask is not None else _box_mask(o.box, h, w) for o in objs]
                             ) if objs else np.zeros((0, h, w), np.uint8)
            masks = masks[keep]
        return img, boxes[keep], labels, masks

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict]:
        img, boxes, labels, masks = self.raw(index)
        img = img if img.flags.writeable else img.copy()  # torch wants writable memory
        h, w = img.shape[:2]
        image = tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        target: dict = {
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(h, w)),
            "labels": torch.from_numpy(labels),
            "image_id": self.records[index].image_id,
        }
        if masks is not None:
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        if self.transform is not None:
            image, target = self.transform(image, target)
        image = tv_tensors.Image(image.float() / 255.0) if image.dtype == torch.uint8 else image
        return image, target


def _box_mask(box: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) uint8 mask filling an xyxy box (for objects labelled with a box only)."""
    m = np.zeros((h, w), np.uint8)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    m[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = 1
    return m


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Detection batches are lists (images differ in size): ([images], [targets])."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def size_from_data(records: list[SampleRecord]) -> tuple[int, int]:
    """(min_size, max_size) for the model's resize: median short side and max long side of the images.

    Keeps the model near native resolution instead of torchvision's default 800-px upscaling.
    """
    if not records:
        return 256, 512
    short = [min(r.width, r.height) for r in records]
    long = [max(r.width, r.height) for r in records]
    min_size = int(np.median(short))
    return max(16, min_size), max(min_size, int(max(long)))
