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
