"""What the Train panel and the plots offer, in ONE place: models, backbones, metrics.

Today these come from the Faster R-CNN module; when the engine's task registry (``engine.tasks``) lands,
only this module changes: ``models()`` lists the registered tasks, ``backbones(model)`` and
``metrics(model)`` read them from the task.
"""

from __future__ import annotations

from engine.models.faster_rcnn import BACKBONES

MODELS: tuple[tuple[str, str], ...] = (("Faster R-CNN", "faster_rcnn"),)  # (label, registry name)
METRICS: tuple[str, ...] = ("map50", "map", "map75", "mar100")  # higher is better
SUMMARY_METRICS: tuple[str, ...] = ("map", "map50")  # shown in messages and drawn in the plots
EARLY_STOP_METRICS: tuple[str, ...] = (*METRICS, "val_loss")


def models() -> tuple[tuple[str, str], ...]:
    """(label, name) of every model the Train panel offers."""
    return MODELS


def backbones(model: str = "faster_rcnn") -> tuple[str, ...]:
    """Backbones of ``model``."""
    return tuple(BACKBONES)
