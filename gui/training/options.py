"""What the Train panel and the plots offer, in ONE place, read from the engine's task registry.

``models()`` lists the registered tasks (``anchorlab models``); ``backbones(model)``,
``metrics(model)`` and ``early_stop_metrics(model)`` read them from the task, so a new model family
appears here with no GUI change.
"""

from __future__ import annotations

from engine.tasks.registry import describe_all, get_task

LABELS = {"faster_rcnn": "Faster R-CNN", "yolo_v1": "YOLOv1", "deeplab": "DeepLabV3 (+ dense CRF)",
          "tagger": "Tag classifier"}
# drawn in the validation plot and quoted in messages, whichever task a run is
SUMMARY_METRICS: tuple[str, ...] = ("map", "map50", "miou", "boundary_f", "f1_macro")


def models() -> tuple[tuple[str, str], ...]:
    """(label, name) of every registered model."""
    return tuple((LABELS.get(d["name"], d["name"]), d["name"]) for d in describe_all())


def backbones(model: str = "faster_rcnn") -> tuple[str, ...]:
    return tuple(get_task(model).backbones)


def metrics(model: str = "faster_rcnn") -> tuple[str, ...]:
    """The task's metrics, its selection metric first."""
    task = get_task(model)
    return (task.selection_metric, *(m for m in task.metric_names if m != task.selection_metric))


def early_stop_metrics(model: str = "faster_rcnn") -> tuple[str, ...]:
    """("" = the task's selection metric), the task's metrics, then the validation loss."""
    return ("", *metrics(model), "val_loss")
