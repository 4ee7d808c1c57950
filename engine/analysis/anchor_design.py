"""Anchor design statistics: how well a set of anchor sizes/ratios covers a dataset's GT boxes.

For every image the boxes go through the detector's resize (torchvision ``GeneralizedRCNNTransform``:
short side to ``min_size``, long side capped at ``max_size``, padded to a multiple of 32), the anchors
are torchvision's ``AnchorGenerator`` output for the FPN grids (``ceil(padded / stride)`` cells), and
labels follow the RPN's ``Matcher`` (fg >= 0.7, bg < 0.3, between = ignored, low-quality matches kept).
All IoUs are computed in the model's input frame, as training does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import boxes as box_ops

from engine.events import ArraysReady, Progress
from engine.jobs import CancelToken, Sink
from engine.project.shapes import instances
from engine.project.store import Store

BACKBONE_STRIDES = {"tiny": (4, 8, 16, 32, 64), "resnet50_fpn": (4, 8, 16, 32, 64),
                    "mobilenet_v3_large_fpn": (32, 32, 64)}


@dataclass(frozen=True)
class AnchorStats:
    """Per-GT and per-image results. G = GT boxes over all images, I = images."""

    best_iou: np.ndarray  # (G,) float32 best IoU of any anchor with the GT box
    positives: np.ndarray  # (G,) int32 anchors labelled foreground and matched to this GT
    gt_image: np.ndarray  # (G,) int32 index of the image in the input lists
    gt_boxes: np.ndarray  # (G, 4) float32 xyxy original image pixels
    gt_scale: np.ndarray  # (G,) float32 sqrt(area) in the model's input frame (compare with anchor sizes)
    counts: np.ndarray  # (I, 3) int64 foreground, background, ignored anchors per image
    fg_iou: float = 0.7

    def share(self, threshold: float) -> float:
        """Share of GT boxes whose best anchor IoU is >= threshold (nan without GT)."""
        return float((self.best_iou >= threshold).mean()) if len(self.best_iou) else float("nan")

    def no_positive(self) -> np.ndarray:
        """(M,) int64 indices of GT boxes that no anchor is assigned to (they get no RPN training signal)."""
        return np.flatnonzero(self.positives == 0)

    def weak(self) -> np.ndarray:
        """(M,) int64 indices of GT boxes with no anchor at IoU >= fg (positives only via low-quality matches)."""
        return np.flatnonzero(self.best_iou < self.fg_iou)

    def summary(self) -> dict[str, float]:
        c = self.counts.sum(0) if len(self.counts) else np.zeros(3, np.int64)
        return {"gt": int(len(self.best_iou)), "images": int(len(self.counts)), "share_iou50": self.share(0.5),
                "share_iou70": self.share(0.7),
                "positives_per_gt": float(self.positives.mean()) if len(self.positives) else float("nan"),
                "fg_per_image": float(c[0] / max(1, len(self.counts))),
                "bg_per_image": float(c[1] / max(1, len(self.counts))),
                "ignored_per_image": float(c[2] / max(1, len(self.counts))),
                "bg_per_fg": float(c[1] / c[0]) if c[0] else float("inf"),
                "no_positive": int(len(self.no_positive())), "weak": int(len(self.weak()))}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"best_iou": self.best_iou, "positives": self.positives, "gt_image": self.gt_image,
                "gt_boxes": self.gt_boxes, "gt_scale": self.gt_scale, "counts": self.counts,
                "fg_iou": np.asarray(self.fg_iou)}

    @staticmethod
    def from_arrays(a: dict[str, np.ndarray]) -> AnchorStats:
        return AnchorStats(a["best_iou"], a["positives"], a["gt_image"], a["gt_boxes"], a["gt_scale"], a["counts"],
                           float(a["fg_iou"]))


def input_size(h: int, w: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(h, w) after torchvision's eval resize (``_resize_image_and_masks``, no fixed size)."""
    s = min(min_size / min(h, w), max_size / max(h, w))
    return math.floor(h * s), math.floor(w * s)


