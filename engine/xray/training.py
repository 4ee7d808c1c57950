"""X-ray snapshots during training: ``on_step(state)``, called by the trainer's ``SnapshotHook``.

Every ``xray_every`` steps the image ``cfg.xray_image`` is captured with the model being trained and
emitted as ``ArraysReady(kind="xray", meta={"live": True, "run_id", "step", "epoch", ...})``, so the
X-ray panel follows the run. The capture is the task's (``engine.xray.job.capture_for(state.task.name)``:
Faster R-CNN's pipeline or the YOLOv1 grid; ``meta["task"]`` says which); it runs the model in eval mode
under ``no_grad`` and restores every module's train/eval flag: BatchNorm statistics, outputs and the RNG
state are untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events import ArraysReady, Notice
from engine.xray.job import XrayError, capture_for, load_image_and_gt

_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, str]] = {}
_failed: set[tuple[int, int]] = set()


def on_step(state: Any) -> None:
    """Capture ``state.cfg.xray_image`` with ``state.model`` and emit it (rank 0, store present)."""
    image_id = int(state.cfg.xray_image)
    if image_id <= 0 or state.store is None:
        return
    key = (int(state.run_id), image_id)
    if key in _failed:
        return
    if key not in _cache:
        try:
            capture_for(state.task.name)
            img, boxes, labels, _, path = load_image_and_gt(state.store, image_id, state.label_map)
        except (XrayError, OSError) as e:
            _failed.add(key)  # say it once, do not retry every step
            state.emit(Notice(f"X-ray snapshot disabled: {e}", "warning"))
            return
        _cache.clear()
        _cache[key] = (img, boxes, labels, path)
    img, boxes, labels, path = _cache[key]
    model = getattr(state.model, "module", state.model)
    capture_fn, _ = capture_for(state.task.name)
    arrays = capture_fn(model, img, boxes, labels, None, int(state.step))
    meta = {"live": True, "task": state.task.name, "run_id": state.run_id, "step": state.step,
            "epoch": state.epoch, "image_id": image_id,
            "image_path": path, "label_names": ["background", *state.category_names],
            "project": str(state.store.root)}
    state.emit(ArraysReady(kind="xray", arrays=arrays, meta=meta))
