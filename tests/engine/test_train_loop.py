"""The training loop end to end on the tiny backbone: overfit one batch, streamed events, store records."""

from __future__ import annotations

import math

import torch

from engine.config import TrainConfig
from engine.events import EpochSummary, Notice, RunFinished, RunStarted, StepLosses
from engine.jobs import CancelToken, Collector
from engine.project.store import Store
from engine.tasks.checkpoint import load_checkpoint, load_model
from engine.train.job import train_job

COMPONENTS = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


def test_overfit_one_batch_loss_falls(demo_copy) -> None:
    cfg = TrainConfig(project=str(demo_copy), overfit_one_batch=True, overfit_steps=20, batch_size=2,
                      min_size=160, max_size=256, optimizer="sgd", lr=0.02, warmup_steps=3, l1=1e-7,
                      extra={"metrics_every": 10})
    sink = Collector()
    result = train_job(cfg.to_dict(), sink, CancelToken())

    steps = sink.of(StepLosses)
    assert [e.step for e in steps] == list(range(1, 21))
    first, last = steps[0].losses, steps[-1].losses
    stats = {"stat_fg_anchors", "stat_bg_anchors", "stat_easy_neg_share", "stat_roi_fg_fraction",
             "stat_roi_easy_neg_share"}  # the task's step_stats, streamed next to the losses
    assert COMPONENTS | {"loss_l1", "loss"} | stats == set(first)
    # the total is over the data terms (as the validation total); the L1 term and the stats are shown on their own
    assert math.isclose(first["loss"], sum(v for k, v in first.items() if k in COMPONENTS), rel_tol=1e-6)
    assert min(e.losses["loss"] for e in steps[-5:]) < 0.5 * first["loss"], (first["loss"], last["loss"])
    assert all(e.lr > 0 and e.images_per_s > 0 and e.eta_s >= 0 for e in steps)
    assert steps[-1].eta_s == 0

    started = sink.of(RunStarted)[0]
    assert started.total_steps == 20 and started.steps_per_epoch == 20 and not started.config["augment_flip"]
    assert any("from scratch" in n.message for n in sink.of(Notice))
    summary = sink.of(EpochSummary)
    assert len(summary) == 1 and summary[0].is_best and {"map", "map50"} <= set(summary[0].metrics)
    assert COMPONENTS | {"loss"} <= set(summary[0].val_losses)
    finished = sink.of(RunFinished)[-1]
    assert finished.status == "finished" and finished.checkpoint == result["checkpoint"]
    assert result["status"] == "finished" and result["step"] == 20

    with Store(demo_copy) as store:
        run = store.run(result["run_id"])
        rows = store.metrics(result["run_id"])
    assert run.status == "finished" and run.checkpoint == result["checkpoint"]
    assert run.config["overfit_one_batch"] is True
    train_loss = [r for r in rows if r[2] == "train" and r[3] == "loss"]
    assert [r[0] for r in train_loss] == list(range(1, 21))
    assert any(r[2] == "val" and r[3] == "map50" for r in rows)

    ckpt = load_checkpoint(result["checkpoint"])  # weights_only=True inside
    assert ckpt["step"] == 20 and ckpt["run_id"] == result["run_id"]
    _, model, spec, labels, meta = load_model(result["checkpoint"])
    label_map = labels.label_map
    assert not model.training and spec.num_classes == len(label_map) + 1 == 4
    assert meta["category_names"] == ["circle", "square", "triangle"]
    torch.testing.assert_close(model.state_dict()["roi_heads.box_predictor.cls_score.weight"],
                               ckpt["model"]["roi_heads.box_predictor.cls_score.weight"])
