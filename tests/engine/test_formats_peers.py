"""Files other tools wrote (labelme, X-AnyLabeling): each imports with the right counts, categories and
coordinates, and what AnchorLab exports from them reads back the same. Read in place, never copied."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.project.formats.coco import export_coco
from engine.project.formats.common import ImportOptions
from engine.project.formats.compare import compare_projects
from engine.project.formats.labelme import export_labelme, import_labelme
from engine.project.formats.voc import export_voc, import_voc
from engine.project.formats.yolo import export_yolo, import_yolo
from engine.project.store import Store

PEERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "peers"  # ../shared next to the repo
pytestmark = pytest.mark.skipif(not PEERS.is_dir(), reason=f"peer files not found at {PEERS}")


def _counts(s: Store) -> Counter:
    names = {c.id: c.name for c in s.categories()}
    return Counter(names[a.category_id] for a in s.annotations())


def _boxes(s: Store) -> dict[str, list[list[float]]]:
    names = {c.id: c.name for c in s.categories()}
    out: dict[str, list] = {}
    for a in s.annotations():
        if a.kind == "box":
            out.setdefault(names[a.category_id], []).append(a.geometry.xyxy.tolist())
    return {k: sorted(v) for k, v in out.items()}


def _reexport(s: Store, tmp_path: Path, export: object, imp: object, **kw: object) -> Store:
    export(s, tmp_path / "re")
    dst = Store.create(tmp_path / "re_project")
    rep = imp(dst, tmp_path / "re", **kw)
    assert rep.ok, rep.summary()
    return dst


def test_labelme_primitives_every_shape_type(tmp_path: Path) -> None:
    src = PEERS / "labelme" / "primitives"
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, src)
        assert rep.ok and rep.images == 1
        assert _counts(s) == Counter({"rectangle": 2, "circle": 1, "polygon": 1, "octagon": 1, "line": 1, "point": 1,
                                      "line_strip": 1})
        kinds = sorted(a.kind for a in s.annotations())
        assert kinds == ["box", "box", "line", "line", "mask", "point", "polygon", "polygon"]  # every shape
        assert rep.warnings == []
        assert _boxes(s)["rectangle"] == [[32, 35, 132, 135], [391, 33, 542, 135]]
        names = {c.id: c.name for c in s.categories()}
        mask = next(a for a in s.annotations() if names[a.category_id] == "octagon").geometry.to_array()
        ys, xs = np.nonzero(mask)
        assert xs.min() >= 417 and xs.max() <= 516 and ys.min() >= 305 and ys.max() <= 404
        poly = next(a for a in s.annotations() if names[a.category_id] == "polygon")
        assert poly.geometry.points.tolist() == [[69, 318], [45, 403], [173, 406], [198, 321]]
        with _reexport(s, tmp_path, export_labelme, import_labelme) as again:
            assert compare_projects(s, again, splits=False) == []
        coco = export_coco(s, tmp_path / "coco")  # COCO holds no points or lines: said, not silent
        assert [w for _, w in coco.warnings if "3 point/line annotation(s) not exported" in w]
        doc = json.loads((tmp_path / "re" / "primitives.json").read_text())
        assert sorted(sh["shape_type"] for sh in doc["shapes"]) == ["circle", "line", "linestrip", "mask", "point",
                                                                     "polygon", "rectangle", "rectangle"]


def test_labelme_bbox_detection_and_its_voc_conversion_agree(tmp_path: Path) -> None:
    base = PEERS / "labelme" / "bbox_detection"
    with Store.create(tmp_path / "lm") as lm, Store.create(tmp_path / "voc") as voc:
        rep = import_labelme(lm, base / "data_annotated")
        assert rep.ok and rep.images == 3 and rep.annotations == 9
        assert _counts(lm) == Counter({"person": 6, "bus": 2, "car": 1})
        assert [191.0, 107.36900369003689, 313.0, 329.36900369003695] in _boxes(lm)["person"]
        rv = import_voc(voc, base / "voc", ImportOptions(images=base / "data_annotated"))
        assert rv.ok and rv.images == 3 and rv.annotations == 9, rv.summary()
        assert compare_projects(lm, voc, splits=False) == []  # labelme's converter kept the coordinates
        with _reexport(voc, tmp_path, export_voc, import_voc) as again:
            assert compare_projects(voc, again) == []


def test_labelme_classification_flags_become_tags(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, PEERS / "labelme" / "classification" / "data_annotated")
        assert rep.ok and rep.images == 2 and rep.annotations == 0
        tags = {t.id: t.name for t in s.tags()}
        assert set(tags.values()) == {"__ignore__", "cat", "dog"}
        on = {Path(r.path).stem: {tags[t] for t in s.image_tags(r.id)} for r in s.images()}
        assert on == {"0001": {"cat"}, "0002": {"dog"}}
        export_labelme(s, tmp_path / "out")
        flags = json.loads((tmp_path / "out" / "0002.json").read_text())["flags"]
        assert flags == {"__ignore__": False, "cat": False, "dog": True}


def test_x_anylabeling_json_voc_and_yolo(tmp_path: Path) -> None:
    base = PEERS / "x-anylabeling" / "assets"
    with Store.create(tmp_path / "json") as js:
        rep = import_labelme(js, base / "demo.json")
        assert rep.ok and rep.annotations == 51 and not rep.warnings, rep.summary()
        assert _counts(js) == Counter({"person": 21, "car": 14, "handbag": 7, "truck": 6, "bicycle": 2, "bus": 1})
        first = next(a for a in js.annotations())
        np.testing.assert_allclose(first.geometry.xyxy, [568.0528541564942, 1437.3789642333986,
                                                         801.4536323547363, 1941.003533935547])
        assert first.score == pytest.approx(0.8585938811302185)
        with _reexport(js, tmp_path / "a", export_labelme, import_labelme) as again:
            assert compare_projects(js, again, splits=False) == []
            assert sorted(a.score for a in again.annotations()) == sorted(a.score for a in js.annotations())
    with Store.create(tmp_path / "voc") as voc, Store.create(tmp_path / "yolo") as yolo:
        rv = import_voc(voc, base / "Annotations" / "demo.xml")
        assert rv.ok and rv.annotations == 49, rv.summary()
        want = Counter({"person": 21, "car": 14, "handbag": 7, "truck": 4, "bicycle": 2, "bus": 1})
        assert _counts(voc) == want
        assert [1294, 1097, 1370, 1230] in _boxes(voc)["handbag"]
        ry = import_yolo(yolo, base)
        assert ry.ok and ry.annotations == 49, ry.summary()
        assert len(yolo.categories()) == 80 and yolo.categories()[26].name == "handbag"  # the whole class list
        assert _counts(yolo) == want
        vb, yb = _boxes(voc), _boxes(yolo)
        for name in want:  # the YOLO rows are the same boxes, normalised
            np.testing.assert_allclose(yb[name], vb[name], atol=1e-6)
        export_yolo(yolo, tmp_path / "re_yolo")
        (label,) = (tmp_path / "re_yolo" / "labels" / "train").rglob("demo.txt")
        rows = label.read_text().split("\n")
        original = (base / "labels" / "demo.txt").read_text().split("\n")
        assert [r.split()[0] for r in rows if r] == [r.split()[0] for r in original if r]  # indices kept
        with Store.create(tmp_path / "re_yolo_project") as again:
            assert import_yolo(again, tmp_path / "re_yolo").ok
            assert compare_projects(yolo, again) == []


def test_x_anylabeling_segmentation_json_and_yolo_agree(tmp_path: Path) -> None:
    base = PEERS / "x-anylabeling" / "examples" / "segmentation" / "instance_segmentation"
    with Store.create(tmp_path / "json") as js, Store.create(tmp_path / "yolo") as yolo:
        rep = import_labelme(js, base / "sources")
        assert rep.ok and rep.images == 1 and _counts(js) == Counter({"cat": 1, "dog": 1})
        assert sorted(len(a.geometry.points) for a in js.annotations()) == [41, 48]
        ry = import_yolo(yolo, base, ImportOptions(images=base / "sources", names=["cat", "dog"]))
        assert ry.ok and ry.images == 1, ry.summary()
        assert compare_projects(js, yolo, splits=False, polygon_atol=1e-6) == []
        with _reexport(yolo, tmp_path, export_yolo, import_yolo) as again:
            assert compare_projects(yolo, again) == []


def test_x_anylabeling_multi_label_flags(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        rep = import_labelme(s, PEERS / "x-anylabeling" / "examples" / "classification" / "image-level")
        assert rep.ok and rep.images == 1 and rep.annotations == 0
        (rec,) = s.images()
        assert (rec.width, rec.height) == (1500, 1000)
        assert len(s.image_tags(rec.id)) == 13 and "Pomegranate" in {t.name for t in s.tags()}
