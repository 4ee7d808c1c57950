"""The Task protocol: what every model family (Faster R-CNN, YOLOv1, DeepLab, tagger) provides.

The trainer, its hooks, checkpoints, the CLI, the Train panel and the plots read everything
model-specific from a task; there is no ``if model == ...`` anywhere else. A new family is one
module implementing ``Task`` plus one line in ``engine.tasks.registry.TASKS``; the contract test
(``tests/engine/test_task_contract.py``) is its checklist (see docs/adding-a-model.md).

Conventions every task keeps:

- ``model(images, targets)`` in train mode returns ``{"loss_<name>": scalar tensor}`` (the
  torchvision convention), so the trainer, DDP and validation losses are task-agnostic. ``images``
  is a list of (3, H, W) float32 tensors in [0, 1]; ``targets`` a list of dicts of tensors.
- ``predict`` takes original images (H, W, 3) uint8 and returns results in **original image
  pixels**: detection ``{"boxes" (N, 4) float32 xyxy, "scores" (N,), "labels" (N,) int64}``,
  segmentation ``{"class_map" (H, W) int64, "probs" (C, H, W) float32}``, classification
  ``{"scores" (T,) float32}``. Labels are model labels (``LabelSpace``), not category ids.
- ``evaluate`` returns exactly ``metric_names``.

Optional methods (callers look them up with ``getattr``; see ``OptionalTaskMethods``):
``data_notices(records, labels, spec) -> list[str]`` — what the user should know about the spec
chosen from the data (e.g. the tagger's mode and why); the training job emits each as a Notice.
``evaluate_details(model, loader, device, cancel, **options) -> dict`` — ``metric_names`` plus
JSON-able details (e.g. per-class numbers); ``eval_job`` uses it instead of ``evaluate`` when present,
passing task options only when the user gave some (segmentation: ``crf``, ``crf_params``).
``step_stats(model) -> dict[str, float]`` — numbers of the last training step that are not losses
(Faster R-CNN: fg/bg anchors, RoI foreground fraction, easy-negative loss share); the trainer streams
them as ``stat_<name>`` in ``StepLosses.losses``, never adding them to ``loss``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from engine.config import TrainConfig
from engine.data.dataset import SampleRecord
from engine.jobs import CancelToken
from engine.project.store import Store

Kind = Literal["detection", "segmentation", "classification"]
Capability = Literal["xray", "suggest", "crf"]


class TaskDataError(ValueError):
    """The project's data cannot train this task (e.g. no masks for a segmenter); one line."""


@dataclass(frozen=True)
class LabelSpace:
    """What a model predicts: ``ids`` (category or tag ids of the project) and their names.

    Model label of ``ids[i]`` is ``i + 1`` when ``background`` (label 0 = background), else ``i``.
    """

    ids: tuple[int, ...]
    names: tuple[str, ...]
    background: bool = True

    @property
    def label_map(self) -> dict[int, int]:
        """Project id -> model label."""
        off = 1 if self.background else 0
        return {cid: i + off for i, cid in enumerate(self.ids)}

    @property
    def num_outputs(self) -> int:
        """Number of model classes, background included when there is one."""
        return len(self.ids) + (1 if self.background else 0)

    @staticmethod
    def from_label_map(label_map: dict[int, int], names: Sequence[str], background: bool) -> LabelSpace:
        ids = tuple(sorted(label_map, key=label_map.get))
        return LabelSpace(ids, tuple(names), background)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode under ``no_grad``; its train/eval flag restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


class Spec(Protocol):
    """A task's model description, saved with every checkpoint (``to_dict``) and rebuilt from it."""

    backbone: str

    def to_dict(self) -> dict: ...


@runtime_checkable
class Task(Protocol):
    name: str
    kind: Kind
    backbones: tuple[str, ...]
    metric_names: tuple[str, ...]
    selection_metric: str  # one of metric_names
    higher_is_better: bool  # direction of selection_metric
    capabilities: frozenset[str]  # optional features: "xray", "suggest", "crf"
    # optional: ``options`` — the engine.config.MODEL_OPTIONS fields this task reads (others are refused)

    def label_space(self, store: Store) -> LabelSpace:
        """Categories (or tags) this task learns from the project."""

    def check_data(self, records: list[SampleRecord], labels: LabelSpace) -> None:
        """Raise TaskDataError (one line) when ``records`` cannot train this task."""

    def spec_from_data(self, cfg: TrainConfig, records: list[SampleRecord], labels: LabelSpace) -> Spec:
        """The model spec for this config and data (sizes from the data unless set)."""

    def spec_from_dict(self, d: dict) -> Spec:
        """Inverse of ``spec.to_dict()``; missing keys take the dataclass defaults."""

    def build(self, spec: Spec) -> tuple[nn.Module, list[str]]:
        """A fresh model and notices for the user (e.g. 'training from scratch')."""

    def dataset(self, records: list[SampleRecord], labels: LabelSpace, cfg: TrainConfig | None,
                train: bool) -> Dataset:
        """Items ``(image (3, H, W) float [0, 1], target dict)``; ``train`` adds augmentation."""

    def collate(self, batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
        """A list of items -> (images, targets)."""

    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device,
                 cancel: CancelToken | None) -> dict[str, float]:
        """Metrics named exactly ``metric_names`` on an un-augmented loader."""

    def predict(self, model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
        """Eval-mode predictions in original image pixels (see the module docstring)."""


class OptionalTaskMethods(Protocol):
    """Methods a task MAY add (see the module docstring); never required by ``Task``."""

    def data_notices(self, records: list[SampleRecord], labels: LabelSpace, spec: Spec) -> list[str]:
        """One-line notices about the data-driven choices in ``spec``."""

    def evaluate_details(self, model: nn.Module, loader: DataLoader, device: torch.device,
                         cancel: CancelToken | None, **options: Any) -> dict[str, Any]:
        """``metric_names`` plus details, JSON-able (no NaN: use None)."""

    def step_stats(self, model: nn.Module) -> dict[str, float]:
        """Numbers of the last training forward (names without the ``stat_`` prefix the trainer adds)."""
