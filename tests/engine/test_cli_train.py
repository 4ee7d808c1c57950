"""``anchorlab train / eval / predict``: one JSON line on stdout, store records, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli import main
from engine.project.store import Store


def _one_json_line(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_train_eval_predict(demo_copy, capsys) -> None:
    p = str(demo_copy)
    # --max-minutes tiny: stops cleanly after the first step, still evaluates and keeps best.pt
    rc = main(["train", "--project", p, "--model", "faster_rcnn", "--backbone", "tiny", "--epochs", "3",
               "--batch-size", "2", "--max-images", "4", "--min-size", "128", "--max-size", "192",
               "--max-minutes", "0.001", "--no-augment-color"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = _one_json_line(cap.out)
    assert {"map", "map50", "checkpoint", "run_id", "status", "step"} <= set(res)
    assert res["status"] == "finished" and res["step"] == 1
    assert res["checkpoint"].endswith("best.pt") and Path(res["checkpoint"]).is_file()
    assert "%" in cap.err  # the progress bar went to stderr
    with Store(demo_copy) as store:
        run = store.run(res["run_id"])
        assert run.status == "finished" and run.summary["stop_reason"] == "time_limit"
        assert run.config["max_minutes"] == 0.001 and run.config["augment_color"] is False
        assert any(r[3] == "map50" for r in store.metrics(res["run_id"]))
        manual = len(store.annotations())

    rc = main(["eval", "--project", p, "--checkpoint", res["checkpoint"], "--split", "val", "--max-images", "4"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    ev = _one_json_line(cap.out)
    assert ev["images"] == 4 and ev["run_id"] == res["run_id"] and 0.0 <= ev["map50"] <= 1.0
    assert ev["map50"] == res["map50"]  # same checkpoint, same images -> the metrics the run recorded

    for _ in range(2):  # a second --write replaces this run's predictions, never adds to them
        rc = main(["predict", "--project", p, "--checkpoint", res["checkpoint"], "--split", "val",
                   "--score", "0.0", "--write"])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        pr = _one_json_line(cap.out)
        assert pr["written"] == pr["detections"] > 0 and pr["provenance"] == f"model:{res['run_id']}"
        with Store(demo_copy) as store:
            anns = store.annotations()
        model_anns = [a for a in anns if a.provenance == pr["provenance"]]
        assert len(model_anns) == pr["written"] and all(a.score is not None for a in model_anns)
        assert len(anns) - len(model_anns) == manual

    rc = main(["predict", "--project", p, "--checkpoint", res["checkpoint"], "--image", "1", "--score", "0.99"])
    pr = _one_json_line(capsys.readouterr().out)
    assert rc == 0 and pr["images"] == 1 and pr["written"] == 0


def test_bad_project_is_one_error_line(tmp_path, capsys) -> None:
    rc = main(["train", "--project", str(tmp_path / "missing"), "--epochs", "1"])
    cap = capsys.readouterr()
    assert rc != 0 and cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing" in lines[0]


def test_eval_missing_checkpoint_is_one_error_line(demo_project, tmp_path, capsys) -> None:
    rc = main(["eval", "--project", str(demo_project), "--checkpoint", str(tmp_path / "none.pt")])
    cap = capsys.readouterr()
    assert rc != 0 and cap.out == ""
    assert cap.err.strip().startswith("error:") and "none.pt" in cap.err and len(cap.err.strip().splitlines()) == 1
