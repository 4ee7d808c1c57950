"""CLI: ``anchorlab import`` / ``anchorlab export`` print the summary and fail on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.data.demo import generate_demo
from engine.project.formats.compare import compare_projects
from engine.project.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "demo"
    generate_demo(root, images=8, unlabeled=1, seed=9)
    return root


@pytest.mark.parametrize("fmt", ["coco", "voc", "labelme"])
def test_export_then_import_round_trip(fmt: str, demo: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "--format", fmt, "--out", str(tmp_path / "out"), "--project", str(demo)]) == 0
    out = capsys.readouterr().out
    assert f"{fmt} export to" in out and "9 images" in out and "0 error(s)" in out
    assert main(["new", str(tmp_path / "new")]) == 0
    assert main(["import", "--format", fmt, str(tmp_path / "out"), "--project", str(tmp_path / "new"),
                 "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert f"{fmt} import from" in out and "9 images" in out and "0 error(s)" in out
    with Store(demo) as a, Store(tmp_path / "new") as b:
        assert compare_projects(a, b, splits=False) == []
        assert {r.split for r in b.images()} == {"val"}  # --split assigned to the imported images
    # the same files again: skipped, still exit 0
    assert main(["import", "--format", fmt, str(tmp_path / "out"), "--project", str(tmp_path / "new")]) == 0
    assert "0 file(s) imported" in capsys.readouterr().out


def test_yolo_and_masks_export_and_split(demo: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "--format", "yolo", "--out", str(tmp_path / "y"), "--project", str(demo),
                 "--split", "train", "--task", "detect"]) == 0
    assert sorted(p.name for p in (tmp_path / "y" / "labels").iterdir()) == ["train"]
    assert main(["export", "--format", "masks", "--out", str(tmp_path / "m"), "--project", str(demo)]) == 0
    assert (tmp_path / "m" / "labels.txt").is_file()
    assert main(["new", str(tmp_path / "new")]) == 0
    assert main(["import", "--format", "yolo", str(tmp_path / "y" / "data.yaml"), "--project",
                 str(tmp_path / "new")]) == 0
    with Store(demo) as a, Store(tmp_path / "new") as b:
        assert len(b.images()) == len(a.images("train"))


def test_errors_print_reasons_and_return_non_zero(tmp_path: Path, capsys) -> None:
    ds = tmp_path / "lm"
    ds.mkdir()
    Image.new("RGB", (20, 10)).save(ds / "a.png")
    good = {"version": "5.7.0", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 10,
            "imageWidth": 20, "shapes": [{"label": "x", "points": [[1, 1], [5, 5]], "shape_type": "rectangle"}]}
    (ds / "a.json").write_text(json.dumps(good))
    (ds / "broken.json").write_text("{")
    assert main(["new", str(tmp_path / "p")]) == 0
    rc = main(["import", "--format", "labelme", str(ds), "--project", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "1 file(s) imported" in out and "1 error(s)" in out
    assert f"error: {ds / 'broken.json'}: bad JSON" in out
    assert len(Store(tmp_path / "p").annotations()) == 1


def test_refused_output_is_a_one_line_error(demo: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    assert main(["export", "--format", "coco", "--out", str(tmp_path / "out"), "--project", str(demo)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to overwrite") and "\n" not in err
    assert main(["import", "--format", "coco", str(tmp_path / "nope"), "--project", str(demo)]) == 1
    assert "no such file or folder" in capsys.readouterr().err
