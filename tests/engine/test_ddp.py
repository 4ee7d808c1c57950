"""DDP: ``torchrun --nproc_per_node 2 -m engine.train`` with gloo on CPU; both ranks end with the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.project.store import Store


def test_torchrun_two_ranks_agree_on_the_weights(demo_copy, tmp_path) -> None:
    digest = tmp_path / "digest"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name("ddp_child.py")), str(digest),
           "--project", str(demo_copy), "--epochs", "1", "--batch-size", "2",
           "--max-images", "8", "--min-size", "128", "--max-size", "192", "--device", "cpu", "--val-split", ""]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        out, err = proc.communicate()
        raise AssertionError(f"torchrun hung:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    res = json.loads(out.strip().splitlines()[-1])  # only rank 0 prints the JSON line
    assert res["status"] == "finished" and res["step"] == 2  # 8 images / 2 ranks / batch 2
    r0 = json.loads((digest / "rank0.json").read_text())
    r1 = json.loads((digest / "rank1.json").read_text())
    assert r0["step"] == r1["step"] == 2
    assert r0["sha1"] == r1["sha1"] and r0["sum"] == r1["sum"]
    with Store(demo_copy) as store:
        runs = store.runs()
    assert len(runs) == 1 and runs[0].status == "finished"  # only rank 0 wrote to the store
    assert sorted(p.name for p in (demo_copy / "runs" / str(res["run_id"])).iterdir()) == ["last.pt"]


def test_torchrun_time_budget_uses_rank0s_clock(demo_copy, tmp_path) -> None:
    """Under --max-minutes each rank has its own wall clock; the LR schedule and the stop come from rank 0,
    so both ranks stop at the same step with the same weights (gloo collectives on CPU tensors)."""
    digest = tmp_path / "digest"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name("ddp_child.py")), str(digest),
           "--project", str(demo_copy), "--max-minutes", "0.06", "--batch-size", "1", "--max-images", "8",
           "--min-size", "96", "--max-size", "128", "--device", "cpu", "--val-split", "", "--warmup-steps", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["status"] == "finished" and res["step"] >= 2
    r0 = json.loads((digest / "rank0.json").read_text())
    r1 = json.loads((digest / "rank1.json").read_text())
    assert r0["step"] == r1["step"] == res["step"]
    assert r0["sha1"] == r1["sha1"]


def test_collectives_use_the_process_group_device() -> None:
    from engine.train import distributed

    assert distributed.collective_device().type == "cpu"  # no group / gloo: CPU tensors
    assert distributed.sync_flags([1.0, 0.0]) == [1.0, 0.0] and distributed.broadcast_values([0.25]) == [0.25]


def test_sync_bn_converts_every_batchnorm_for_gpu_processes_and_refuses_cpus() -> None:
    import pytest
    import torch
    from torch import nn

    from engine.train import distributed

    def net() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4)))

    two = distributed.DistInfo(rank=0, world_size=2, local_rank=0)
    model = net()
    params = {id(p) for p in model.parameters()}
    synced, notes = distributed.sync_batchnorm(model, two, torch.device("cuda", 0), True)
    kinds = [type(m) for m in synced.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert kinds == [nn.SyncBatchNorm, nn.SyncBatchNorm] and "2 BatchNorm layers" in notes[0]
    assert {id(p) for p in synced.parameters()} == params  # the optimizer's tensors stay the same
    assert set(synced.state_dict()) == set(net().state_dict())  # checkpoints keep their keys
    with pytest.raises(distributed.SyncBatchNormError, match="needs CUDA GPUs.*cpu"):
        distributed.sync_batchnorm(net(), two, torch.device("cpu"), True)
    alone = net()
    same, notes = distributed.sync_batchnorm(alone, distributed.DistInfo(), torch.device("cpu"), True)
    assert same is alone and "single process" in notes[0]
    assert distributed.sync_batchnorm(alone, two, torch.device("cpu"), False) == (alone, [])  # not asked: as is


def test_sync_bn_single_process_trains_and_says_so(demo_copy) -> None:
    from engine.config import TrainConfig
    from engine.events import Notice
    from engine.jobs import CancelToken, Collector
    from engine.train.job import train_job

    cfg = TrainConfig(project=str(demo_copy), epochs=1, max_steps=1, max_images=4, batch_size=2, val_split="",
                      device="cpu", sync_bn=True)
    sink = Collector()
    assert train_job(cfg.to_dict(), sink, CancelToken())["status"] == "finished"
    assert any("sync_bn: a single process" in e.message for e in sink.of(Notice))
