"""The assistant: one checkpoint proposing shapes or tags for images, with a bounded prediction cache.

``Assistant(checkpoint, device, cache_size)`` loads the model lazily through
``engine.tasks.checkpoint.load_model`` (any registered task) and keeps each image's raw prediction
(``Prediction``) in an LRU cache keyed by (checkpoint, image id), bounded by ``cache_size`` entries
and ``max_cache_bytes``; ``unload()`` drops the model and the cache. ``suggest`` turns a prediction
into ``Suggestion`` records (not stored; see ``Store.add_suggestions``) above a threshold:

- detection: one box per detection (clipped to the image);
- segmentation: one mask per predicted class (coarse), scored by the class's mean probability over it;
- classification: one tag per tag scoring at least the threshold.

A threshold change re-reads the cached prediction; the model runs once per image. Thread use: the
model runs in whichever thread calls ``prediction``/``suggest``/``prefetch`` (the GUI's engine
lane, never the GUI thread); ``cached_suggestions`` only reads the cache and is cheap anywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.assist.scores import detection_uncertainty, segmentation_uncertainty, tag_uncertainty
from engine.device import select_device
from engine.jobs import CancelToken
from engine.project.imageio import read_rgb
from engine.project.shapes import Box, Mask
from engine.project.store import Store, Suggestion
from engine.tasks.base import LabelSpace, Task
from engine.tasks.checkpoint import load_model

MIN_REGION_PX = 8  # a segmentation class covering fewer pixels is speckle, not a suggestion


@dataclass(frozen=True)
class Prediction:
    """One image's raw prediction, compact enough to cache. Labels are model labels.

    ``arrays``: detection ``boxes`` (N, 4) float32 xyxy original pixels (clipped), ``scores`` (N,)
    float32, ``labels`` (N,) int64; segmentation ``class_map`` (H, W) uint8/int16 and ``confidence``
    (H, W) float32 (the winning class's probability); classification ``scores`` (T,) float32 by label.
    ``uncertainty`` in [0, 1], see ``engine.assist.scores``.
    """

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty: float = 0.0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


@dataclass(frozen=True)
class _Loaded:
    task: Task
    model: torch.nn.Module
    labels: LabelSpace
    run_id: int
    device: torch.device


def compact(kind: str, raw: dict, width: int, height: int) -> Prediction:
    """A task's ``predict`` output for one image -> ``Prediction`` (uncertainty from the full output)."""
    if kind == "detection":
        boxes = np.asarray(raw["boxes"], np.float32).reshape(-1, 4).copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        scores = np.asarray(raw["scores"], np.float32).reshape(-1)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Prediction(kind, {"boxes": boxes[keep], "scores": scores[keep],
                                 "labels": np.asarray(raw["labels"], np.int64).reshape(-1)[keep]},
                          detection_uncertainty(scores))
    if kind == "segmentation":
        probs = np.asarray(raw["probs"], np.float32)
        class_map = np.asarray(raw["class_map"])
        small = np.uint8 if probs.shape[0] <= 256 else np.int16
        confidence = np.take_along_axis(probs, class_map[None].astype(np.int64), 0)[0]
        return Prediction(kind, {"class_map": class_map.astype(small), "confidence": confidence.astype(np.float32)},
                          segmentation_uncertainty(probs))
    scores = np.asarray(raw["scores"], np.float32).reshape(-1)
    return Prediction(kind, {"scores": scores}, tag_uncertainty(scores))


def to_suggestions(pred: Prediction, labels: LabelSpace, image_id: int, provenance: str, threshold: float,
                   known_ids: set[int] | None = None) -> list[Suggestion]:
    """Suggestions scoring at least ``threshold`` whose project id is in ``known_ids`` (None: all)."""
    inverse = {lab: cid for cid, lab in labels.label_map.items()}

    def wanted(label: int, score: float) -> int | None:
        cid = inverse.get(int(label))
        ok = cid is not None and score >= threshold and (known_ids is None or cid in known_ids)
        return cid if ok else None

    out: list[Suggestion] = []
    a = pred.arrays
    if pred.kind == "detection":
        for box, score, label in zip(a["boxes"], a["scores"], a["labels"]):
            if (cid := wanted(label, float(score))) is not None:
                out.append(Suggestion(image_id, provenance, float(score), Box(box.astype(np.float64)), cid))
    elif pred.kind == "segmentation":
        class_map = a["class_map"]
        for label in np.unique(class_map):
            mask = class_map == label
            if label == 0 or (n := int(mask.sum())) < MIN_REGION_PX:
                continue
            score = float(a["confidence"][mask].sum() / n)
            if (cid := wanted(int(label), score)) is not None:
                out.append(Suggestion(image_id, provenance, score, Mask.from_array(mask), cid))
    else:
        for label, score in enumerate(a["scores"]):
            if (cid := wanted(label, float(score))) is not None:
                out.append(Suggestion(image_id, provenance, float(score), tag_id=cid))
    return out


def labeled_image_ids(store: Store, kind: str) -> set[int]:
    """Images that already hold labels of this kind: annotations (shapes) or image tags (classification)."""
    return set(store.all_image_tags()) if kind == "classification" else set(store.annotation_counts())


def project_label_ids(store: Store, kind: str) -> set[int]:
    """Ids a suggestion may use: the project's tag ids (classification) or category ids."""
    return {t.id for t in store.tags()} if kind == "classification" else {c.id for c in store.categories()}


class Assistant:
    """A checkpoint as a labeling assistant (see the module docstring)."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", cache_size: int = 32,
                 max_cache_bytes: int = 256 << 20) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.checkpoint = str(checkpoint)
        self.device_name = device
        self.cache_size = int(cache_size)
        self.max_cache_bytes = int(max_cache_bytes)
        self.predictions_run = 0  # model calls since creation (cache misses)
        self._cache: OrderedDict[tuple[str, int], Prediction] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._loaded: _Loaded | None = None

    # -- model --------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model now (otherwise on first use); CheckpointError for a bad file."""
        with self._model_lock:
            self._load_locked()

    def _load_locked(self) -> _Loaded:
        if self._loaded is None:
            device = select_device(self.device_name)
            task, model, _, labels, meta = load_model(self.checkpoint, device)
            self._loaded = _Loaded(task, model, labels, int(meta.get("run_id", 0)), device)
        return self._loaded

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def _info(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._model_lock:
            return self._load_locked()

    @property
    def kind(self) -> str:
        """'detection' | 'segmentation' | 'classification' (loads the model)."""
        return self._info().task.kind

    @property
    def labels(self) -> LabelSpace:
        return self._info().labels

    def task_and_model(self) -> tuple[Task, torch.nn.Module]:
        """The checkpoint's task and model (loads it); for reading what the model stores (e.g. a tagger's
        thresholds), never for running it outside ``prediction``."""
        info = self._info()
        return info.task, info.model

    @property
    def provenance(self) -> str:
        """``model:<run id>`` of the checkpoint (loads the model)."""
        return f"model:{self._info().run_id}"

    def unload(self) -> None:
        """Drop the model (frees its memory, GPU included) and every cached prediction."""
        with self._model_lock:
            loaded, self._loaded = self._loaded, None
        self.clear_cache()
        if loaded is not None and loaded.device.type == "cuda":
            del loaded
            torch.cuda.empty_cache()

    # -- cache --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cache)

    @property
    def cache_bytes(self) -> int:
        with self._cache_lock:
            return sum(p.nbytes for p in self._cache.values())

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def cached_ids(self) -> list[int]:
        """Image ids with a cached prediction, least recently used first."""
        with self._cache_lock:
            return [k[1] for k in self._cache]

    def cached(self, image_id: int) -> Prediction | None:
        """The cached prediction of an image (marked recently used), or None; never runs the model."""
        key = (self.checkpoint, int(image_id))
        with self._cache_lock:
            pred = self._cache.get(key)
            if pred is not None:
                self._cache.move_to_end(key)
            return pred

    def _remember(self, image_id: int, pred: Prediction) -> None:
        with self._cache_lock:
            self._cache[(self.checkpoint, int(image_id))] = pred
            self._cache.move_to_end((self.checkpoint, int(image_id)))
            total = sum(p.nbytes for p in self._cache.values())
            while len(self._cache) > self.cache_size or (total > self.max_cache_bytes and len(self._cache) > 1):
                _, old = self._cache.popitem(last=False)
                total -= old.nbytes

    # -- predictions and suggestions ----------------------------------------------------------
    def prediction(self, store: Store, image_id: int) -> Prediction:
        """The image's prediction: from the cache, else the model runs once (ImageReadError if unreadable)."""
        pred = self.cached(image_id)
        if pred is not None:
            return pred
        rec = store.image(image_id)
        rgb = read_rgb(store.image_path(rec))
        with self._model_lock:
            info = self._load_locked()
            with torch.no_grad():
                raw = info.task.predict(info.model, [rgb], info.device)[0]
            self.predictions_run += 1
        pred = compact(info.task.kind, raw, rec.width, rec.height)
        self._remember(image_id, pred)
        return pred

    def suggest(self, store: Store, image_id: int, threshold: float = 0.5) -> list[Suggestion]:
        """Suggestions for one image scoring at least ``threshold`` (runs the model unless cached)."""
        pred = self.prediction(store, image_id)
        return to_suggestions(pred, self.labels, image_id, self.provenance, threshold,
                              project_label_ids(store, pred.kind))

    def cached_suggestions(self, image_id: int, threshold: float = 0.5) -> list[Suggestion] | None:
        """Suggestions from the cache only (None when the image was not predicted yet); ids not checked
        against the project (the model's label space at training time)."""
        pred = self.cached(image_id)
        if pred is None or self._loaded is None:
            return None
        return to_suggestions(pred, self._loaded.labels, image_id, f"model:{self._loaded.run_id}", threshold)

    def prefetch(self, store: Store, image_ids: Iterable[int], cancel: CancelToken | None = None) -> int:
        """Predict the images not cached yet (e.g. the next few); returns how many ran the model.

        At most ``cache_size`` ids are fetched, so a long list cannot evict its own first entries.
        """
        ran = 0
        for image_id in list(image_ids)[: self.cache_size]:
            if cancel is not None:
                cancel.check()
            if self.cached(image_id) is None:
                self.prediction(store, image_id)
                ran += 1
        return ran
