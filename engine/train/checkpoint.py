"""Checkpoints: ``<project>/runs/<run_id>/{best,last}.pt``, always read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, dicts, lists, strings and numbers::

    {"format": "anchorlab-detector/1", "kind": "best" | "last",
     "model": state_dict, "optimizer": state_dict | None,
     "config": TrainConfig.to_dict(), "spec": DetectorSpec.to_dict(),
     "label_map": {category_id: label 1..K}, "category_names": [name of label 1, ...],
     "run_id": int, "step": int (optimisation steps done), "epoch": int (0-based, last epoch trained),
     "metrics": {"map": ..., "map50": ..., ...}, "best": {"metric": str, "value": float, "step": int},
     "saved_at": unix time}

Files are written to a temporary name and renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn

FORMAT = "anchorlab-detector/1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not an AnchorLab detector checkpoint."""


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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle/zip errors differ by torch version
        raise CheckpointError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an AnchorLab detector checkpoint")
    return ckpt


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of a model's tensors (unwraps DistributedDataParallel)."""
    model = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def load_detector(checkpoint_path: str | Path, device: str | torch.device = "cpu"
                  ) -> tuple[nn.Module, DetectorSpec, dict[int, int], dict]:
    """Rebuild a detector from a checkpoint, in eval mode on ``device``.

    Returns ``(model, spec, label_map {category_id: label}, meta)``; ``meta`` is the rest of the
    checkpoint without the weights and optimizer state (config, run_id, step, epoch, metrics, ...).
    """
    ckpt = load_checkpoint(checkpoint_path)
    spec = DetectorSpec.from_dict({**ckpt["spec"], "pretrained": False})
    model, _ = build_faster_rcnn(spec)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {checkpoint_path} does not match its model spec: {e}") from e
    model.to(device).eval()
    label_map = {int(k): int(v) for k, v in ckpt["label_map"].items()}
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    return model, spec, label_map, meta
