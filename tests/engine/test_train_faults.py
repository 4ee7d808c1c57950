"""Stop mid-epoch, resume at the next batch, and the non-finite loss guard (fault injection via a test hook)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import torch
from train_hooks import InjectNaN

from engine.config import TrainConfig
from engine.events import Notice, RunFinished, StepLosses
from engine.jobs import CancelToken, Collector
from engine.project.store import Store
from engine.tasks.checkpoint import load_model
from engine.train.job import train_job
from engine.train.trainer import NonFiniteLoss, TrainingError


def _cfg(project, **kw) -> TrainConfig:
    base = dict(project=str(project), batch_size=2, min_size=128, max_size=192, warmup_steps=2, val_split="",
                augment_color=False, augment_scale=False)
    return TrainConfig(**{**base, **kw})


class StopAtStep(Collector):
    """Sink that signals when StepLosses for ``step`` arrives."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step
        self.reached = threading.Event()

    def __call__(self, event) -> None:
        super().__call__(event)
        if isinstance(event, StepLosses) and event.step >= self.step:
            self.reached.set()


def test_stop_mid_epoch_then_resume_continues_the_step_count(demo_copy) -> None:
    cfg = _cfg(demo_copy, epochs=2, max_images=12)  # 6 steps per epoch
    sink, cancel = StopAtStep(2), CancelToken()
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(train_job(cfg.to_dict(), sink, cancel)))
    worker.start()
    assert sink.reached.wait(120)
    cancel.cancel()
    worker.join(60)
    assert not worker.is_alive()
    # stopped inside the first epoch: at most the step in flight when Stop came was finished
    assert out["status"] == "stopped" and 2 <= out["step"] <= 3 and out["epoch"] == 0
    assert sink.of(RunFinished)[-1].status == "stopped"
    last = out["last_checkpoint"]
    raw = torch.load(last, map_location="cpu", weights_only=True)
    assert raw["step"] == out["step"] and raw["kind"] == "last" and raw["optimizer"]["state"]
    _, model, _, _, meta = load_model(last)
    assert meta["step"] == out["step"] and raw["epoch_batches"] == out["step"]
    with Store(demo_copy) as store:
        assert store.run(out["run_id"]).status == "stopped"

    resumed = Collector()
    res = train_job(_cfg(demo_copy, epochs=2, max_images=12, resume=last, sync_bn=True).to_dict(), resumed,
                    CancelToken())
    notes = [e.message for e in resumed.of(Notice)]
    assert notes[0].startswith(f"resumed from {last} at step {out['step']}")
    assert any("sync_bn: a single process" in n for n in notes)  # what the resumed run was asked still shows
    assert not any("from scratch" in n for n in notes)  # what building said of the initial weights does not
    steps = [e.step for e in resumed.of(StepLosses)]
    # the rest of the interrupted epoch, then the second one: the same 12 steps as a run never stopped
    assert steps == list(range(out["step"] + 1, 13))
    assert [e.epoch for e in resumed.of(StepLosses)] == [0] * (6 - out["step"]) + [1] * 6
    assert res["run_id"] == out["run_id"] and res["status"] == "finished" and res["step"] == 12
    with Store(demo_copy) as store:
        train_steps = [r[0] for r in store.metrics(res["run_id"]) if r[2] == "train" and r[3] == "loss"]
    assert train_steps == list(range(1, res["step"] + 1))


def test_injected_nan_stops_the_run_and_keeps_the_last_checkpoint(demo_copy) -> None:
    cfg = _cfg(demo_copy, epochs=3, max_images=4)  # 2 steps per epoch
    sink = Collector()
    with pytest.raises(NonFiniteLoss) as err:
        train_job(cfg.to_dict(), sink, CancelToken(), hooks=[InjectNaN(3, "loss_classifier")])
    msg = str(err.value)
    assert re.match(r"non-finite loss at step 3: .*loss_classifier=nan", msg), msg
    for name in ("loss_box_reg", "loss_objectness", "loss_rpn_box_reg"):
        assert re.search(rf"{name}=[0-9.e-]+", msg), msg
    finished = sink.of(RunFinished)[-1]
    assert finished.status == "failed" and finished.message == msg
    assert [e.step for e in sink.of(StepLosses)] == [1, 2]
    with Store(demo_copy) as store:
        run = store.runs()[-1]
    assert run.status == "failed" and run.summary["message"] == msg
    ckpt = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    assert run.checkpoint.endswith("last.pt") and ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


@pytest.mark.skipif(not Path("/proc/sys/vm/overcommit_memory").exists()
                    or Path("/proc/sys/vm/overcommit_memory").read_text().strip() != "0",
                    reason="needs heuristic overcommit so that a huge allocation fails at once")
def test_out_of_memory_is_reported_with_a_hint(demo_copy) -> None:
    # a real allocation failure: resizing to a 60000-px short side asks for ~40 GB at step 1
    cfg = _cfg(demo_copy, epochs=1, batch_size=1, max_images=1, min_size=60_000, max_size=60_000)
    with pytest.raises(TrainingError, match=r"out of memory at step 1 on cpu: use a smaller batch size \(now 1\) "
                                            r"or smaller images \(input size 60000"):
        train_job(cfg.to_dict(), Collector(), CancelToken())
    with Store(demo_copy) as store:
        assert store.runs()[-1].status == "failed"


def test_unreadable_and_missing_images_are_reported_before_training(demo_copy) -> None:
    with Store(demo_copy) as store:
        first, second = (store.image_path(im) for im in store.images("train")[:2])
    first.write_bytes(b"not an image")
    second.unlink()
    # refused up front, naming both files; nothing recorded
    strict = _cfg(demo_copy, epochs=1, max_images=4, skip_bad_images=False)
    with pytest.raises(TrainingError, match=rf"2 training images cannot be read: {first.name} .*unreadable.*"
                                            rf"{second.name} .*file not found"):
        train_job(strict.to_dict(), Collector(), CancelToken())
    with Store(demo_copy) as store:
        assert store.runs() == []
    # default: reported and skipped, the run trains on the rest
    sink = Collector()
    res = train_job(_cfg(demo_copy, epochs=1, max_images=4).to_dict(), sink, CancelToken())
    assert res["status"] == "finished" and res["step"] == 1  # 2 good images, batch 2
    assert any(f"skipping 2 unreadable training images: {first.name}" in n.message for n in sink.of(Notice))
