"""Active ordering: images sorted by how unsure a model is about them, most uncertain first.

Uncertainty (``engine.assist.scores``): a detector's lowest max score (``1 - max``), a segmenter's
mean pixel entropy, a tag classifier's mean per-tag entropy; all in [0, 1]. ``rank_by_uncertainty``
reuses (and fills) an ``Assistant``'s prediction cache, so the GUI can rank with the assistant it
already holds. ``uncertainty_job`` is the same as a job: config ``project``, ``checkpoint``, one of
``split``, ``unlabeled`` (the default when none is given) or ``image_ids``, ``device`` -> ``{"order":
[[image id, uncertainty], ...], "images", "unreadable", "provenance"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.assist.prelabel import select_images
from engine.assist.suggest import Assistant, labeled_image_ids
from engine.events import Notice, Progress
from engine.jobs import CancelToken, Sink
from engine.project.imageio import ImageReadError
from engine.project.store import Store

ProgressFn = Callable[[int, int, str], None]


def unlabeled_ids(store: Store, kind: str) -> list[int]:
    """Images without labels of this kind (shapes, or tags for a classifier), by id."""
    labeled = labeled_image_ids(store, kind)
    return [im.id for im in store.images() if im.id not in labeled]


def rank_by_uncertainty(assistant: Assistant, store: Store, image_ids: Iterable[int] | None = None,
                        cancel: CancelToken | None = None, progress: ProgressFn | None = None,
                        skipped: list[int] | None = None) -> list[tuple[int, float]]:
    """``[(image_id, uncertainty)]`` most uncertain first (ties by id); default: the unlabeled images.

    Unreadable images are left out (their ids appended to ``skipped`` when given).
    """
    ids = unlabeled_ids(store, assistant.kind) if image_ids is None else [int(i) for i in image_ids]
    scored: list[tuple[int, float]] = []
    for n, image_id in enumerate(ids):
        if cancel is not None:
            cancel.check()
        if progress is not None:
            progress(n, len(ids), f"image {image_id}")
        try:
            scored.append((image_id, assistant.prediction(store, image_id).uncertainty))
        except ImageReadError:
            if skipped is not None:
                skipped.append(image_id)
    return sorted(scored, key=lambda t: (-t[1], t[0]))


def uncertainty_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Rank images by a checkpoint's uncertainty (see the module docstring)."""
    assistant = Assistant(str(config["checkpoint"]), str(config.get("device", "auto")), cache_size=1)
    assistant.load()
    provenance = assistant.provenance
    chosen = any(config.get(k) for k in ("unlabeled", "image_ids")) or config.get("split") is not None
    skipped: list[int] = []
    try:
        with Store(str(config["project"])) as store:
            images = select_images(store, config if chosen else {**config, "unlabeled": True}, assistant.kind)
            order = rank_by_uncertainty(assistant, store, [im.id for im in images], cancel,
                                        lambda d, t, m: sink(Progress(d, t, m)), skipped)
            sink(Progress(len(images), len(images), "done"))
    finally:
        assistant.unload()
    if skipped:
        sink(Notice(f"{len(skipped)} image(s) could not be read and are not ranked", "warning"))
    return {"order": [[i, round(u, 6)] for i, u in order], "images": len(order), "unreadable": len(skipped),
            "provenance": provenance}
