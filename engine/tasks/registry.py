"""THE registry of model families: one line per task, ``name -> "module:attribute"``.

Modules are imported on first use, so ``anchorlab models`` and the Train panel do not load every
network. Adding a family = one module implementing ``engine.tasks.base.Task`` + one line here.
"""

from __future__ import annotations

import importlib

from engine.tasks.base import Task

TASKS: dict[str, str] = {
    "faster_rcnn": "engine.tasks.faster_rcnn:TASK",
    "yolo_v1": "engine.tasks.yolo_v1:TASK",
    "tagger": "engine.tasks.tagger:TASK",
    "deeplab": "engine.tasks.deeplab:TASK",
}


class UnknownTask(ValueError):
    """A model name that is not registered; the message lists the valid ones."""


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str) -> Task:
    """The registered task ``name``; UnknownTask (one line, valid names listed) otherwise."""
    if name not in TASKS:
        raise UnknownTask(f"unknown model {name!r}; valid models: {', '.join(TASKS)}")
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def describe(task: Task) -> dict:
    """Plain-data description of a task (``anchorlab models``, the Train panel, the plots)."""
    return {"name": task.name, "kind": task.kind, "backbones": list(task.backbones),
            "metrics": list(task.metric_names), "selection_metric": task.selection_metric,
            "higher_is_better": bool(task.higher_is_better), "capabilities": sorted(task.capabilities)}


def describe_all() -> list[dict]:
    return [describe(get_task(n)) for n in TASKS]
