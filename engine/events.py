"""Events the engine emits: frozen dataclasses holding floats, strings and numpy arrays only.

Tensors are detached, moved to CPU and converted before they become an event. Coordinates in
events are original-image pixels (xyxy), never the model's resized/padded frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Event:
    """Base class; ``job`` is the id of the job that emitted it ('' if none)."""

    job: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class Progress(Event):
    """Generic progress: ``done`` of ``total`` units, with a short message."""

    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should read (e.g. 'training from scratch: no pretrained weights')."""

    message: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True)
class RunStarted(Event):
    run_id: int
    config: dict
    total_steps: int
    steps_per_epoch: int


@dataclass(frozen=True)
class StepLosses(Event):
    """Training losses of one optimisation step; ``losses`` keys are ``loss_<name>`` plus ``loss``."""

    run_id: int
    step: int
    epoch: int
    losses: dict[str, float]
    lr: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochSummary(Event):
    """Validation results after an epoch: ``val_losses`` like StepLosses, ``metrics`` e.g. map, map50."""

    run_id: int
    step: int
    epoch: int
    val_losses: dict[str, float]
    metrics: dict[str, float]
    is_best: bool
    early_stop: bool = False


@dataclass(frozen=True)
class RunFinished(Event):
    """A run ended. ``status``: finished | stopped | failed | early_stopped."""

    run_id: int
    status: str
    metrics: dict[str, float]
    checkpoint: str
    message: str = ""


@dataclass(frozen=True)
class JobFinished(Event):
    """Any job ended successfully; ``result`` is a plain dict."""

    result: dict


@dataclass(frozen=True)
class JobFailed(Event):
    """A job raised or refused its input; ``message`` is one line for the user."""

    message: str
    detail: str = ""


@dataclass(frozen=True)
class ArraysReady(Event):
    """A job produced named arrays (e.g. an X-ray capture or augmentation preview)."""

    kind: str
    arrays: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
