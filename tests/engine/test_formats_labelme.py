"""labelme JSON: every shape type, group_id merging, flags, embedded images, files labelme reads back."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.demo import generate_demo
from engine.project.formats.common import ImportOptions
from engine.project.formats.compare import compare_projects
from engine.project.formats.labelme import export_labelme, import_labelme
from engine.project.store import Store


def _b64_png(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _shape(label: str, points: list, shape_type: str, group_id: int | None = None, **extra: object) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "description": extra.pop("description", ""),
            "shape_type": shape_type, "flags": extra.pop("flags", {}), "mask": extra.pop("mask", None), **extra}


def labelme_load(json_path: Path) -> dict:
    """What labelme 5.x ``LabelFile.load`` + ``shapes_to_label`` do with a file; raises where labelme would."""
    data = json.loads(json_path.read_text(encoding="utf-8"))
    for key in ("version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"):
        assert key in data, key
    assert data["imageData"] is None
    with Image.open(json_path.parent / data["imagePath"]) as im:
        assert (im.height, im.width) == (data["imageHeight"], data["imageWidth"])
    h, w = data["imageHeight"], data["imageWidth"]
    for s in data["shapes"]:
        assert isinstance(s["label"], str) and isinstance(s["points"], list)
        assert set(s) >= {"label", "points", "group_id", "description", "shape_type", "flags", "mask"}
        n = len(s["points"])
        assert {"rectangle": n == 2, "circle": n == 2, "polygon": n >= 3, "mask": n == 2}.get(s["shape_type"], True)
        if s["shape_type"] == "mask":
            crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(s["mask"])))).astype(bool)
            full = np.zeros((h, w), bool)
            (x1, y1), (x2, y2) = np.asarray(s["points"]).astype(int)
            full[y1:y2 + 1, x1:x2 + 1] = crop  # labelme's shapes_to_label: raises if the crop does not fit
    return data


@pytest.fixture()
def every_shape(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    ds.mkdir()
    Image.new("RGB", (120, 90), (10, 20, 30)).save(ds / "scene.png")
    crop = np.zeros((10, 20), np.uint8)
    crop[2:8, 3:17] = 1
    doc = {"version": "5.7.0", "flags": {"outdoor": True, "night": False}, "imagePath": "scene.png",
           "imageData": None, "imageHeight": 90, "imageWidth": 120, "shapes": [
               _shape("car", [[50, 40], [10, 5]], "rectangle", description="red", flags={"parked": True}),
               _shape("car", [[60, 10], [90, 10], [90, 30], [60, 30]], "rectangle", score=0.75),
               _shape("person", [[5, 50], [30, 50], [20, 80]], "polygon", group_id=1),
               _shape("person", [[4, 49], [31, 81]], "rectangle", group_id=1),
               _shape("spine", [[17, 55], [18, 70]], "line", group_id=1),
               _shape("clicks", [[10, 60], [12, 62]], "points", group_id=1),
               _shape("dog", [[5, 50], [8, 52]], "rectangle", group_id=1),
               _shape("ball", [[100, 70], [100, 78]], "circle"),
               _shape("blob", [[30.4, 60.9], [49.4, 69.9]], "mask", mask=_b64_png(crop)),
               _shape("nose", [[15, 60]], "point"),
               _shape("path", [[1, 1], [5, 5], [9, 1]], "linestrip"),
           ]}
    (ds / "scene.json").write_text(json.dumps(doc))
    return ds


def test_every_shape_type_and_group_merging(every_shape: Path, tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, every_shape)
        assert rep.ok and rep.annotations == 10, rep.summary()
        names = {c.id: c.name for c in s.categories()}
        anns = s.annotations()
        by = {}
        for a in anns:
            by.setdefault(names[a.category_id], []).append(a)
        car2pt, car4pt = by["car"]
        assert car2pt.geometry.xyxy.tolist() == [10, 5, 50, 40]  # corner order normalised
        assert car2pt.attributes == {"description": "red", "flags": {"parked": True}}
        assert car4pt.geometry.xyxy.tolist() == [60, 10, 90, 30] and car4pt.score == 0.75
        poly, rect = by["person"]  # same (label, group_id): one object
        assert poly.group_id == rect.group_id is not None
        (extra,) = poly.attributes["labelme_extra"]  # no AnchorLab geometry: kept as data on the object
        assert (extra["label"], extra["shape_type"], extra["points"]) == ("clicks", "points", [[10, 60], [12, 62]])
        (spine,) = by["spine"]  # a line: a line annotation (its own object: another label)
        assert spine.kind == "line" and spine.geometry.points.tolist() == [[17, 55], [18, 70]]
        (nose,) = by["nose"]
        assert nose.kind == "point" and nose.geometry.xy.tolist() == [15, 60]
        (path,) = by["path"]
        assert path.kind == "line" and path.geometry.points.tolist() == [[1, 1], [5, 5], [9, 1]]
        (dog,) = by["dog"]  # same group_id, other label: another object
        assert dog.group_id is None
        (ball,) = by["ball"]
        assert ball.kind == "polygon" and np.allclose(np.hypot(*(ball.geometry.points - [100, 70]).T), 8)
        (blob,) = by["blob"]
        m = blob.geometry.to_array()
        assert m.sum() == 6 * 14 and m[60 + 2, 30 + 3] == 1 and m[60 + 1, 30 + 3] == 0  # crop at int(points[0])
        assert not [w for _, w in rep.warnings if "geometry" in w]  # nothing unsupported, nothing dropped
        tags = {t.id: t.name for t in s.tags()}
        assert {tags[t] for t in s.image_tags(s.images()[0].id)} == {"outdoor"}
        assert set(tags.values()) == {"outdoor", "night"}
        assert {a.provenance for a in anns} == {f"import:{(every_shape / 'scene.json').resolve().as_posix()}"}
        # and back out: labelme reads it, the circle is a circle again, line/linestrip/point as they came,
        # the points shape back in its group
        export_labelme(s, tmp_path / "out")
    data = labelme_load(tmp_path / "out" / "scene.json")
    types = sorted(sh["shape_type"] for sh in data["shapes"])
    assert types == ["circle", "line", "linestrip", "mask", "point", "points", "polygon", "rectangle", "rectangle",
                     "rectangle", "rectangle"]
    clicks = next(sh for sh in data["shapes"] if sh["shape_type"] == "points")
    poly = next(sh for sh in data["shapes"] if sh["shape_type"] == "polygon")
    assert clicks["group_id"] == poly["group_id"] is not None and clicks["label"] == "clicks"
    line = next(sh for sh in data["shapes"] if sh["shape_type"] == "line")
    assert line["label"] == "spine" and line["points"] == [[17, 55], [18, 70]]
    assert next(sh for sh in data["shapes"] if sh["shape_type"] == "point")["points"] == [[15, 60]]
    assert data["flags"] == {"outdoor": True, "night": False}
    with Store.create(tmp_path / "again") as s:
        assert import_labelme(s, tmp_path / "out").annotations == 10


def test_embedded_image_data_is_written_out(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (33, 22), (200, 0, 0)).save(buf, format="PNG")
    doc = {"version": "5.7.0", "flags": {}, "shapes": [_shape("x", [[1, 1], [10, 10]], "rectangle")],
           "imagePath": "gone/photo.jpg", "imageData": base64.b64encode(buf.getvalue()).decode(),
           "imageHeight": 22, "imageWidth": 33}
    (ds / "photo.json").write_text(json.dumps(doc))
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, ds)
        assert rep.ok and rep.images == 1, rep.summary()
        (rec,) = s.images()
        assert rec.path == "images/ds/gone/photo.png" and (rec.width, rec.height) == (33, 22)
        assert np.asarray(Image.open(s.image_path(rec)))[0, 0].tolist() == [200, 0, 0]


def test_round_trip_demo_and_labelme_can_read_the_export(tmp_path: Path) -> None:
    generate_demo(tmp_path / "demo", images=12, unlabeled=2, seed=6)
    with Store(tmp_path / "demo") as src:
        rep = export_labelme(src, tmp_path / "out")
        assert rep.ok and rep.images == 14
        for f in sorted((tmp_path / "out").glob("*.json")):
            labelme_load(f)
        with Store.create(tmp_path / "new") as dst:
            imp = import_labelme(dst, tmp_path / "out")
            assert imp.ok and imp.images == 14 and not imp.warnings, imp.summary()
            assert compare_projects(src, dst, splits=False) == []  # labelme has no splits
            st, dt = {t.id: t.name for t in src.tags()}, {t.id: t.name for t in dst.tags()}
            for a in src.images():
                b = next(r for r in dst.images() if Path(r.path).name == Path(a.path).name)
                assert {st[t] for t in src.image_tags(a.id)} == {dt[t] for t in dst.image_tags(b.id)}


def test_twice_is_skipped_unless_replace(every_shape: Path, tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        assert import_labelme(s, every_shape).annotations == 10
        manual = s.add_category("manual").id
        from engine.project.shapes import Annotation, Box

        s.add_annotation(Annotation(s.images()[0].id, manual, Box(np.array([1, 1, 5, 5]))))
        again = import_labelme(s, every_shape)
        assert again.annotations == 0 and len(again.skipped) == 1 and "replace" in again.skipped[0][1]
        assert len(s.annotations()) == 11
        replaced = import_labelme(s, every_shape, ImportOptions(replace=True))
        assert replaced.ok and replaced.annotations == 10 and replaced.images == 0
        assert len(s.annotations()) == 11  # old import replaced, the manual box untouched
        assert sum(a.provenance == "manual" for a in s.annotations()) == 1


def test_images_inside_the_project_stay_in_place_and_changed_files_are_detected(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        raw = tmp_path / "p" / "raw"
        raw.mkdir()
        Image.new("RGB", (30, 20), (5, 6, 7)).save(raw / "x.png")
        doc = {"version": "5.7.0", "flags": {}, "imagePath": "x.png", "imageData": None, "imageHeight": 20,
               "imageWidth": 30, "shapes": [_shape("a", [[1, 1], [9, 9]], "rectangle")]}
        (raw / "x.json").write_text(json.dumps(doc))
        assert import_labelme(s, raw).ok
        assert [r.path for r in s.images()] == ["raw/x.png"] and not (tmp_path / "p" / "images").exists()
        doc["shapes"].append(_shape("a", [[2, 2], [8, 8]], "rectangle"))
        (raw / "x.json").write_text(json.dumps(doc))
        rep = import_labelme(s, raw)
        assert rep.annotations == 0 and "changed since" in rep.skipped[0][1]
        rep = import_labelme(s, raw, ImportOptions(replace=True))
        assert rep.annotations == 2 and len(s.annotations()) == 2 and len(s.images()) == 1
