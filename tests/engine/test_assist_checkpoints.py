"""Untrained checkpoints for the assist tests (built, never trained: fast), and the assistant over each kind.

Imported by the other ``test_assist*`` modules (``tests/engine`` is on ``pythonpath``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.assist.suggest import Assistant
from engine.config import TrainConfig
from engine.models.deeplab import DeeplabSpec
from engine.models.tagger import TaggerSpec
from engine.models.yolo_v1_detector import YoloDetectorSpec
from engine.project.store import Store
from engine.tasks.checkpoint import model_state, save_checkpoint
from engine.tasks.registry import get_task


def _save(project: Path, path: Path, task_name: str, spec: object, run_id: int, model: torch.nn.Module) -> str:
    with Store(project) as store:
        labels = get_task(task_name).label_space(store)
    save_checkpoint(path, {"kind": "best", "task": task_name, "model": model_state(model), "optimizer": None,
                           "config": TrainConfig(project=str(project), model=task_name).to_dict(),
                           "spec": spec.to_dict(), "label_map": labels.label_map,  # type: ignore[attr-defined]
                           "category_names": list(labels.names), "run_id": run_id, "step": 0, "epoch": 0,
                           "epoch_batches": 0, "metrics": {}, "best": {}})
    return str(path)


def yolo_checkpoint(project: Path, path: Path, run_id: int = 5) -> str:
    """A random YOLOv1 detector keeping every detection (score threshold 0), at most 5 per image."""
    torch.manual_seed(0)
    with Store(project) as store:
        k = len(store.categories())
    spec = YoloDetectorSpec(num_classes=k, S=4, B=2, input_size=64, hidden=16, head_channels=8,
                            score_threshold=0.0, max_detections=5, pretrained=False)
    model, _ = get_task("yolo_v1").build(spec)
    return _save(project, path, "yolo_v1", spec, run_id, model)


def deeplab_checkpoint(project: Path, path: Path, run_id: int = 7, label: int = 1) -> str:
    """A DeepLab predicting ``label`` everywhere with probability e^3 / (e^3 + C - 1)."""
    task = get_task("deeplab")
    with Store(project) as store:
        labels = task.label_space(store)
    spec = DeeplabSpec(num_classes=labels.num_outputs, min_size=32, max_size=64, pretrained=False)
    model, _ = task.build(spec)
    last = model.net.classifier[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.zero_()
        last.bias[label] = 3.0
    return _save(project, path, "deeplab", spec, run_id, model)


def tagger_checkpoint(project: Path, path: Path, run_id: int = 9) -> str:
    torch.manual_seed(0)
    with Store(project) as store:
        n = len(store.tags())
    spec = TaggerSpec(num_tags=n, input_size=32, pretrained=False)
    model, _ = get_task("tagger").build(spec)
    return _save(project, path, "tagger", spec, run_id, model)


def test_assistant_over_each_kind(demo_project: Path, tmp_path: Path) -> None:
    with Store(demo_project) as store:
        image = store.images("train")[0]
        n_tags, cats = len(store.tags()), {c.id for c in store.categories()}
        yolo = Assistant(yolo_checkpoint(demo_project, tmp_path / "y.pt"), "cpu")
        boxes = yolo.suggest(store, image.id, 0.0)
        assert yolo.kind == "detection" and yolo.provenance == "model:5" and 0 < len(boxes) <= 5
        assert all(s.kind == "box" and s.category_id in cats and 0 <= s.score <= 1 for s in boxes)
        assert all(0 <= s.geometry.xyxy[0] <= s.geometry.xyxy[2] <= image.width for s in boxes)
        assert yolo.suggest(store, image.id, 1.01) == [] and yolo.predictions_run == 1  # cached

        seg = Assistant(deeplab_checkpoint(demo_project, tmp_path / "d.pt"), "cpu")
        (mask,) = seg.suggest(store, image.id, 0.5)
        c = len(cats) + 1
        assert mask.kind == "mask" and mask.category_id == seg.labels.ids[0]
        assert np.isclose(mask.score, np.e ** 3 / (np.e ** 3 + c - 1), atol=1e-4)
        assert mask.geometry.to_array().all() and mask.geometry.size == (image.height, image.width)
        assert 0 < seg.prediction(store, image.id).uncertainty < 1

        tags = Assistant(tagger_checkpoint(demo_project, tmp_path / "t.pt"), "cpu")
        got = tags.suggest(store, image.id, 0.0)
        assert [s.tag_id for s in got] == list(tags.labels.ids) and len(got) == n_tags
        assert all(s.kind == "tag" and s.geometry is None for s in got)
        for a in (yolo, seg, tags):
            a.unload()
            assert len(a) == 0 and not a.loaded
