"""Device helpers: pick a torch device and move (nested) batches onto it.

``select_device("auto")`` prefers CUDA, then MPS, then CPU; an explicit device that is missing is a
``DeviceError`` with one line for the user. ``to_device`` moves every tensor of a batch — nested
dicts, lists and tuples included — so a task's extra target keys (a semantic mask, a tag vector)
reach the model; non-tensor leaves (ids, names) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

import torch


class DeviceError(RuntimeError):
    """The asked-for device does not exist on this machine."""


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; ``cuda`` means ``cuda:<local_rank>``."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} was asked for but CUDA is not available on this machine")
    if name == "mps" and not has_mps:
        raise DeviceError("device 'mps' was asked for but MPS is not available on this machine")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    if name not in ("cpu", "mps") and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {name!r}; expected auto, cuda, cuda:N, mps or cpu")
    return torch.device(name)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor moved to ``device`` as a plain ``torch.Tensor`` (tv_tensors unwrapped)."""
    if isinstance(obj, torch.Tensor):
        return obj.as_subclass(torch.Tensor).to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    return obj
