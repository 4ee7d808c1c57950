"""Checkpoints: ``<project>/runs/<run_id>/{best,last}.pt``, always read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, dicts, lists, strings and numbers::

    {"format": "anchorlab-checkpoint/2", "task": registered task name, "kind": "best" | "last",
     "model": state_dict, "optimizer": state_dict | None,
     "config": TrainConfig.to_dict(), "spec": <task spec>.to_dict(),
     "label_map": {project id: model label}, "category_names": [name per label, background excluded],
     "run_id": int, "step": int (optimisation steps done), "epoch": int (0-based, epoch in progress),
     "epoch_batches": int (batches of ``epoch`` done; 0 = epoch complete), "metrics": {...},
     "best": {"metric": str, "value": float, "step": int}, "saved_at": unix time}

Version 1 files (``anchorlab-detector/1``, no ``task``) are Faster R-CNN. Files are written to a
temporary name and renamed, so a crash never leaves a half-written file. ``load_model`` rebuilds
the model through the task registry, dispatching on the stored task name.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.tasks.base import LabelSpace, Spec, Task
from engine.tasks.registry import UnknownTask, get_task

FORMAT = "anchorlab-checkpoint/2"
OLD_FORMATS = {"anchorlab-detector/1": "faster_rcnn"}


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not an AnchorLab checkpoint; one line."""


def run_dir(project: str | Path, run_id: int) -> Path:
    return Path(project) / "runs" / str(run_id)


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (see the module docstring) atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "saved_at": time.time(), **payload}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_weights_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with one-line errors: missing, empty, text, code pickles."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(64)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):
        raise CheckpointError(f"checkpoint {path} is not a torch weights file (it looks like text or another format)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"checkpoint {path} is not a plain weights file (it holds code or objects); "
                              "AnchorLab never unpickles code") from e
    except Exception as e:  # zip/pickle errors differ by torch version
        raise CheckpointError(f"checkpoint {path} cannot be read: {type(e).__name__}: {str(e).splitlines()[0]}"
                              ) from e


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read an AnchorLab checkpoint; ``ckpt["task"]`` is always set (version 1 -> faster_rcnn)."""
    ckpt = read_weights_file(path, map_location)
    if not isinstance(ckpt, dict) or (ckpt.get("format") != FORMAT and ckpt.get("format") not in OLD_FORMATS):
        raise CheckpointError(f"checkpoint {path} is not an AnchorLab checkpoint (a bare state dict? "
                              "use it with --weights)")
    if ckpt.get("format") in OLD_FORMATS:
        ckpt = {**ckpt, "task": OLD_FORMATS[ckpt["format"]]}
    for key in ("task", "spec", "model", "label_map"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} has no {key!r}: it cannot rebuild a model")
    return ckpt


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of a model's tensors (unwraps DistributedDataParallel)."""
    model = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def labels_of(ckpt: dict) -> LabelSpace:
    """The label space stored in a checkpoint."""
    label_map = {int(k): int(v) for k, v in ckpt["label_map"].items()}
    background = min(label_map.values(), default=1) >= 1
    return LabelSpace.from_label_map(label_map, list(ckpt.get("category_names") or []), background)


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[Task, nn.Module, Spec, LabelSpace, dict]:
    """Rebuild a model from a checkpoint, in eval mode on ``device``.

    Returns ``(task, model, spec, labels, meta)``; ``meta`` is the checkpoint without weights and
    optimizer state (config, run_id, step, epoch, metrics, ...).
    """
    ckpt = load_checkpoint(path)
    try:
        task = get_task(str(ckpt["task"]))
    except UnknownTask as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from e
    spec = task.spec_from_dict({**ckpt["spec"], "pretrained": False})
    model, _ = task.build(spec)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} does not match its {task.name} spec: "
                              f"{str(e).splitlines()[0]}") from e
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    return task, model, spec, labels_of(ckpt), meta


class ModelCache:
    """The last checkpoint ``load_model`` loaded, reused while its file is unchanged (path, mtime, size) and
    the device is the same: a job that looks at image after image loads the model once. Thread-safe:
    ``use`` holds the cache's lock while the caller uses the model (jobs of different lanes may share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._loaded: tuple[Task, nn.Module, Spec, LabelSpace, dict] | None = None

    @contextmanager
    def use(self, path: str | Path, device: str | torch.device = "cpu"
            ) -> Iterator[tuple[Task, nn.Module, Spec, LabelSpace, dict]]:
        """``load_model(path, device)``'s result (cached), the lock held until the block ends;
        CheckpointError for a missing or bad file."""
        p = Path(path)
        try:
            st = p.stat()
        except OSError as e:
            raise CheckpointError(f"checkpoint {path}: {e.strerror or e}") from e
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size, str(device))
        with self._lock:
            if self._key != key:
                self._key, self._loaded = None, None
                self._loaded = load_model(path, device)
                self._key = key
            yield self._loaded

    def clear(self) -> None:
        """Forget the loaded model."""
        with self._lock:
            self._key, self._loaded = None, None


def load_user_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load a user's own state dict (or an AnchorLab checkpoint's weights) into ``model``.

    Tensors whose shapes differ (e.g. a head for another number of classes) are refused with a
    message naming them; missing keys are reported as notices.
    """
    obj = read_weights_file(path)
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights file {path} is not a state dict of tensors")
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        k = bad[0]
        raise CheckpointError(f"weights file {path} does not fit this model: {k} has shape "
                              f"{tuple(state[k].shape)}, the model needs {tuple(own[k].shape)}"
                              f"{f' ({len(bad) - 1} more)' if len(bad) > 1 else ''}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    notes = [f"loaded {len(state) - len(unexpected)} tensors from {path}"]
    if missing:
        notes.append(f"{len(missing)} tensors not in {path} start from scratch (e.g. {missing[0]})")
    if unexpected:
        notes.append(f"{len(unexpected)} tensors of {path} do not belong to this model and were ignored")
    return notes
