"""The tagger task: refusals, the mode chosen from the data, thresholds in checkpoints, the CLI's JSON
lines, and learning the demo's tags (the task contract test covers the rest)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.config import TrainConfig
from engine.data.dataset import SampleRecord, snapshot_split
from engine.events import Notice, StepLosses
from engine.jobs import CancelToken, Collector
from engine.project.store import Store
from engine.tasks.base import LabelSpace, TaskDataError
from engine.tasks.checkpoint import load_model, save_checkpoint
from engine.tasks.tagger import TASK, auto_pos_weight, tag_matrix

LABELS = LabelSpace((1, 2, 3), ("a", "b", "c"), background=False)


def _records(tag_sets: list[set[int]]) -> list[SampleRecord]:
    return [SampleRecord(i, Path(f"{i}.png"), 32, 32, (), tuple(sorted(t))) for i, t in enumerate(tag_sets)]


def _one_json_line(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def _set_tags(root: Path, one: bool) -> None:
    """Leave each image exactly one of its tags (varied over images), or none at all."""
    with Store(root) as store, store.transaction():
        for image_id, tags in store.all_image_tags().items():
            kept = sorted(tags)[image_id % len(tags)] if one else None
            for t in tags - {kept}:
                store.set_image_tag(image_id, t, False)


def test_project_without_tags_refuses_with_one_line(demo_copy: Path, capsys: pytest.CaptureFixture) -> None:
    _set_tags(demo_copy, one=False)
    rc = main(["train", "--project", str(demo_copy), "--model", "tagger", "--max-steps", "1", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc != 0 and cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no image tags to learn from" in lines[0], cap.err
    with pytest.raises(TaskDataError, match="no image tags"):
        TASK.check_data(_records([set()]), LabelSpace((), (), background=False))


def test_mode_is_chosen_from_the_data_overridable_and_explained() -> None:
    single = _records([{1}, {2}, {3}, {1}])
    spec = TASK.spec_from_data(TrainConfig(model="tagger"), single, LABELS)
    assert spec.mode == "multiclass" and spec.pos_weight is None and spec.input_size == 128
    assert TASK.data_notices(single, LABELS, spec)[0] == \
        "tagger mode multiclass: each of the 4 images has exactly one of 3 tags"

    multi = _records([{1, 2}, {2}, {3}, set()])
    spec = TASK.spec_from_data(TrainConfig(model="tagger", min_size=64), multi, LABELS)
    assert spec.mode == "multilabel" and spec.input_size == 64
    assert spec.pos_weight == pytest.approx([3.0, 1.0, 3.0])  # n_neg / n_pos per tag
    notes = TASK.data_notices(multi, LABELS, spec)
    assert notes[0] == "tagger mode multilabel: 1 of 4 images have more than one tag"
    assert any("1 of 4 training images have no tag" in n for n in notes)

    forced = TASK.spec_from_data(TrainConfig(model="tagger", extra={"tagger_mode": "multilabel"}), single, LABELS)
    assert forced.mode == "multilabel"
    assert "set by tagger_mode" in TASK.data_notices(single, LABELS, forced)[0]
    focal = TASK.spec_from_data(TrainConfig(model="tagger", extra={"tagger_loss": "focal"}), single, LABELS)
    assert (focal.mode, focal.loss) == ("multilabel", "focal")
    for extra, match in (({"tagger_mode": "softmax"}, "tagger_mode"), ({"tagger_loss": "hinge"}, "tagger_loss"),
                         ({"tagger_pos_weight": "lots"}, "tagger_pos_weight"),
                         ({"tagger_pos_weight": [1.0]}, "pos_weight has 1 values for 3 tags")):
        with pytest.raises(TaskDataError, match=match):
            TASK.spec_from_data(TrainConfig(model="tagger", extra=extra), multi, LABELS)


def test_auto_pos_weight_is_clipped() -> None:
    truth = np.zeros((100, 3), bool)
    truth[:1, 0] = True  # 99 : 1
    truth[:, 1] = True  # no negatives
    assert auto_pos_weight(truth) == pytest.approx([10.0, 0.1, 1.0])


def test_single_tag_images_train_with_softmax_and_the_run_says_why(demo_copy: Path) -> None:
    from engine.train.job import train_job

    _set_tags(demo_copy, one=True)
    cfg = TrainConfig(project=str(demo_copy), model="tagger", max_steps=2, batch_size=2, max_images=8,
                      val_split="", min_size=64, device="cpu")
    sink = Collector()
    train_job(cfg.to_dict(), sink, CancelToken())
    notices = [n.message for n in sink.of(Notice)]
    assert any(m.startswith("tagger mode multiclass: each of the 8 images has exactly one of")
               for m in notices), notices
    assert "loss_ce" in sink.of(StepLosses)[0].losses


@pytest.fixture(scope="module")
def fitted(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """``anchorlab train --model tagger`` on a copy of the small demo, validated on its training split
    (module-scoped: a test's capsys cannot serve it, so it captures the CLI's output itself)."""
    root = tmp_path_factory.mktemp("tagger") / "project"
    shutil.copytree(demo_project, root)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["train", "--project", str(root), "--model", "tagger", "--epochs", "30", "--batch-size", "4",
                   "--min-size", "96", "--val-split", "train", "--eval-every", "10", "--device", "cpu",
                   "--no-augment-flip", "--no-augment-scale", "--no-augment-color"])
    assert rc == 0, err.getvalue()
    return root, _one_json_line(out.getvalue()), err.getvalue()


def test_train_prints_the_metrics_and_reports_the_mode(fitted: tuple[Path, dict, str]) -> None:
    _, res, err = fitted
    assert {"map", "f1_macro", "f1_micro", "checkpoint", "run_id"} <= set(res) and res["task"] == "tagger"
    assert "tagger mode multilabel:" in err


def test_learns_the_demo_tags(fitted: tuple[Path, dict, str]) -> None:
    """mAP on the images it trained on, far above the tag-frequency baseline (28 training images are too
    few to measure generalisation; bench/bench_tagger_quality.py measures val on the 300-image demo)."""
    root, res, _ = fitted
    with Store(root) as store:
        labels = TASK.label_space(store)
        truth = tag_matrix(snapshot_split(store, "train"), labels)
    prevalence = truth.mean(0)
    baseline = float(prevalence[prevalence > 0].mean())  # AP of scores that ignore the image = frequency
    assert res["map"] >= min(0.95, baseline + 0.25), (res["map"], baseline)


def test_thresholds_survive_the_checkpoint_and_eval_uses_them(fitted: tuple[Path, dict, str], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    root, res, _ = fitted
    task, model, _, labels, _ = load_model(res["checkpoint"])
    thresholds = task.thresholds(model)
    assert thresholds.shape == (len(labels.ids),) and not np.allclose(thresholds, 0.5)  # tuned, not the default
    assert main(["eval", "--project", str(root), "--checkpoint", res["checkpoint"], "--split", "train"]) == 0
    ev = _one_json_line(capsys.readouterr().out)
    assert set(ev["per_tag"]) == set(labels.names)
    assert all({"ap", "f1", "threshold"} <= set(v) for v in ev["per_tag"].values())
    np.testing.assert_array_equal([ev["per_tag"][n]["threshold"] for n in labels.names], thresholds)
    # same images, same stored thresholds -> exactly the F1 the run measured right after tuning them
    assert (ev["map"], ev["f1_macro"], ev["f1_micro"]) == (res["map"], res["f1_macro"], res["f1_micro"])
    # and a checkpoint written again from the loaded model carries them on
    ckpt = torch.load(res["checkpoint"], map_location="cpu", weights_only=True)
    model.thresholds.fill_(0.25)
    ckpt["model"] = {k: v.clone() for k, v in model.state_dict().items()}
    copy = save_checkpoint(tmp_path / "copy.pt", {k: v for k, v in ckpt.items() if k not in ("format", "saved_at")})
    _, model2, _, _, _ = load_model(copy)
    np.testing.assert_array_equal(task.thresholds(model2), np.full(len(labels.ids), 0.25, np.float32))
