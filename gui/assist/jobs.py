"""The Assist dock's engine jobs, submitted through the bridge (the model never runs on the GUI thread).

Each takes the dock's ``Assistant`` (``engine.assist.suggest``: lazy model, bounded LRU prediction cache)
in its config and opens its own store connection, as every job does:

- ``suggest_job({"project", "assistant", "image_id", "threshold"})``: the image's suggestions (cached
  prediction, else one model call) stored without duplicates (``review.sync_suggestions``) ->
  ``{"image_id", "provenance", "kind", "pending": n}``; the dock then reads them from the store.
- ``prefetch_job({"project", "assistant", "image_ids"})``: predictions of the next images, into the cache
  (at most ``cache_size``; cancellable between images) -> ``{"ran": model calls}``.
- ``rank_job({"project", "assistant", "image_ids"?})``: ``rank_by_uncertainty`` (default: the images
  without labels) -> ``{"order": [[image id, uncertainty], ...], "unreadable": n}``.
- ``unload_job({"assistant"})``: drops the model and the cache; queued behind the lane's running job, so
  the GUI thread never waits for the model lock.

Batch pre-labelling is ``engine.assist.prelabel.prelabel_job`` itself (it loads its own model).
"""

from __future__ import annotations

from engine.assist.review import sync_suggestions
from engine.assist.suggest import Assistant
from engine.assist.uncertainty import rank_by_uncertainty
from engine.events import Progress
from engine.jobs import CancelToken, Sink
from engine.project.store import Store


def _assistant(config: dict) -> Assistant:
    a = config["assistant"]
    if not isinstance(a, Assistant):
        raise TypeError("config['assistant'] must be an engine.assist.suggest.Assistant")
    return a


def suggest_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    assistant, image_id = _assistant(config), int(config["image_id"])
    cancel.check()
    with Store(str(config["project"])) as store:
        live = assistant.suggest(store, image_id, float(config.get("threshold", 0.5)))
        cancel.check()
        pending = sync_suggestions(store, image_id, live, assistant.provenance)
    return {"image_id": image_id, "provenance": assistant.provenance, "kind": assistant.kind,
            "pending": len(pending)}


def prefetch_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    assistant = _assistant(config)
    with Store(str(config["project"])) as store:
        return {"ran": assistant.prefetch(store, [int(i) for i in config.get("image_ids") or []], cancel)}


def rank_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    assistant = _assistant(config)
    ids = config.get("image_ids")
    skipped: list[int] = []
    with Store(str(config["project"])) as store:
        order = rank_by_uncertainty(assistant, store, None if ids is None else [int(i) for i in ids], cancel,
                                    lambda d, t, m: sink(Progress(d, t, m)), skipped)
    return {"order": [[i, float(u)] for i, u in order], "unreadable": len(skipped),
            "provenance": assistant.provenance}


def unload_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    _assistant(config).unload()
    return {}