def anchor_stats(gt_boxes: Sequence[np.ndarray], image_sizes: Sequence[tuple[int, int]],
                 anchor_sizes: Sequence[Sequence[int]], aspect_ratios: Sequence[float], min_size: int,
                 max_size: int, strides: Sequence[int] = BACKBONE_STRIDES["tiny"], fg_iou: float = 0.7,
                 bg_iou: float = 0.3, size_divisible: int = 32) -> AnchorStats:
    """``gt_boxes``: per image (N_i, 4) xyxy original pixels; ``image_sizes``: per image (H, W).
    ``anchor_sizes``: one tuple of sizes per FPN level (len == len(strides)); ``aspect_ratios`` (h / w)."""
    if len(gt_boxes) != len(image_sizes):
        raise ValueError(f"{len(gt_boxes)} GT lists but {len(image_sizes)} image sizes")
    if len(anchor_sizes) != len(strides):
        raise ValueError(f"{len(anchor_sizes)} anchor size levels but the backbone has {len(strides)} FPN levels")
    gen = AnchorGenerator(tuple(tuple(int(s) for s in lv) for lv in anchor_sizes),
                          (tuple(float(r) for r in aspect_ratios),) * len(anchor_sizes))
    cache: dict[tuple[int, int], np.ndarray] = {}
    best, pos, img_idx, boxes_out, scale_out, counts = [], [], [], [], [], []
    for i, (boxes, (h, w)) in enumerate(zip(gt_boxes, image_sizes)):
        ih, iw = input_size(int(h), int(w), min_size, max_size)
        ph, pw = (int(math.ceil(v / size_divisible) * size_divisible) for v in (ih, iw))
        if (ph, pw) not in cache:
            grids = [torch.empty((1, 0, math.ceil(ph / s), math.ceil(pw / s))) for s in strides]
            cache[(ph, pw)] = gen(ImageList(torch.empty((1, 0, ph, pw)), [(ih, iw)]), grids)[0].numpy()
        anchors = cache[(ph, pw)]
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        sx, sy = np.float32(iw) / np.float32(w), np.float32(ih) / np.float32(h)
        b_in = b * np.array([sx, sy, sx, sy], np.float32)
        if len(b) == 0:
            counts.append((0, len(anchors), 0))
            continue
        fg, n_bg, n_ign, best_i, matched = _match(anchors, b_in, fg_iou, bg_iou)
        counts.append((int(fg.sum()), n_bg, n_ign))
        best.append(best_i)
        pos.append(np.bincount(matched[fg], minlength=len(b))[: len(b)])
        img_idx.append(np.full(len(b), i, np.int32))
        boxes_out.append(b)
        wh = (b_in[:, 2:] - b_in[:, :2]).clip(0)
        scale_out.append(np.sqrt(wh[:, 0] * wh[:, 1]))

    def cat(xs: list, dtype: type, shape: tuple = (0,)) -> np.ndarray:
        return np.concatenate(xs).astype(dtype) if xs else np.zeros(shape, dtype)

    return AnchorStats(cat(best, np.float32), cat(pos, np.int32), cat(img_idx, np.int32),
                       cat(boxes_out, np.float32, (0, 4)), cat(scale_out, np.float32),
                       np.asarray(counts, np.int64).reshape(-1, 3), float(fg_iou))


