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
    assert len(runs) == 1 and runs[0]["status"] == "finished"  # only rank 0 wrote to the store
    assert sorted(p.name for p in (demo_copy / "runs" / str(res["run_id"])).iterdir()) == ["last.pt"]
