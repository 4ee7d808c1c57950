"""LR schedule (warm-up, cosine, step) and early stopping that restores the best checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from train_hooks import ParamDigestHook

from engine.config import TrainConfig
from engine.events import EpochSummary, Notice
from engine.jobs import CancelToken, Collector
from engine.train.job import train_job
from engine.train.schedule import lr_at


def test_warmup_then_cosine_step_and_constant() -> None:
    cos = TrainConfig(lr=0.1, schedule="cosine", warmup_steps=10)
    assert lr_at(0, cos, 100, 10) == pytest.approx(0.1 * 0.001)  # warm-up starts at 0.1 % of lr
    ramp = [lr_at(s, cos, 100, 10) for s in range(0, 11)]
    assert all(a < b for a, b in zip(ramp, ramp[1:10]))
    tail = [lr_at(s, cos, 100, 10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(tail, tail[1:]))
    assert tail[-1] == pytest.approx(0.001)  # 1 % of lr at the end

    # under a time limit the cosine follows elapsed time when that is further along than the steps
    assert lr_at(20, cos, 100, 10, time_frac=1.0) == pytest.approx(0.001)
    assert lr_at(20, cos, 100, 10, time_frac=0.1) == lr_at(20, cos, 100, 10)
    # a time budget alone (total_steps 0, open-ended): the cosine follows the clock only
    assert lr_at(500, cos, 0, 10, time_frac=0.0) == pytest.approx(0.1)
    assert lr_at(500, cos, 0, 10, time_frac=0.5) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5))

    step = TrainConfig(lr=0.1, schedule="step", step_epochs=2, step_gamma=0.5, warmup_steps=0)
    assert [lr_at(s, step, 100, 10) for s in (0, 19, 20, 39, 40)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    const = TrainConfig(lr=0.1, schedule="constant", warmup_steps=0)
    assert lr_at(77, const, 100, 10) == 0.1
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(0, TrainConfig(schedule="linear"), 10, 1)


def test_early_stopping_restores_the_best_checkpoint(demo_copy, tmp_path) -> None:
    # min_delta huge: no evaluation after the first counts as an improvement -> stop after epoch 2
    cfg = TrainConfig(project=str(demo_copy), epochs=5, batch_size=2, max_images=4, min_size=128, max_size=192,
                      warmup_steps=2, early_stop=True, early_stop_patience=1, early_stop_min_delta=1e9,
                      early_stop_metric="val_loss")
    sink = Collector()
    result = train_job(cfg.to_dict(), sink, CancelToken(), hooks=[ParamDigestHook(tmp_path / "digest")])
    assert result["status"] == "early_stopped" and result["epoch"] == 1
    summaries = sink.of(EpochSummary)
    assert [s.early_stop for s in summaries] == [False, True]
    assert summaries[0].is_best and "loss" in summaries[0].val_losses
    assert any("restored the best checkpoint" in n.message for n in sink.of(Notice))
    # the in-memory model after training (digest written by the last hook) holds best.pt's weights
    best = torch.load(result["best_checkpoint"], map_location="cpu", weights_only=True)
    last = torch.load(result["last_checkpoint"], map_location="cpu", weights_only=True)
    digest = json.loads((tmp_path / "digest" / "rank0.json").read_text())
    names = [n for n, v in best["model"].items() if v.is_floating_point() and "running_" not in n]
    best_sum = sum(float(best["model"][n].double().sum()) for n in names)
    last_sum = sum(float(last["model"][n].double().sum()) for n in names)
    assert best["step"] == 2 and last["step"] == 4 and best_sum != last_sum
    assert digest["sum"] == pytest.approx(best_sum, rel=1e-9, abs=1e-6)


def test_bad_options_are_refused_before_anything_runs(demo_copy) -> None:
    from engine.train.trainer import TrainingError

    for bad, match in (({"backbone": "vgg"}, "has no backbone 'vgg'"),
                       ({"early_stop_metric": "f1"}, "early_stop_metric"),
                       ({"device": "tpu"}, "unknown device")):
        with pytest.raises(TrainingError, match=match):
            train_job(TrainConfig(project=str(demo_copy), **bad).to_dict(), Collector(), CancelToken())
