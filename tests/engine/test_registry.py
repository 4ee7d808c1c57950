"""The registry's user-facing joints: `anchorlab models`, --model validation, nested targets, unchanged results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.config import ConfigError, TrainConfig
from engine.data.demo import generate_demo
from engine.device import to_device
from engine.events import StepLosses
from engine.jobs import CancelToken, Collector
from engine.tasks.registry import TASKS, UnknownTask, get_task


def test_models_lists_every_registered_task(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    models = {m["name"]: m for m in json.loads(out[0])["models"]}
    assert set(models) == set(TASKS)
    frcnn = models["faster_rcnn"]
    assert frcnn["kind"] == "detection" and "tiny" in frcnn["backbones"]
    assert frcnn["selection_metric"] == "map50" and frcnn["higher_is_better"] and "map" in frcnn["metrics"]


def test_unknown_model_is_one_line_naming_the_valid_ones(capsys, tmp_path) -> None:
    assert main(["train", "--project", str(tmp_path), "--model", "nonsense"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: unknown model 'nonsense'; valid models: {', '.join(TASKS)}"]
    with pytest.raises(UnknownTask, match="valid models: faster_rcnn"):
        get_task("nonsense")


def test_options_are_validated_once() -> None:
    for bad, match in (({"optimizer": "adam"}, "optimizer 'adam' is not one of sgd, adamw"),
                       ({"epochs": -1}, "epochs must be >= 1"), ({"epochs": 0}, "epochs must be >= 1"),
                       ({"max_steps": -5}, "max_steps must be >= 0"),
                       ({"min_size": -100}, "min_size must be >= 0"), ({"max_size": 5}, ">= 16"),
                       ({"weight_decay": -1.0}, "weight_decay must be >= 0"), ({"lr": float("nan")}, "finite"),
                       ({"train_ids": [1, 2], "val_ids": [2]}, "share 1 images")):
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad).validate()
    assert TrainConfig().validate() == TrainConfig()


def test_a_target_with_extra_tensors_reaches_the_device_whole() -> None:
    targets = [{"boxes": torch.zeros(2, 4), "labels": torch.ones(2, dtype=torch.int64), "image_id": 7,
                "semantic": torch.zeros(8, 8, dtype=torch.int64), "tags": torch.tensor([1.0, 0.0]),
                "parts": [torch.ones(3), {"deep": torch.zeros(1)}]}]
    moved = to_device(targets, torch.device("meta"))[0]
    assert set(moved) == set(targets[0]) and moved["image_id"] == 7
    for t in (moved["boxes"], moved["semantic"], moved["tags"], moved["parts"][0], moved["parts"][1]["deep"]):
        assert t.device.type == "meta"


def test_faster_rcnn_first_steps_are_unchanged_by_the_registry(tmp_path) -> None:
    """Golden losses recorded with the pre-registry trainer (commit 6c755da), same seed and data."""
    from engine.train.job import train_job

    root = tmp_path / "proj"
    generate_demo(root, images=40, seed=7, unlabeled=4)
    cfg = TrainConfig(project=str(root), epochs=1, max_steps=4, max_images=8, batch_size=2, seed=0, val_split="",
                      device="cpu")
    sink = Collector()
    train_job(cfg.to_dict(), sink, CancelToken())
    got = [e.losses for e in sink.of(StepLosses)]
    gold = json.loads((Path(__file__).parent / "data" / "faster_rcnn_first_steps.json").read_text())
    assert len(got) == len(gold) == 4
    # The RPN losses and the box regression (positives only) match the golden run to 1e-4. The RoI
    # classifier loss (and the total) drift by up to ~4e-4 relative between library builds and thread
    # counts (the background RoIs it averages over are near ties at initialisation), so 1e-3 there:
    # still far below what a changed sampler, seed, normalisation or learning rate gives.
    loose = {"loss_classifier", "loss"}
    for g, ref in zip(got, gold):
        for k, v in ref["losses"].items():
            assert g[k] == pytest.approx(v, rel=1e-3 if k in loose else 1e-4, abs=1e-6), (ref["step"], k)


def test_time_budget_alone_trains_for_the_budget(demo_copy, capsys) -> None:
    """--max-minutes without --epochs: no epoch cap (the time limit ends the run, not an epoch count),
    the schedule is planned for the time (the LR has annealed by the stop)."""
    from engine.events import RunStarted
    from engine.project.store import Store
    from engine.train.job import train_job

    cfg = TrainConfig(project=str(demo_copy), max_minutes=0.1, batch_size=4, max_images=4, min_size=96,
                      max_size=128, val_split="", warmup_steps=0, device="cpu")
    sink = Collector()
    res = train_job(cfg.to_dict(), sink, CancelToken())
    assert sink.of(RunStarted)[0].total_steps == 0  # open-ended: the budget decides
    with Store(demo_copy) as store:
        assert store.run(res["run_id"]).summary["stop_reason"] == "time_limit"
    assert res["status"] == "finished" and res["step"] == res["epoch"] + 1  # 1 step an epoch, every epoch run
    lrs = [e.lr for e in sink.of(StepLosses)]
    assert lrs[0] == pytest.approx(cfg.lr, rel=0.05) and lrs[-1] < 0.3 * cfg.lr  # cosine over the time budget
    # with --epochs the epochs cap the run; 0 is refused in one line
    assert main(["train", "--project", str(demo_copy), "--epochs", "0"]) == 1
    assert capsys.readouterr().err.strip() == ("error: epochs must be >= 1 (got 0); leave it out to train until "
                                               "--max-minutes")


def test_an_option_a_model_does_not_read_is_refused_not_ignored(demo_copy) -> None:
    from engine.train.job import train_job
    from engine.train.trainer import TrainingError

    others = [n for n in TASKS if "rpn_loss" not in getattr(get_task(n), "options", ())]
    if not others:
        pytest.skip("every registered model reads --rpn-loss")
    cfg = TrainConfig(project=str(demo_copy), model=others[0], backbone=get_task(others[0]).backbones[0],
                      rpn_loss="focal", max_steps=1)
    with pytest.raises(TrainingError, match=rf"--rpn-loss does not apply to {others[0]} \(it is read by faster_rcnn"):
        train_job(cfg.to_dict(), Collector(), CancelToken())
