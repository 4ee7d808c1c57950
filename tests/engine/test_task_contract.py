"""The contract every registered task keeps (docs/adding-a-model.md uses it as the checklist).

Parametrised over ``engine.tasks.registry.task_names()``: a new family is tested the moment its
registry line exists. ``OVERFIT`` holds each task's small overfit recipe (the only per-task entry).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from train_hooks import InjectNaN

from engine.config import TrainConfig
from engine.data.dataset import snapshot_split
from engine.events import StepLosses
from engine.jobs import CancelToken, Collector
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.checkpoint import load_model, save_checkpoint
from engine.tasks.registry import describe, get_task, task_names
from engine.train.trainer import NonFiniteLoss

# per task: TrainConfig overrides for "overfit one batch" on the small demo, and the loss fraction to reach
OVERFIT: dict[str, tuple[dict, float]] = {
    "faster_rcnn": (dict(overfit_steps=40, optimizer="sgd", lr=0.02, min_size=128, max_size=192), 0.5),
    "yolo_v1": (dict(overfit_steps=60, lr=0.002, min_size=128), 0.3),
    "tagger": (dict(overfit_steps=40, lr=0.003, min_size=64), 0.3),
    "deeplab": (dict(overfit_steps=40, lr=0.003, min_size=96), 0.5),
}


@pytest.fixture(scope="module")
def trained(demo_project, tmp_path_factory) -> dict:
    """One overfit run per task (module-scoped: the contract's other checks reuse it)."""
    return {}


def _overfit(name: str, demo_project, tmp_path_factory, cache: dict) -> tuple[dict, list, object]:
    if name not in cache:
        import shutil

        root = tmp_path_factory.mktemp(name) / "project"
        shutil.copytree(demo_project, root)
        extra, _ = OVERFIT.get(name, ({}, 0.5))
        cfg = TrainConfig(project=str(root), model=name, backbone=get_task(name).backbones[0], overfit_one_batch=True,
                          batch_size=2, warmup_steps=3, device="cpu", **extra)
        sink = Collector()
        result = train_job_(cfg, sink)
        cache[name] = (result, sink.of(StepLosses), root)
    return cache[name]


def train_job_(cfg: TrainConfig, sink: Collector, hooks: list | None = None) -> dict:
    from engine.train.job import train_job

    return train_job(cfg.to_dict(), sink, CancelToken(), hooks=hooks)


@pytest.mark.parametrize("name", task_names())
def test_declares_what_the_gui_and_cli_read(name: str) -> None:
    task = get_task(name)
    d = describe(task)
    assert d["kind"] in ("detection", "segmentation", "classification")
    assert task.backbones and task.metric_names and task.selection_metric in task.metric_names
    assert set(task.capabilities) <= {"xray", "suggest", "crf"}
    assert name in OVERFIT, "add the task's overfit recipe to OVERFIT"


@pytest.mark.parametrize("name", task_names())
def test_overfits_one_batch_and_evaluates_its_declared_metrics(name, demo_project, tmp_path_factory, trained) -> None:
    result, steps, _ = _overfit(name, demo_project, tmp_path_factory, trained)
    _, fraction = OVERFIT[name]
    first = steps[0].losses["loss"]
    assert min(e.losses["loss"] for e in steps[-5:]) < fraction * first, [round(e.losses["loss"], 3) for e in steps]
    task = get_task(name)
    assert set(result["metrics"]) == set(task.metric_names)
    assert all(np.isfinite(v) for v in result["metrics"].values())


def _image_pair(root) -> tuple[np.ndarray, np.ndarray]:
    with Store(root) as store:
        rec = [r for r in snapshot_split(store, "train") if r.annotations][0]
    img = read_rgb(rec.path)
    return img, np.ascontiguousarray(img.repeat(2, axis=0).repeat(2, axis=1))


@pytest.mark.parametrize("name", task_names())
def test_checkpoint_round_trip_and_original_pixel_predictions(name, demo_project, tmp_path_factory, trained,
                                                              tmp_path) -> None:
    result, _, root = _overfit(name, demo_project, tmp_path_factory, trained)
    task, model, spec, labels, meta = load_model(result["checkpoint"])
    img, big = _image_pair(root)
    a = task.predict(model, [img], torch.device("cpu"))[0]
    # a rebuilt copy saved and loaded again predicts exactly the same
    ckpt = torch.load(result["checkpoint"], map_location="cpu", weights_only=True)
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "saved_at")}
    copy_path = save_checkpoint(tmp_path / "copy.pt", payload)
    task2, model2, _, _, _ = load_model(copy_path)
    b = task2.predict(model2, [img], torch.device("cpu"))[0]
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    # the same picture at twice the size: the model input is resized to the same size, the
    # predictions must come back in each image's own pixels
    c = task.predict(model, [big], torch.device("cpu"))[0]
    h, w = img.shape[:2]
    if task.kind == "detection":
        assert len(a["boxes"]) > 0, "the overfit detector finds nothing on its training image"
        assert (a["boxes"][:, 0::2] <= w + 1e-3).all() and (a["boxes"][:, 1::2] <= h + 1e-3).all()
        top = torch.as_tensor(a["boxes"][:5])
        ious = torchvision.ops.box_iou(top * 2, torch.as_tensor(c["boxes"]))
        assert (ious.max(1).values > 0.7).float().mean() >= 0.6, ious.max(1).values
    elif task.kind == "segmentation":
        assert a["class_map"].shape == (h, w) and c["class_map"].shape == (2 * h, 2 * w)
        up = a["class_map"].repeat(2, 0).repeat(2, 1)
        assert (up == c["class_map"]).mean() > 0.9
    else:
        assert a["scores"].shape == (len(labels.ids),)
        np.testing.assert_allclose(a["scores"], c["scores"], atol=0.1)


@pytest.mark.parametrize("name", task_names())
def test_nan_through_after_forward_stops_the_run_naming_the_step(name, demo_copy) -> None:
    task = get_task(name)
    extra, _ = OVERFIT[name]
    cfg = TrainConfig(project=str(demo_copy), model=name, backbone=task.backbones[0], epochs=1, batch_size=2,
                      max_images=6, val_split="", device="cpu",
                      **{k: v for k, v in extra.items() if k in ("min_size", "max_size")})
    with pytest.raises(NonFiniteLoss, match=re.compile(r"non-finite loss at step 2: .*=nan")):
        train_job_(cfg, Collector(), hooks=[InjectNaN(2)])


def test_model_cache_loads_a_checkpoint_once_until_its_file_changes(demo_project, tmp_path_factory, trained,
                                                                     tmp_path) -> None:
    import os

    from engine.tasks.checkpoint import CheckpointError, ModelCache

    result, _, _ = _overfit("faster_rcnn", demo_project, tmp_path_factory, trained)
    path = tmp_path / "model.pt"
    path.write_bytes(Path(result["checkpoint"]).read_bytes())
    cache = ModelCache()
    with cache.use(path) as first:
        assert first[0].name == "faster_rcnn" and not first[1].training
    with cache.use(path) as again:
        assert again is first  # the same file: no second load
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file was rewritten
    with cache.use(path) as third:
        assert third is not first
    cache.clear()
    with cache.use(path) as fourth:
        assert fourth is not third
    with pytest.raises(CheckpointError, match="missing.pt"), cache.use(tmp_path / "missing.pt"):
        pass
