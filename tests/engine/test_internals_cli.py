"""``anchorlab internals`` and ``internals_job`` on a demo project: documented keys, one JSON line, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.events import ArraysReady
from engine.internals.job import internals_job
from engine.jobs import CancelToken, Collector
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.checkpoint import load_model, save_checkpoint
from engine.tasks.faster_rcnn import TASK as FRCNN

DOCS = Path(__file__).resolve().parents[2] / "docs" / "internals.md"


@pytest.fixture(scope="module")
def checkpoint(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny Faster R-CNN saved as an AnchorLab checkpoint for the demo's categories."""
    with Store(demo_project) as s:
        cats = s.categories()
    spec = DetectorSpec(num_classes=len(cats) + 1, min_size=128, max_size=192, pretrained=False)
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(spec)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, {"task": "faster_rcnn", "kind": "best", "model": model.state_dict(), "optimizer": None,
                           "spec": spec.to_dict(), "label_map": {c.id: i + 1 for i, c in enumerate(cats)},
                           "category_names": [c.name for c in cats], "run_id": 0, "step": 0, "epoch": 0})
    return path


def _image_id(project: Path) -> int:
    with Store(project) as s:
        return s.images("train")[0].id


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = cli_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_documented_keys(demo_project: Path, checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture):
    image_id = _image_id(demo_project)
    out = tmp_path / "sub" / "internals.npz"
    code, stdout, err = _run(["internals", "--project", str(demo_project), "--checkpoint", str(checkpoint),
                              "--image", str(image_id), "--out", str(out)], capsys)
    assert code == 0, err
    (line,) = stdout.strip().splitlines()
    summary = json.loads(line)
    assert summary["out"] == str(out.resolve()) and summary["task"] == "faster_rcnn"
    assert summary["layer"] == "backbone.fpn" and summary["target_index"] == 0 and summary["image_id"] == image_id

    documented = set(re.findall(r"^\| `(\w+)` \|", DOCS.read_text(), re.M))
    with np.load(out, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert {"layers", "feature", "stride", "receptive_field", "gradcam", "target_box", "target_label"} <= set(arrays)
    assert set(arrays) == documented  # every key is documented, every documented key is there
    with Store(demo_project) as s:
        rec = s.image(image_id)
        image = read_rgb(s.image_path(rec))
    assert arrays["gradcam"].shape == (rec.height, rec.width) and arrays["gradcam"].dtype == np.float32
    assert arrays["gradcam"].min() >= 0 and arrays["gradcam"].max() <= 1
    assert arrays["feature"].dtype == np.float32 and arrays["feature"].ndim == 3
    assert arrays["stride"].tolist() == [4, 4] and arrays["layers"].dtype.kind == "U"
    assert "backbone.stages.2" in arrays["layers"].tolist() and len(arrays["layers"]) == len(arrays["layer_stride"])
    _, model, _, _, _ = load_model(checkpoint)
    top = FRCNN.predict(model, [image], torch.device("cpu"))[0]  # the default target: the top detection
    assert np.allclose(arrays["target_box"], top["boxes"][0]) and int(arrays["target_label"]) == top["labels"][0]
    meta = json.loads(str(arrays["meta_json"]))
    assert meta["label_names"][0] == "background" and meta["image_id"] == image_id


def test_cli_layer_target_and_box(demo_project: Path, checkpoint: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture):
    image_id = _image_id(demo_project)
    out = tmp_path / "a.npz"
    base = ["internals", "--project", str(demo_project), "--checkpoint", str(checkpoint), "--image", str(image_id),
            "--out", str(out), "--layer", "backbone.stages.2"]
    code, stdout, err = _run([*base, "--box", "10", "20", "60", "70", "--label", "1"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["stride"] == [16, 16] and summary["receptive_field"] == [91, 91]
    assert summary["target_box"] == [10, 20, 60, 70] and summary["target_label"] == 1 and summary["target_index"] == -1
    with np.load(out) as z:
        assert z["feature"].shape[0] == 128 and str(z["layer"]) == "backbone.stages.2"


@pytest.mark.parametrize("extra, message", [
    (["--layer", "backbone.nope"], "error: unknown layer 'backbone.nope'"),
    (["--target", "99999"], "error: target 99999 is out of range"),
    (["--box", "1", "2", "3", "4"], "error: --box needs --label"),
])
def test_cli_errors_are_one_line(demo_project: Path, checkpoint: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture, extra: list[str], message: str):
    out = tmp_path / "x.npz"
    code, stdout, err = _run(["internals", "--project", str(demo_project), "--checkpoint", str(checkpoint),
                              "--image", str(_image_id(demo_project)), "--out", str(out), *extra], capsys)
    assert code != 0 and stdout == "" and not out.exists()
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("[")]  # no bars
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert err.endswith("\n") and err.splitlines()[-1] == lines[0]  # the bar's line was ended first


def test_job_emits_arrays_for_the_gui(demo_project: Path, checkpoint: Path):
    sink = Collector()
    with Store(demo_project) as s:
        path = s.image_path(s.images("train")[0])
    summary = internals_job({"project": str(demo_project), "checkpoint": str(checkpoint), "image": str(path)},
                            sink, CancelToken())
    (ev,) = sink.of(ArraysReady)
    assert ev.kind == "internals" and ev.meta["image_path"] == str(path) and ev.meta["task"] == "faster_rcnn"
    assert summary["feature_shape"] == list(ev.arrays["feature"].shape)
    cancel = CancelToken()
    cancel.cancel()
    from engine.jobs import Cancelled

    with pytest.raises(Cancelled):
        internals_job({"project": str(demo_project), "checkpoint": str(checkpoint), "image": str(path)},
                      Collector(), cancel)
