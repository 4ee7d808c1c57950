"""``anchorlab report``: files written for a tiny trained checkpoint of each task kind; one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.config import TrainConfig
from engine.jobs import CancelToken
from engine.train.job import train_job


def _train(project: Path, model: str) -> dict:
    cfg = TrainConfig(project=str(project), model=model, backbone="tiny", epochs=1, max_steps=2, batch_size=2,
                      max_images=4, min_size=128, max_size=192, device="cpu", augment_color=False,
                      pretrained=False)
    return train_job(cfg.to_dict(), lambda event: None, CancelToken())


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _one_json_line(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_report_of_a_tiny_detector_writes_every_file(demo_copy, tmp_path, capsys) -> None:
    res = _train(demo_copy, "faster_rcnn")
    out = tmp_path / "report"
    rc = main(["report", "--project", str(demo_copy), "--checkpoint", res["checkpoint"], "--split", "val",
               "--out", str(out), "--score", "0.0", "--max-images", "4", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    summary = _one_json_line(cap.out)
    assert summary["kind"] == "detection" and summary["images"] == 4 and summary["run_id"] == res["run_id"]
    assert 0.0 <= summary["metrics"]["map50"] <= 1.0 and summary["best_epoch"] == 0
    names = {Path(p).name for p in summary["files"]}
    classes = [r["class"] for r in csv.DictReader(_lines(out / "per_class.csv"))]
    expected = {"report.json", "per_class.csv", "confusion.csv", "errors.csv", "pr.png", "f1.png",
                "confusion.png", "curves.csv", "loss.png", *(f"pr_{c}.csv" for c in classes)}
    assert classes and expected <= names and all((out / n).is_file() for n in names)
    for png in ("pr.png", "f1.png", "confusion.png", "loss.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.width > 100
    errors = list(csv.DictReader(_lines(out / "errors.csv")))
    counts = summary["errors"]
    assert len(errors) == counts["TP"] + counts["FP"] + counts["FN"] > 0
    confusion = list(csv.reader(_lines(out / "confusion.csv")))
    assert confusion[0][1:] == ["background", *classes] and len(confusion) == len(classes) + 2
    doc = json.loads((out / "report.json").read_text())
    assert doc["report"]["stats"]["map50"] == summary["metrics"]["map50"]
    assert doc["curves"]["best"]["epoch"] == 0 and len(doc["report"]["pr_curves"]["recall"]) == 101

    # the same numbers as `anchorlab eval` on the same images
    assert main(["eval", "--project", str(demo_copy), "--checkpoint", res["checkpoint"], "--split", "val",
                 "--max-images", "4", "--device", "cpu"]) == 0
    ev = _one_json_line(capsys.readouterr().out)
    assert summary["metrics"]["map"] == pytest.approx(ev["map"], abs=1e-6)


@pytest.mark.parametrize(("model", "kind", "files"), [
    ("deeplab", "segmentation", {"per_class.csv", "confusion.csv", "confusion.png", "iou.png"}),
    ("tagger", "classification", {"per_class.csv", "pr.png", "f1.png"}),
])
def test_report_of_segmentation_and_tag_models(demo_copy, tmp_path, model, kind, files) -> None:
    from engine.inference.report import ReportResult, report_job

    res = _train(demo_copy, model)
    job = report_job({"project": str(demo_copy), "checkpoint": res["checkpoint"], "split": "val",
                      "device": "cpu", "max_images": 3, "out": str(tmp_path / model)}, lambda event: None,
                     CancelToken())
    result = job["result"]
    assert isinstance(result, ReportResult) and result.kind == kind and result.images == 3 and result.errors == []
    assert files | {"report.json"} <= {Path(p).name for p in job["files"]}
    summary = result.summary()
    assert job["metrics"] == summary["metrics"]
    key = "miou" if kind == "segmentation" else "map"
    assert summary["metrics"][key] is None or 0.0 <= summary["metrics"][key] <= 1.0
    json.loads((tmp_path / model / "report.json").read_text())


def test_report_errors_are_one_line(demo_project, tmp_path, capsys) -> None:
    base = ["report", "--project", str(demo_project), "--out", str(tmp_path / "r")]
    rc = main([*base, "--checkpoint", str(tmp_path / "none.pt")])
    cap = capsys.readouterr()
    assert rc != 0 and cap.out == "" and len(cap.err.strip().splitlines()) == 1
    assert cap.err.startswith("error:") and "none.pt" in cap.err


def test_report_refuses_bad_thresholds_and_splits(demo_copy, tmp_path, capsys) -> None:
    res = _train(demo_copy, "faster_rcnn")
    base = ["report", "--project", str(demo_copy), "--checkpoint", res["checkpoint"], "--out", str(tmp_path / "r"),
            "--device", "cpu"]
    for extra, words in ((["--iou", "0"], "iou must be"), (["--score", "1.5"], "score must be"),
                         (["--split", "nope"], "split 'nope' has no images")):
        rc = main([*base, *extra])
        cap = capsys.readouterr()
        assert rc != 0 and cap.out == "", extra
        lines = cap.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], cap.err
