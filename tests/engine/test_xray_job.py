"""The X-ray job, the ``anchorlab xray`` command and live snapshots during training, on a real demo project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.config import TrainConfig
from engine.events import ArraysReady, Notice
from engine.jobs import CancelToken, Collector
from engine.project.shapes import instances
from engine.project.store import Store
from engine.tasks.checkpoint import load_model
from engine.train.job import train_job
from engine.xray.capture import OPTIONAL_KEYS, image_tensor
from engine.xray.job import XrayError, load_image_and_gt, xray_job

DOCS = Path(__file__).resolve().parents[2] / "docs" / "xray.md"
DOCUMENTED_KEYS = ("anchors", "anchor_level", "anchor_size", "anchor_ratio", "anchor_label", "anchor_sampled",
                   "objectness", "proposals_pre_nms", "proposals_pre_nms_score", "proposals_pre_nms_level",
                   "proposals", "proposals_score", "rois", "roi_label", "roi_matched_gt", "roi_level",
                   "roi_sampling_points", "detections_pre_nms", "detections_pre_nms_score",
                   "detections_pre_nms_label", "detections", "detections_score", "detections_label", "gt_boxes",
                   "gt_labels", "image_size", "input_size", "scale")


def _first_labelled(store: Store) -> int:
    counts = store.annotation_counts()
    return next(im.id for im in store.images("train") if counts.get(im.id))


def test_job_without_checkpoint_captures_an_untrained_model(demo_project: Path):
    with Store(demo_project) as s:
        image_id = _first_labelled(s)
        rec = s.image(image_id)
        objs = instances(s.annotations(image_id), rec.height, rec.width)
    sink = Collector()
    summary = xray_job({"project": str(demo_project), "image": image_id}, sink, CancelToken())
    (ev,) = sink.of(ArraysReady)
    assert ev.kind == "xray" and ev.meta["image_id"] == image_id and ev.meta["live"] is False
    assert ev.meta["label_names"] == ["background", "circle", "square", "triangle"]
    assert any("UNTRAINED" in n.message for n in sink.of(Notice))
    a = ev.arrays
    assert set(DOCUMENTED_KEYS) <= set(a)
    assert tuple(a["image_size"]) == (rec.height, rec.width)
    expected = np.array(sorted(o.box.tolist() for o in objs), np.float32)
    assert np.allclose(np.array(sorted(a["gt_boxes"].tolist()), np.float32), expected)
    assert summary["gt"] == len(objs) and summary["anchors"] == len(a["anchors"]) and summary["anchors_sampled"] == 256


def test_job_with_a_run_uses_its_checkpoint_and_snapshots_follow_training(demo_copy: Path):
    with Store(demo_copy) as s:
        image_id = _first_labelled(s)
    cfg = TrainConfig(project=str(demo_copy), epochs=1, max_steps=2, batch_size=2, max_images=4,
                      xray_image=image_id, xray_every=1, device="cpu")
    train_sink = Collector()
    result = train_job(cfg.to_dict(), train_sink, CancelToken())
    live = [e for e in train_sink.of(ArraysReady) if e.kind == "xray"]
    assert [e.meta["step"] for e in live] == [1, 2] and all(e.meta["live"] for e in live)
    assert all(e.meta["image_id"] == image_id and e.meta["run_id"] == result["run_id"] for e in live)
    assert not np.array_equal(live[0].arrays["objectness"], live[1].arrays["objectness"])  # the model moved

    sink = Collector()
    xray_job({"project": str(demo_copy), "image": image_id, "run": result["run_id"]}, sink, CancelToken())
    (ev,) = sink.of(ArraysReady)
    assert not any("UNTRAINED" in n.message for n in sink.of(Notice))
    assert ev.meta["checkpoint"] == result["checkpoint"] and ev.meta["step"] == 2
    _, model, _, labels, _ = load_model(result["checkpoint"])
    label_map = labels.label_map
    with Store(demo_copy) as s:
        img, gt, labels, _, _ = load_image_and_gt(s, image_id, label_map)
    with torch.no_grad():
        ref = model([image_tensor(img)])[0]
    assert np.array_equal(ev.arrays["detections"], ref["boxes"].numpy())
    assert np.array_equal(ev.arrays["gt_labels"], labels)
    # the last live snapshot used the same weights as the final checkpoint
    assert np.array_equal(live[-1].arrays["objectness"], ev.arrays["objectness"])


def test_job_rejects_bad_input(demo_project: Path):
    for config, match in (({"project": str(demo_project), "image": 999_999}, "image: no image"),
                          ({"project": str(demo_project), "image": "missing.png"}, "neither an image id"),
                          ({"project": str(demo_project), "image": 1, "run": 42}, "run: no run"),
                          ({"project": str(demo_project)}, "image")):
        with pytest.raises(XrayError, match=match):
            xray_job(config, Collector(), CancelToken())


def test_cli_writes_documented_npz(demo_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    with Store(demo_project) as s:
        rec = s.image(_first_labelled(s))
    out = tmp_path / "sub" / "capture.npz"
    rc = cli_main(["xray", "--project", str(demo_project), "--image", rec.path, "--out", str(out), "--roi", "3"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["image_id"] == rec.id and Path(printed["out"]) == out.resolve()
    with np.load(out, allow_pickle=False) as z:
        assert set(DOCUMENTED_KEYS) <= set(z.files)
        assert int(z["roi_index"]) == 3 and z["roi_sampling_points"].shape == (196, 2)
        assert z["anchors"].dtype == np.float32 and z["anchor_label"].dtype == np.int8
        meta = json.loads(str(z["meta_json"]))
        text = DOCS.read_text()
        keys = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]  # the Faster R-CNN table (YOLO's is its own)
        documented = set(re.findall(r"^\| `(\w+)` \|", keys, re.M))
        assert documented == set(z.files)  # docs/xray.md lists every key, and only real ones
        options = text.split("\n## Loss options", 1)[1].split("\n## ", 1)[0]  # keys of the loss options only
        assert set(re.findall(r"^\| `(\w+)` \|", options, re.M)) == set(OPTIONAL_KEYS)
    assert meta["image_id"] == rec.id and "UNTRAINED" in meta["notice"]
    assert cli_main(["xray", "--project", str(demo_project), "--image", "nope.png", "--out", str(out)]) == 1
    assert "neither an image id" in capsys.readouterr().err
    assert cli_main(["xray", "--project", str(demo_project), "--image", "1", "--out", str(tmp_path / "x.txt")]) == 1
    assert ".npz" in capsys.readouterr().err
