"""``engine.inference.segment.segment_job``: the network once per image, the CRF on every call, regions as masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.config import TrainConfig
from engine.events import ArraysReady
from engine.inference import segment
from engine.inference.jobs import InferenceError
from engine.jobs import CancelToken
from engine.models.deeplab import DeeplabSpec
from engine.project.store import Store
from engine.tasks.checkpoint import model_state, save_checkpoint
from engine.tasks.deeplab import TASK


@pytest.fixture()
def checkpoint(demo_project, tmp_path) -> str:
    """A deeplab checkpoint predicting label 1 everywhere."""
    with Store(demo_project) as store:
        labels = TASK.label_space(store)
    spec = DeeplabSpec(num_classes=labels.num_outputs, min_size=64, max_size=128, pretrained=False)
    model, _ = TASK.build(spec)
    last = model.net.classifier[-1]
    nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.zero_()
        last.bias[1] = 3.0
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"kind": "best", "task": "deeplab", "model": model_state(model), "optimizer": None,
                           "config": TrainConfig(project=str(demo_project), model="deeplab").to_dict(),
                           "spec": spec.to_dict(), "label_map": labels.label_map,
                           "category_names": list(labels.names), "run_id": 5, "step": 0, "epoch": 0,
                           "epoch_batches": 0, "metrics": {}, "best": {}})
    segment.clear_cache()
    return str(path)


def _run(config: dict) -> tuple[dict, ArraysReady]:
    events = []
    result = segment.segment_job(config, events.append, CancelToken())
    return result, next(e for e in events if isinstance(e, ArraysReady))


def test_the_network_runs_once_per_image_and_the_crf_every_time(demo_project, checkpoint):
    with Store(demo_project) as store:
        im = store.images()[0]
    cfg = {"project": str(demo_project), "image": im.id, "checkpoint": checkpoint, "crf": "fast",
           "crf_params": {"iterations": 2}}
    first, e = _run(cfg)
    assert first["predicted"] is True
    h, w = im.height, im.width
    assert e.arrays["probs"].shape[1:] == (h, w) and e.arrays["after"].shape == (h, w)
    assert e.arrays["uncertainty_before"].min() >= 0 and e.arrays["uncertainty_before"].max() <= 1
    second, e2 = _run({**cfg, "crf_params": {"iterations": 3, "w_bilateral": 5.0}})
    assert second["predicted"] is False and e2.meta["crf_params"]["iterations"] == 3
    assert e2.arrays["probs"] is e.arrays["probs"]  # the cached probabilities, not a new forward
    regions = e2.meta["regions"]["after"]
    assert len(regions) == 1 and regions[0]["area"] == h * w and e2.meta["provenance"] == "model:5"
    assert regions[0]["geometry"].kind == "mask"


def test_bad_parameters_and_a_missing_exact_backend_are_one_line(demo_project, checkpoint, monkeypatch):
    cfg = {"project": str(demo_project), "image": 1, "checkpoint": checkpoint}
    with pytest.raises(InferenceError, match="theta_alpha"):
        segment.segment_job({**cfg, "crf_params": {"theta_alpha": 0}}, lambda e: None, CancelToken())
    monkeypatch.setattr(segment, "exact_available", lambda: False)
    with pytest.raises(InferenceError, match="pip install pydensecrf2"):
        segment.segment_job({**cfg, "crf": "exact"}, lambda e: None, CancelToken())
    result, _ = _run({**cfg, "crf": "fast", "crf_params": {"iterations": 1}})
    assert result["crf"] == "fast" and np.isfinite(result["crf_ms"])