def _match(anchors: np.ndarray, gt: np.ndarray, high: float, low: float
           ) -> tuple[np.ndarray, int, int, np.ndarray, np.ndarray]:
    """The RPN's ``Matcher(high, low, allow_low_quality_matches=True)`` in numpy (single-threaded, so a
    busy torch thread pool elsewhere does not slow it), on the anchors that overlap some GT: the others
    have IoU 0 with every GT and are background, exactly as with the full matrix as long as every GT
    overlaps an anchor (else the full matrix is used). Returns the fg mask over candidates, the bg and
    ignored counts over ALL anchors, best IoU per GT (N,) float32, matched GT per candidate."""
    a = anchors
    overlap = ((a[None, :, 0] < gt[:, None, 2]) & (a[None, :, 2] > gt[:, None, 0])
               & (a[None, :, 1] < gt[:, None, 3]) & (a[None, :, 3] > gt[:, None, 1])).any(0)
    iou = box_iou_f32(gt, a[overlap])  # (N, C)
    if iou.shape[1] == 0 or bool((iou.max(1) <= 0).any()):
        iou = box_iou_f32(gt, a)  # a GT touches no anchor: low-quality ties then involve every anchor
    best_gt = iou.argmax(0)
    best_val = iou[best_gt, np.arange(iou.shape[1])]
    matched = best_gt.astype(np.int64)
    matched[best_val < low] = Matcher.BELOW_LOW_THRESHOLD
    matched[(best_val >= low) & (best_val < high)] = Matcher.BETWEEN_THRESHOLDS
    highest = iou.max(1)
    _, pred = np.nonzero(iou == highest[:, None])
    matched[pred] = best_gt[pred]
    fg = matched >= 0
    n_ign = int((matched == Matcher.BETWEEN_THRESHOLDS).sum())
    return fg, len(a) - int(fg.sum()) - n_ign, n_ign, highest.astype(np.float32), matched


def box_iou_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``torchvision.ops.box_iou`` (the one IoU of the project) on float32: (N, M), as the RPN's matcher sees it."""
    ta = torch.as_tensor(np.asarray(a, np.float32).reshape(-1, 4))
    tb = torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4))
    return box_ops.box_iou(ta, tb).numpy()


def dataset_boxes(store: Store, split: str | None = None) -> tuple[list[np.ndarray], list[tuple[int, int]], list[int]]:
    """GT boxes per labelled image of ``split`` (all splits if None): objects merged by group id, as the
    trainer sees them. Returns (boxes (N_i, 4) float32 xyxy, (H, W), image id) lists; images without
    objects are left out."""
    by_image: dict[int, list] = {}
    for a in store.annotations():
        by_image.setdefault(a.image_id, []).append(a)
    boxes, sizes, ids = [], [], []
    for im in store.images(split):
        anns = by_image.get(im.id)
        if not anns:
            continue
        objs = instances(anns, im.height, im.width)
        b = np.array([o.box for o in objs], np.float32).reshape(-1, 4)
        b = b[(b[:, 2] - b[:, 0] >= 1) & (b[:, 3] - b[:, 1] >= 1)]
        if len(b):
            boxes.append(b)
            sizes.append((im.height, im.width))
            ids.append(im.id)
    return boxes, sizes, ids


def anchor_design_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """config: project, split (None = all), anchor_sizes, aspect_ratios, min_size, max_size, and
    strides or backbone. Emits ArraysReady(kind="anchor_design") with the stats arrays plus
    ``image_ids`` (G-aligned via gt_image); returns the summary."""
    strides = config.get("strides") or BACKBONE_STRIDES.get(config.get("backbone", "tiny"))
    if strides is None:
        raise ValueError(f"backbone: unknown {config.get('backbone')!r}; give 'strides' explicitly")
    with Store(config["project"]) as store:
        boxes, sizes, ids = dataset_boxes(store, config.get("split"))
    cancel.check()
    sink(Progress(0, 1, "matching anchors"))
    stats = anchor_stats(boxes, sizes, config["anchor_sizes"], config["aspect_ratios"], int(config["min_size"]),
                         int(config["max_size"]), strides)
    arrays = {**stats.to_arrays(), "image_ids": np.asarray(ids, np.int64)}
    summary = stats.summary()
    sink(ArraysReady(kind="anchor_design", arrays=arrays, meta={**summary, "config": dict(config)}))
    sink(Progress(1, 1, "done"))
    return summary
