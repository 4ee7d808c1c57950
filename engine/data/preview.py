"""The augmentation preview as a job, and its typed payload (what the GUI's preview dialog draws).

``preview_job(config, sink, cancel)``: config = {"train": TrainConfig dict (with ``project``), "n": samples,
"seed": int or None}; emits one ``ArraysReady(kind=KIND)`` that ``AugmentPreview.from_event`` reads back.
Arrays: ``image_<i>`` (H, W, 3) uint8 RGB, ``boxes_<i>`` (N, 4) float32 xyxy in that image's pixels,
``cats_<i>`` (N,) int64 project category ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.transforms import augment_preview
from engine.events import ArraysReady
from engine.jobs import CancelToken, Sink

KIND = "augment_preview"


@dataclass(frozen=True)
class PreviewSample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32 xyxy, this image's pixels
    cats: np.ndarray  # (N,) int64 project category ids


@dataclass(frozen=True)
class AugmentPreview:
    samples: tuple[PreviewSample, ...]
    seed: int | None = None

    def to_event(self) -> ArraysReady:
        arrays: dict[str, np.ndarray] = {}
        for i, s in enumerate(self.samples):
            arrays[f"image_{i}"], arrays[f"boxes_{i}"], arrays[f"cats_{i}"] = s.image, s.boxes, s.cats
        return ArraysReady(KIND, arrays, {"n": len(self.samples), "seed": self.seed})

    @staticmethod
    def from_event(event: ArraysReady) -> AugmentPreview:
        if event.kind != KIND:
            raise ValueError(f"not an augmentation preview: {event.kind!r}")
        a, n = event.arrays, int(event.meta.get("n", 0))
        samples = tuple(PreviewSample(a[f"image_{i}"], a[f"boxes_{i}"], a[f"cats_{i}"]) for i in range(n))
        return AugmentPreview(samples, event.meta.get("seed"))


def preview_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """config = {"train": TrainConfig dict (with ``project``), "n": samples, "seed": int or None}."""
    train = dict(config["train"])
    n = int(config.get("n", 6))
    seed = config.get("seed")
    cancel.check()
    samples = augment_preview(train["project"], train, n=n, seed=seed)
    cancel.check()
    sink(AugmentPreview(tuple(PreviewSample(*s) for s in samples), seed).to_event())
    return {"n": len(samples)}
