"""``segment_job``: one image's segmentation before and after the dense CRF (the GUI's Segmentation dock).

Config (plain dict): ``project`` (folder), ``image`` (image id), ``checkpoint`` (path) or ``run`` (run id ->
its best, else last, checkpoint), ``crf`` (``"exact"`` | ``"fast"`` | ``"none"``, default ``"fast"``),
``crf_params`` ({CrfParams fields}, checked before anything loads), ``device`` (default ``"cpu"``; ``"auto"``:
CUDA when there is one; the exact CRF always runs on the CPU).

The network runs once per (checkpoint file, image file): the model is kept loaded between images and the
probabilities of the last few images are kept here (``_State``), so a call that changes only the CRF
parameters or the backend re-runs only the CRF. The result's ``predicted`` says whether the model ran.

Emits one ``ArraysReady(kind="segmentation", arrays, meta)`` with, in original image pixels:

- ``probs`` (C, H, W) float32: the network's softmax (sums to 1 over C);
- ``before`` / ``after`` (H, W) int64: the argmax before / after the CRF (``after`` = ``before`` with ``crf`` none);
- ``uncertainty_before`` / ``uncertainty_after`` (H, W) float32 in [0, 1]: entropy / log(C) of the
  network's and of the CRF's marginals;

and ``meta``: ``image_id``, ``run_id``, ``checkpoint``, ``task``, ``label_names`` (per model label),
``label_categories`` (project category id per model label, None for background), ``crf``, ``crf_params``,
``predicted``, ``predict_ms``, ``crf_ms``, ``changed_fraction`` (share of pixels whose label the CRF
changed), ``provenance`` (``model:<run id>``) and ``regions``:
``{"before": [...], "after": [...]}``, each region a dict ``category_id``, ``category``, ``label``,
``score``, ``area``, ``geometry`` (a ``Mask`` in original pixels), one per connected component of each
non-background class (``engine.inference.regions.class_regions``, as ``predict --write`` stores them).
Returns the summary: ``image_id``, ``run_id``, ``predicted``, ``crf``, ``predict_ms``, ``crf_ms``,
``regions_before``, ``regions_after``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.crf import CrfParams, dense_crf
from engine.crf.exact import INSTALL_HINT, exact_available
from engine.device import DeviceError, select_device
from engine.events import ArraysReady, Progress
from engine.inference.jobs import InferenceError
from engine.inference.regions import class_regions
from engine.jobs import CancelToken, Sink
from engine.project.imageio import read_rgb
from engine.project.shapes import Mask
from engine.project.store import Store, StoreError
from engine.tasks.checkpoint import CheckpointError, load_model

KEEP_IMAGES = 4  # probabilities kept for this many (checkpoint, image) pairs


class _State:
    """The job's state between calls: one loaded model and the last images' inputs and probabilities."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model_key: tuple | None = None
        self.loaded: tuple | None = None  # load_model(...)
        self.images: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()  # key -> (image, probs)

    def clear(self) -> None:
        with self.lock:
            self.model_key, self.loaded = None, None
            self.images.clear()


_state = _State()


def clear_cache() -> None:
    """Forget the loaded model and the cached probabilities (tests; a project switch)."""
    _state.clear()


