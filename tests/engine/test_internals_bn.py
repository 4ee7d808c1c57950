"""The BatchNorm-statistics recorder (engine.internals.bn_stats): one row per layer per interval, losses untouched."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.config import TrainConfig
from engine.events import StepLosses
from engine.internals.bn_stats import BNStatsRecorder, norm_layers
from engine.jobs import CancelToken, Collector
from engine.project.store import Store
from engine.train.job import train_job
from engine.train.trainer import Hook


@dataclass
class _Store:
    rows: list = field(default_factory=list)

    def add_metrics(self, run_id: int, rows: list) -> None:
        self.rows += [(run_id, *r) for r in rows]


@dataclass
class _State:
    model: nn.Module
    store: _Store | None
    step: int = 0
    epoch: int = 0
    run_id: int = 7


def _net(norm: str) -> nn.Module:
    def n(c: int) -> nn.Module:
        return nn.BatchNorm2d(c) if norm == "bn" else nn.GroupNorm(2, c)

    return nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), n(4), nn.ReLU(inplace=True), nn.Dropout(0.2),
                         nn.Conv2d(4, 4, 3, 2, 1), n(4), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))


def _train(norm: str, recorder: BNStatsRecorder | None, steps: int = 6) -> tuple[list[float], _Store, nn.Module]:
    """The trainer's call order (engine/train/trainer.py) on a toy model; returns the losses."""
    torch.manual_seed(0)
    net = _net(norm)
    opt = torch.optim.SGD(net.parameters(), 0.1)
    store = _Store()
    state = _State(net, store)
    hooks = [recorder] if recorder else []
    for h in hooks:
        h.before_train(state)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 2, (4,))
        for h in hooks:
            h.before_step(state)
        loss = nn.functional.cross_entropy(net(x), y)
        for h in hooks:
            h.after_forward(state, {"loss": loss})
        opt.zero_grad()
        loss.backward()
        opt.step()
        state.step += 1
        with torch.no_grad():
            net.eval()
            net(x)  # an evaluation forward between steps must not be recorded
            net.train()
        losses.append(float(loss.detach()))
        for h in hooks:
            h.after_step(state)
    for h in hooks:
        h.after_train(state)
    return losses, store, net


def test_recorder_has_every_hook_point_of_the_trainer():
    points = [p for p in vars(Hook) if not p.startswith("_")]
    assert len(points) == 7 and all(callable(getattr(BNStatsRecorder(1), p)) for p in points)


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_rows_per_layer_per_interval_and_identical_losses(norm: str):
    plain, _, _ = _train(norm, None)
    recorder = BNStatsRecorder(2)
    recorded, store, net = _train(norm, recorder)
    assert recorded == plain  # bit-identical
    assert [n for n, _ in recorder.layers] == ["1", "5"]
    names = ("in_mean", "in_std", "run_mean", "run_var") if norm == "bn" else ("in_mean", "in_std")
    counts = Counter((r[4], r[1]) for r in store.rows)
    assert set(counts) == {(f"bn/{layer}/{n}", step) for layer in ("1", "5") for n in names for step in (2, 4, 6)}
    assert set(counts.values()) == {1}  # one row per layer, name and interval; the eval forwards left out
    assert {r[0] for r in store.rows} == {7} and {r[3] for r in store.rows} == {"bn"}
    last = {r[4]: r[5] for r in store.rows if r[1] == 6}
    if norm == "bn":
        assert last["bn/1/run_mean"] == pytest.approx(float(net[1].running_mean.mean()))
        assert last["bn/5/run_var"] == pytest.approx(float(net[5].running_var.mean()))
    assert last["bn/1/in_std"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in last.values())


def test_input_statistics_are_those_of_the_training_forward():
    torch.manual_seed(0)
    net = _net("bn")
    seen: list[torch.Tensor] = []
    net[5].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    recorder = BNStatsRecorder(1)
    state = _State(net, _Store())
    recorder.before_train(state)
    recorder.before_step(state)
    net(torch.randn(4, 3, 8, 8))
    recorder.after_forward(state, {})
    net(torch.randn(4, 3, 8, 8))  # after the forward: no longer recorded
    state.step = 1
    recorder.after_step(state)
    rows = {r[4]: r[5] for r in state.store.rows}
    assert rows["bn/5/in_mean"] == pytest.approx(float(seen[0].mean()), rel=1e-5)
    assert rows["bn/5/in_std"] == pytest.approx(float(seen[0].std(unbiased=False)), rel=1e-5)
    assert not recorder._handles  # nothing left hooked


def test_training_job_with_bn_stats_same_losses_and_store_rows(demo_copy: Path):
    def run(every: int) -> tuple[list[dict], int]:
        cfg = TrainConfig(project=str(demo_copy), epochs=2, max_steps=4, batch_size=2, max_images=4, min_size=128,
                          max_size=192, device="cpu", bn_stats_every=every, xray_image=0)
        sink = Collector()
        result = train_job(cfg.to_dict(), sink, CancelToken())
        return [e.losses for e in sink.of(StepLosses)], result["run_id"]

    plain, _ = run(0)
    recorded, run_id = run(2)
    assert recorded == plain and len(plain) == 4
    with Store(demo_copy) as store:
        rows = [r for r in store.metrics(run_id) if r[2] == "bn"]
        assert not any(r[2] == "bn" for r in store.metrics(run_id - 1))
    from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn

    layers = [n for n, _ in norm_layers(build_faster_rcnn(DetectorSpec())[0])]
    assert len(layers) == 10  # the tiny backbone: 2 BatchNorms in the stem and in each of the 4 stages
    counts = Counter((r[3], r[0]) for r in rows)
    assert set(counts) == {(f"bn/{layer}/{n}", step) for layer in layers
                           for n in ("in_mean", "in_std", "run_mean", "run_var") for step in (2, 4)}
    assert set(counts.values()) == {1}
