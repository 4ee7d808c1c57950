"""The one engine job of the tag suggestions: a tagger checkpoint's scores for one image.

``TagScorer(checkpoint)`` is handed to the job in its config: the labeling assistant of the engine
(``engine.assist.suggest.Assistant``) loads the model on first use (in the engine thread), keeps it, and
caches each image's scores (an LRU of ``cache_size`` images). The job
reads the image through its own store connection and returns plain data:
``{"image_id", "checkpoint", "provenance", "scores": {tag_id: score}, "thresholds": {tag_id: threshold}}``
(project tag ids; the per-tag thresholds are the ones tuned on val and stored with the checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.assist.suggest import Assistant
from engine.events import Progress
from engine.jobs import CancelToken, Sink
from engine.project.store import Store

CACHE_SIZE = 64


class TagScorer:
    """A tagger checkpoint as an ``engine.assist.suggest.Assistant`` on the CPU (loaded once, thread-safe, an
    LRU of per-image predictions) with the project's tag ids and the checkpoint's tuned thresholds."""

    def __init__(self, checkpoint: str | Path, cache_size: int = CACHE_SIZE) -> None:
        self.checkpoint = str(checkpoint)
        self.assistant = Assistant(self.checkpoint, "cpu", cache_size=cache_size)

    @property
    def predictions_run(self) -> int:
        return self.assistant.predictions_run

    def scores(self, store: Store, image_id: int) -> dict:
        a = self.assistant
        task, model = a.task_and_model()
        if task.kind != "classification" or not hasattr(task, "thresholds"):
            raise ValueError(f"{Path(self.checkpoint).name} is a {task.name} checkpoint, not a tagger")
        s = a.prediction(store, int(image_id)).arrays["scores"].astype(np.float64)
        thresholds = np.asarray(task.thresholds(model), np.float64).reshape(-1)
        ids, known = list(a.labels.ids), {t.id for t in store.tags()}
        return {"image_id": int(image_id), "checkpoint": self.checkpoint, "provenance": a.provenance,
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