def _file_key(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError as e:
        raise InferenceError(f"{path}: {e.strerror or e}") from e
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _checkpoint(store: Store, config: dict) -> str:
    if config.get("checkpoint"):
        return str(config["checkpoint"])
    run = config.get("run")
    if run in (None, ""):
        raise InferenceError("give a checkpoint file or a run id")
    try:
        return str(store.run_checkpoint(int(run)))
    except (StoreError, ValueError) as e:
        raise InferenceError(f"run: {e}") from e


def crf_options(config: dict) -> tuple[str, CrfParams]:
    """The checked backend and parameters of a config (InferenceError with one line otherwise)."""
    backend = str(config.get("crf") or "fast")
    if backend not in ("none", "exact", "fast"):
        raise InferenceError(f"unknown CRF backend {backend!r}; expected exact, fast or none")
    raw = config.get("crf_params") or {}
    if not isinstance(raw, dict):
        raise InferenceError(f"CRF parameters must be a mapping, got {raw!r}")
    try:
        params = CrfParams.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise InferenceError(f"bad CRF parameters: {e}") from e
    if backend == "exact" and not exact_available():
        raise InferenceError(f"the exact CRF needs the `pydensecrf` module: {INSTALL_HINT}; the fast one needs nothing")
    return backend, params


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """(C, H, W) probabilities -> (H, W) float32 entropy / log(C) in [0, 1] (0: certain, 1: uniform)."""
    c = probs.shape[0]
    if c < 2:
        return np.zeros(probs.shape[1:], np.float32)
    p = np.clip(probs, 1e-12, 1.0)
    ent = -(probs * np.log(p)).sum(0)
    return np.clip(ent / np.log(c), 0.0, 1.0).astype(np.float32)


def regions_of(class_map: np.ndarray, probs: np.ndarray, categories: list[int | None],
               names: list[str]) -> list[dict[str, Any]]:
    """One dict per connected class region of ``class_map`` (see the module docstring); background skipped."""
    out = []
    for r in class_regions(class_map, probs):
        cid = categories[r.label] if 0 <= r.label < len(categories) else None
        if cid is None:
            continue
        out.append({"category_id": int(cid), "category": names[r.label], "label": r.label, "score": r.score,
                    "area": r.area, "geometry": Mask.from_array(r.mask)})
    return out


def _load(checkpoint: str, device: torch.device) -> tuple:
    """``load_model`` of ``checkpoint``, reused while the file is unchanged (``_state.lock`` held)."""
    key = (*_file_key(Path(checkpoint)), str(device))
    if _state.model_key != key:
        _state.model_key, _state.loaded = None, None
        _state.images.clear()
        try:
            _state.loaded = load_model(checkpoint, device)
        except CheckpointError as e:
            raise InferenceError(str(e)) from e
        _state.model_key = key
    return _state.loaded


def segment_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Probabilities (cached), CRF and regions of one image (see the module docstring)."""
    if not config.get("project"):
        raise InferenceError("no project folder given")
    if config.get("image") in (None, ""):
        raise InferenceError("no image id given")
    backend, params = crf_options(config)
    try:
        device = select_device(str(config.get("device") or "cpu"))
    except DeviceError as e:
        raise InferenceError(str(e)) from e
    sink(Progress(0, 3, "loading model"))
    with Store(str(config["project"])) as store:
        checkpoint = _checkpoint(store, config)
        try:
            rec = store.image(int(config["image"]))
        except (StoreError, ValueError) as e:
            raise InferenceError(f"image: {e}") from e
        image_path = store.image_path(rec)
    cancel.check()
    with _state.lock:
        task, model, _, labels, meta = _load(checkpoint, device)
        if task.kind != "segmentation":
            raise InferenceError(f"{task.name} is a {task.kind} model; the segmentation view needs a segmentation one")
        key = (_state.model_key, *_file_key(image_path))
        cached = _state.images.get(key)
        predicted, predict_ms = cached is None, 0.0
        if cached is None:
            image = read_rgb(image_path)
            cancel.check()
            sink(Progress(1, 3, "running the network"))
            t0 = time.perf_counter()
            with torch.no_grad():
                probs = task.predict(model, [image], device)[0]["probs"]
            predict_ms = 1000 * (time.perf_counter() - t0)
            probs = np.ascontiguousarray(probs, np.float32)
            _state.images[key] = (image, probs)
            while len(_state.images) > KEEP_IMAGES:
                _state.images.popitem(last=False)
        else:
            _state.images.move_to_end(key)
            image, probs = cached
    cancel.check()
    t0 = time.perf_counter()
    if backend == "none":
        q = probs
    else:
        sink(Progress(2, 3, f"dense CRF ({backend})"))
        q = dense_crf(image, probs, params, backend, device=str(device) if backend == "fast" else "cpu")
    crf_ms = 1000 * (time.perf_counter() - t0)
    cancel.check()
    before, after = probs.argmax(0).astype(np.int64), q.argmax(0).astype(np.int64)
    names = (["background"] if labels.background else []) + list(labels.names)
    cats: list[int | None] = [None] * labels.num_outputs
    for cid, lab in labels.label_map.items():
        cats[lab] = int(cid)
    run_id = int(meta.get("run_id", 0) or (config.get("run") or 0))
    regions = {"before": regions_of(before, probs, cats, names), "after": regions_of(after, q, cats, names)}
    arrays = {"probs": probs, "before": before, "after": after, "uncertainty_before": uncertainty(probs),
              "uncertainty_after": uncertainty(q)}
    info = {"image_id": int(rec.id), "run_id": run_id, "checkpoint": checkpoint, "task": task.name,
            "label_names": names, "label_categories": cats, "crf": backend, "crf_params": params.to_dict(),
            "predicted": predicted, "predict_ms": round(predict_ms, 2), "crf_ms": round(crf_ms, 2),
            "changed_fraction": float((before != after).mean()),
            "provenance": f"model:{run_id}", "regions": regions}
    sink(ArraysReady(kind="segmentation", arrays=arrays, meta=info))
    sink(Progress(3, 3, "done"))
    return {"image_id": int(rec.id), "run_id": run_id, "predicted": predicted, "crf": backend,
            "predict_ms": info["predict_ms"], "crf_ms": info["crf_ms"],
            "regions_before": len(regions["before"]), "regions_after": len(regions["after"])}
