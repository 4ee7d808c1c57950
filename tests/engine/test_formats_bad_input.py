"""A corpus of bad files, one per failure: each is reported with its reason, the rest import, and the
project is unchanged for the failed file (no rows, no copied images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.project.formats.coco import import_coco
from engine.project.formats.labelme import import_labelme
from engine.project.formats.voc import import_voc
from engine.project.formats.yolo import import_yolo
from engine.project.store import Store


def _img(path: Path, w: int = 64, h: int = 48, colour: tuple = (50, 60, 70)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), colour).save(path)


def _errors(rep: object) -> dict[str, str]:
    return {Path(f).name: why for f, why in rep.errors}


def _copied(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "images").rglob("*") if p.is_file())


def _lm(image: str, shapes: list, w: int = 64, h: int = 48, **top: object) -> str:
    return json.dumps({"version": "5.7.0", "flags": {}, "shapes": shapes, "imagePath": image, "imageData": None,
                       "imageHeight": h, "imageWidth": w, **top})


def _rect(points: object, label: object = "car") -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": "rectangle", "flags": {}}


def test_labelme_corpus(tmp_path: Path) -> None:
    ds = tmp_path / "lm"
    for i in range(9):
        _img(ds / f"i{i}.png", colour=(i, 0, 0))
    _img(tmp_path / "elsewhere.png")
    files = {
        "good.json": _lm("i0.png", [_rect([[1, 2], [30, 40]])]),
        "outside_box.json": _lm("i1.png", [_rect([[-10, -5], [50, 500]])]),
        "bad_json.json": '{"shapes": [',
        "missing_keys.json": json.dumps({"imagePath": "i2.png"}),
        "wrong_types.json": _lm("i3.png", [_rect("1,2,3,4")]),
        "nan.json": _lm("i4.png", [_rect([[1, 2], [30, 40]]), _rect([[float("nan"), 2], [30, 40]])]),
        "inf.json": _lm("i5.png", [_rect([[1, 2], [float("inf"), 40]])]),
        "outside_folder.json": _lm("../elsewhere.png", [_rect([[1, 2], [30, 40]])]),
        "missing_image.json": _lm("nothere.png", [_rect([[1, 2], [30, 40]])]),
        "size_mismatch.json": _lm("i6.png", [_rect([[1, 2], [30, 40]])], w=640),
        "label_type.json": _lm("i7.png", [_rect([[1, 2], [30, 40]], label=5)]),
    }
    for name, text in files.items():
        (ds / name).write_text(text)
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, ds)
        errors = _errors(rep)
        assert set(errors) == set(files) - {"good.json", "outside_box.json"}
        assert "bad JSON" in errors["bad_json.json"]
        assert "missing key 'shapes'" in errors["missing_keys.json"]
        assert "expected a list of [x, y]" in errors["wrong_types.json"]
        assert "finite" in errors["nan.json"] and "finite" in errors["inf.json"]
        assert "outside the dataset folder" in errors["outside_folder.json"]
        assert "image not found" in errors["missing_image.json"]
        assert "size mismatch" in errors["size_mismatch.json"] and "640x48" in errors["size_mismatch.json"]
        assert "label" in errors["label_type.json"]
        (warn,) = [w for f, w in rep.warnings if f.endswith("outside_box.json")]
        assert "clipped to [0.0, 0.0, 50.0, 48.0]" in warn
        assert len(rep.imported) == 2 and len(s.images()) == 2 and len(s.annotations()) == 2
        assert _copied(tmp_path / "p") == ["i0.png", "i1.png"]
        boxes = sorted(a.geometry.xyxy.tolist() for a in s.annotations())
        assert boxes == [[0, 0, 50, 48], [1, 2, 30, 40]]


def test_coco_corpus(tmp_path: Path) -> None:
    ds = tmp_path / "coco"
    for i in range(4):
        _img(ds / "images" / f"c{i}.png", colour=(0, i, 0))

    def doc(file_name: str = "c0.png", w: int = 64, **ann: object) -> str:
        a = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], **ann}
        return json.dumps({"images": [{"id": 1, "file_name": file_name, "width": w, "height": 48}],
                           "annotations": [a], "categories": [{"id": 1, "name": "thing"}]})

    files = {
        "good.json": doc(),
        "outside_box.json": doc("c1.png", bbox=[50, 40, 30, 30]),
        "bad_json.json": "[{]",
        "missing_keys.json": json.dumps({"images": [], "annotations": []}),
        "wrong_types.json": doc("c2.png", bbox="1 2 3 4"),
        "nan.json": doc("c2.png", bbox=[1, float("nan"), 3, 4]),
        "inf.json": doc("c2.png", segmentation=[[1, 2, 3, float("inf"), 5, 6]]),
        "unknown_category.json": doc("c2.png", category_id=9),
        "outside_folder.json": doc("../../elsewhere.png"),
        "missing_image.json": doc("nothere.png"),
        "size_mismatch.json": doc("c3.png", w=65),
    }
    for name, text in files.items():
        (ds / name).write_text(text)
    with Store.create(tmp_path / "p") as s:
        rep = import_coco(s, ds)
        errors = _errors(rep)
        assert set(errors) == set(files) - {"good.json", "outside_box.json"}
        assert "bad JSON" in errors["bad_json.json"]
        assert "missing or invalid key 'categories'" in errors["missing_keys.json"]
        assert "bbox" in errors["wrong_types.json"] and "annotation id 1" in errors["wrong_types.json"]
        assert "finite" in errors["nan.json"] and "finite" in errors["inf.json"]
        assert "unknown category_id 9" in errors["unknown_category.json"]
        assert "points outside the image folder" in errors["outside_folder.json"]
        assert "image not found" in errors["missing_image.json"]
        assert "size mismatch" in errors["size_mismatch.json"]
        assert any("clipped" in w for f, w in rep.warnings if f.endswith("outside_box.json"))
        assert len(s.images()) == 2 and len(s.annotations()) == 2
        assert sorted(a.geometry.xyxy.tolist() for a in s.annotations()) == [[1, 2, 11, 12], [50, 40, 64, 48]]
        assert _copied(tmp_path / "p") == ["c0.png", "c1.png"]


def test_voc_corpus(tmp_path: Path) -> None:
    ds = tmp_path / "voc"
    for i in range(4):
        _img(ds / "JPEGImages" / f"v{i}.png", colour=(0, 0, i))

    def xml(filename: str = "v0.png", box: str = "1 2 30 40", w: int = 64) -> str:
        b = dict(zip(("xmin", "ymin", "xmax", "ymax"), box.split(" ")))
        return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>48</height></size>"
                f"<object><name>cat</name><bndbox>{''.join(f'<{k}>{v}</{k}>' for k, v in b.items())}</bndbox>"
                "</object></annotation>")

    files = {
        "good.xml": xml(),
        "outside_box.xml": xml("v1.png", "-3 2 300 40"),
        "bad_xml.xml": "<annotation><filename>v2.png</annotation>",
        "missing_keys.xml": "<annotation><object><name>x</name></object></annotation>",
        "wrong_types.xml": xml("v2.png", "1 2 thirty 40"),
        "nan.xml": xml("v2.png", "1 nan 30 40"),
        "inf.xml": xml("v2.png", "1 2 inf 40"),
        "outside_folder.xml": xml("../../../elsewhere.png"),
        "missing_image.xml": xml("nothere.png"),
        "size_mismatch.xml": xml("v3.png", w=99),
    }
    (ds / "Annotations").mkdir()
    for name, text in files.items():
        (ds / "Annotations" / name).write_text(text)
    with Store.create(tmp_path / "p") as s:
        rep = import_voc(s, ds)
        errors = _errors(rep)
        assert set(errors) == set(files) - {"good.xml", "outside_box.xml"}
        assert "bad XML" in errors["bad_xml.xml"]
        assert "missing <filename>" in errors["missing_keys.xml"]
        assert "<xmax> is not a number: 'thirty'" in errors["wrong_types.xml"]
        assert "finite" in errors["nan.xml"] and "finite" in errors["inf.xml"]
        assert "outside the image folder" in errors["outside_folder.xml"]
        assert "image not found" in errors["missing_image.xml"]
        assert "size mismatch" in errors["size_mismatch.xml"]
        assert sorted(a.geometry.xyxy.tolist() for a in s.annotations()) == [[0, 2, 64, 40], [1, 2, 30, 40]]


def test_yolo_corpus(tmp_path: Path) -> None:
    ds = tmp_path / "yolo"
    rows = {
        "good": "0 0.5 0.5 0.25 0.25",
        "overshoot": "1 0.9 0.5 0.21 0.2",  # right edge at 1.005: clipped with a warning
        "columns": "0 0.5 0.5 0.25",
        "wrong_types": "0 0.5 half 0.25 0.25",
        "nan": "0 0.5 nan 0.25 0.25",
        "inf": "0 0.5 0.5 inf 0.25",
        "unknown_class": "2 0.5 0.5 0.25 0.25",
        "class_not_int": "0.5 0.5 0.5 0.25 0.25",
        "pixels": "0 32 24 16 16",
        "missing_image": "0 0.5 0.5 0.25 0.25",
    }
    (ds / "labels").mkdir(parents=True)
    (ds / "classes.txt").write_text("a\nb\n")
    for i, (name, row) in enumerate(rows.items()):
        (ds / "labels" / f"{name}.txt").write_text(f"0 0.1 0.1 0.1 0.1\n{row}\n")
        if name != "missing_image":
            _img(ds / "images" / f"{name}.png", colour=(i, i, 0))
    with Store.create(tmp_path / "p") as s:
        rep = import_yolo(s, ds)
        errors = {Path(f).stem: why for f, why in rep.errors}
        assert set(errors) == set(rows) - {"good", "overshoot"}
        assert errors["columns"].startswith("line 2: expected 5 columns")
        assert "not a number" in errors["wrong_types"]
        assert "finite" in errors["nan"] and "finite" in errors["inf"]
        assert "unknown class index 2" in errors["unknown_class"]
        assert "unknown class index 0.5" in errors["class_not_int"]
        assert "normalised" in errors["pixels"] and "1.01" in errors["pixels"]
        assert "image not found" in errors["missing_image"]
        assert any("clipped" in w for f, w in rep.warnings if f.endswith("overshoot.txt"))
        assert len(s.images()) == 2 and len(s.annotations()) == 4
        assert _copied(tmp_path / "p") == ["good.png", "overshoot.png"]


def test_failure_inside_the_transaction_leaves_no_trace(tmp_path: Path) -> None:
    """A write that fails after the image was copied: rows rolled back, the copy removed, others go on."""
    ds = tmp_path / "lm"
    _img(ds / "a.png", colour=(1, 1, 1))
    _img(ds / "b.png", colour=(2, 2, 2))
    bad = {"label": "doomed", "points": [[1, 1], [9, 9]], "shape_type": "rectangle", "score": 0.5}
    (ds / "a.json").write_text(_lm("a.png", [_rect([[1, 1], [5, 5]]), bad], flags={"seen": True}))
    (ds / "b.json").write_text(_lm("b.png", [_rect([[1, 1], [5, 5]])]))
    with Store.create(tmp_path / "p") as s:
        s.conn.execute("CREATE TRIGGER boom BEFORE INSERT ON annotations WHEN NEW.score = 0.5 "
                       "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        rep = import_labelme(s, ds)
        assert list(_errors(rep)) == ["a.json"] and "disk says no" in _errors(rep)["a.json"]
        assert [Path(r.path).name for r in s.images()] == ["b.png"]
        assert [c.name for c in s.categories()] == ["car"] and s.tags() == []
        assert _copied(tmp_path / "p") == ["b.png"]
        assert s.conn.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 1
        s.conn.execute("DROP TRIGGER boom")
        again = import_labelme(s, ds)  # a.json was never recorded: it imports now, b.json is skipped
        assert again.ok and [Path(f).name for f in again.imported] == ["a.json"] and len(again.skipped) == 1
        assert np.isclose(sorted(a.score or 0 for a in s.annotations())[-1], 0.5)
