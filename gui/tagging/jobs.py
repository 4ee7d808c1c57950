"""The one engine job of the tag suggestions: a tagger checkpoint's scores for one image.

``TagScorer(checkpoint)`` is handed to the job in its config; it loads the model on first use (in the
engine thread), keeps it, and caches each image's scores (an LRU of ``cache_size`` images). The job
reads the image through its own store connection and returns plain data:
``{"image_id", "checkpoint", "provenance", "scores": {tag_id: score}, "thresholds": {tag_id: threshold}}``
(project tag ids; the per-tag thresholds are the ones tuned on val and stored with the checkpoint).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from engine.events import Progress
from engine.jobs import CancelToken, Sink
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.checkpoint import load_model

CACHE_SIZE = 64


class TagScorer:
    """A tagger checkpoint, loaded once, with per-image scores cached (thread-safe; used by one lane)."""

    def __init__(self, checkpoint: str | Path, cache_size: int = CACHE_SIZE) -> None:
        self.checkpoint = str(checkpoint)
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._model: tuple | None = None  # (task, model, tag ids, thresholds (T,), provenance)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.predictions_run = 0

    def _load(self) -> tuple:
        if self._model is None:
            task, model, _spec, labels, meta = load_model(self.checkpoint, "cpu")
            if task.kind != "classification" or not hasattr(task, "thresholds"):
                raise ValueError(f"{Path(self.checkpoint).name} is a {task.name} checkpoint, not a tagger")
            thresholds = np.asarray(task.thresholds(model), np.float64).reshape(-1)
            self._model = (task, model, list(labels.ids), thresholds, f"model:{int(meta.get('run_id', 0))}")
        return self._model

    def scores(self, store: Store, image_id: int) -> dict:
        with self._lock:
            task, model, ids, thresholds, provenance = self._load()
            s = self._cache.get(int(image_id))
            if s is None:
                rgb = read_rgb(store.image_path(store.image(int(image_id))))
                with torch.no_grad():
                    s = np.asarray(task.predict(model, [rgb], torch.device("cpu"))[0]["scores"], np.float64)
                self.predictions_run += 1
                self._cache[int(image_id)] = s
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(int(image_id))
        known = {t.id for t in store.tags()}
        return {"image_id": int(image_id), "checkpoint": self.checkpoint, "provenance": provenance,
                "scores": {tid: float(v) for tid, v in zip(ids, s) if tid in known},
                "thresholds": {tid: float(t) for tid, t in zip(ids, thresholds) if tid in known}}


def tag_scores_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """config: ``project``, ``image_id``, ``scorer`` (a ``TagScorer``)."""
    cancel.check()
    sink(Progress(0, 1, "scoring tags"))
    scorer: TagScorer = config["scorer"]
    with Store(str(config["project"])) as store:
        out = scorer.scores(store, int(config["image_id"]))
    sink(Progress(1, 1, "done"))
    return out
