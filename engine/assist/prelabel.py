"""``prelabel_job``: a checkpoint proposes labels for many images, stored as pending suggestions.

Config (a plain dict): ``project``, ``checkpoint``, one of ``split`` (a split name), ``unlabeled``
(true: images without labels of the model's kind) or ``image_ids`` (default: every image),
``threshold`` (0.5), ``overwrite_manual`` (false), ``device`` ("auto").

An image that already has labels of the model's kind (shapes for a detector or segmenter: manual,
imported or accepted annotations; image tags for a tag classifier) is skipped and counted in
``skipped_manual``, unless ``overwrite_manual``: then its annotations (tags) are deleted and the
suggestions take their place. Suggestions are stored with provenance ``model:<run id>`` and state
``suggested``; a run's earlier pending suggestions on an image are replaced, its accepted and
rejected ones kept. Each image is one transaction, so a cancelled job leaves whole images.

Returns ``{"images": processed, "suggestions": stored, "skipped_manual": k, "replaced": annotations
or tags deleted by overwrite_manual, "unreadable": images that could not be read, "provenance",
"kind" (the model's task kind), "checkpoint"}``.
"""

from __future__ import annotations

import math

from engine.assist.suggest import Assistant, labeled_image_ids, project_label_ids
from engine.events import Notice, Progress
from engine.jobs import CancelToken, Sink
from engine.project.imageio import ImageReadError
from engine.project.store import ImageRecord, Store, Suggestion


class PrelabelError(ValueError):
    """Bad input to prelabel (or uncertainty ordering); one line for the user."""


def check_threshold(value: object) -> float:
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t) or not 0 <= t <= 1:
        raise PrelabelError(f"threshold must be a number in [0, 1] (got {value!r})")
    return t


def select_images(store: Store, config: dict, kind: str) -> list[ImageRecord]:
    """The images a config names: ``image_ids``, a ``split``, ``unlabeled`` ones, or all."""
    split, unlabeled, ids = config.get("split"), bool(config.get("unlabeled")), list(config.get("image_ids") or [])
    if sum((split is not None, unlabeled, bool(ids))) > 1:
        raise PrelabelError("choose one of a split, unlabeled images or image ids")
    if ids:
        known = {im.id: im for im in store.images()}
        missing = [i for i in ids if i not in known]
        if missing:
            raise PrelabelError(f"image {missing[0]} is not in the project")
        return [known[int(i)] for i in ids]
    if split is not None:
        images = store.images(split)
        if not images:
            have = ", ".join(sorted({im.split for im in store.images()})) or "none"
            raise PrelabelError(f"split {split!r} has no images; splits with images: {have}")
        return images
    images = store.images()
    if unlabeled:
        labeled = labeled_image_ids(store, kind)
        images = [im for im in images if im.id not in labeled]
    return images


def clear_labels(store: Store, image_id: int, kind: str) -> int:
    """Delete an image's labels of this kind (annotations, or its tags); returns how many."""
    if kind == "classification":
        tags = store.image_tags(image_id)
        for t in tags:
            store.set_image_tag(image_id, t, False)
        return len(tags)
    return len(store.delete_annotations(a.id for a in store.annotations(image_id) if a.id is not None))


def store_suggestions(store: Store, image_id: int, suggestions: list[Suggestion], provenance: str,
                      replace_labels: bool, kind: str) -> int:
    """One transaction: drop the run's pending suggestions on the image (and its labels when
    ``replace_labels``), add the new ones; returns the number of labels deleted."""
    with store.transaction():
        store.delete_suggestions([image_id], provenance=provenance)
        removed = clear_labels(store, image_id, kind) if replace_labels else 0
        store.add_suggestions(image_id, suggestions)
    return removed


def prelabel_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Pre-label images with a checkpoint's suggestions (see the module docstring)."""
    project, checkpoint = str(config["project"]), str(config["checkpoint"])
    threshold = check_threshold(config.get("threshold", 0.5))
    overwrite = bool(config.get("overwrite_manual", False))
    assistant = Assistant(checkpoint, str(config.get("device", "auto")), cache_size=1)
    assistant.load()
    kind, provenance = assistant.kind, assistant.provenance
    done = suggested = skipped = replaced = unreadable = 0
    try:
        with Store(project) as store:
            missing = sorted(set(assistant.labels.ids) - project_label_ids(store, kind))
            if missing and len(missing) == len(assistant.labels.ids):
                raise PrelabelError(f"checkpoint {checkpoint} predicts ids {missing} that project {project} "
                                    "does not have")
            if missing:
                sink(Notice(f"the project no longer has {len(missing)} of the model's "
                            f"{'tags' if kind == 'classification' else 'categories'}; "
                            "those are not suggested", "warning"))
            images = select_images(store, config, kind)
            labeled = labeled_image_ids(store, kind)
            for i, im in enumerate(images):
                cancel.check()
                sink(Progress(i, len(images), im.path))
                has_labels = im.id in labeled
                if has_labels and not overwrite:
                    skipped += 1
                    continue
                try:
                    sugs = assistant.suggest(store, im.id, threshold)
                except ImageReadError as e:
                    unreadable += 1
                    sink(Notice(f"{im.path}: skipped, {e}", "warning"))
                    continue
                replaced += store_suggestions(store, im.id, sugs, provenance, has_labels, kind)
                done += 1
                suggested += len(sugs)
            sink(Progress(len(images), len(images), "done"))
    finally:
        assistant.unload()
    return {"images": done, "suggestions": suggested, "skipped_manual": skipped, "replaced": replaced,
            "unreadable": unreadable, "provenance": provenance, "kind": kind, "checkpoint": checkpoint}
