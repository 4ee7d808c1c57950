"""Segmentation predictions -> regions to store as mask annotations.

One region per connected component (8-connected) of each non-background class of the class map;
its score is the mean probability of that class over the component's pixels. Components smaller
than ``MIN_REGION_PX`` pixels are dropped (speckle), and so are those scoring under the caller's
threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_REGION_PX = 8


@dataclass(frozen=True)
class Region:
    """One predicted region: model label, (H, W) bool mask in original pixels, mean probability, pixels."""

    label: int
    mask: np.ndarray
    score: float
    area: int


def class_regions(class_map: np.ndarray, probs: np.ndarray, min_score: float = 0.0,
                  min_area: int = MIN_REGION_PX) -> list[Region]:
    """Regions of ``class_map`` (H, W) int64 with ``probs`` (C, H, W) float32; label 0 (background) skipped.

    Ordered by label, then by component (top-left first).
    """
    out: list[Region] = []
    for label in np.unique(class_map):
        if label == 0:
            continue
        n, comp = cv2.connectedComponents((class_map == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            mask = comp == k
            area = int(mask.sum())
            if area < min_area:
                continue
            score = float(probs[int(label)][mask].mean())
            if score >= min_score:
                out.append(Region(int(label), mask, score, area))
    return out
