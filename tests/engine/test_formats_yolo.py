"""YOLO (Ultralytics layout): detect and segment round trips, data.yaml, one class list, flat layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from engine.data.demo import generate_demo
from engine.project.formats.common import ImportOptions
from engine.project.formats.compare import mask_iou, project_view
from engine.project.formats.yolo import export_yolo, import_yolo
from engine.project.shapes import Annotation, Box, Polygon
from engine.project.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yolo") / "demo"
    generate_demo(root, images=20, unlabeled=2, seed=5)
    return root


def test_detect_round_trip_boxes_exact(demo: Path, tmp_path: Path) -> None:
    with Store(demo) as src:
        rep = export_yolo(src, tmp_path / "out", task="detect")
        assert rep.ok and rep.images == 22
        cfg = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
        assert cfg["names"] == {0: "circle", 1: "square", 2: "triangle"}
        assert {k: cfg[k] for k in ("train", "val", "test", "unassigned")} == {
            s: f"images/{s}" for s in ("train", "val", "test", "unassigned")}
        assert (tmp_path / "out" / "labels" / "train" / "demo_0000.txt").is_file()
        with Store.create(tmp_path / "new") as dst:
            imp = import_yolo(dst, tmp_path / "out" / "data.yaml")
            assert imp.ok and imp.images == 22, imp.summary()
            # boxes only in the detect task: compare against the source's boxes
            va, vb = project_view(src), project_view(dst)
            assert set(va) == set(vb)
            for name, a in va.items():
                b = vb[name]
                assert a.split == b.split
                got = sorted(tuple(o.box) for o in b.objects)
                want = sorted(tuple(o.box) for o in a.objects)
                assert len(got) == len(want)
                if want:
                    np.testing.assert_allclose(got, want, atol=1e-6)
            assert [c.name for c in dst.categories()] == ["circle", "square", "triangle"]


def test_segment_round_trip_traces_masks(demo: Path, tmp_path: Path) -> None:
    with Store(demo) as src:
        rep = export_yolo(src, tmp_path / "out")  # auto: the demo has masks -> segment
        row = (tmp_path / "out" / "labels" / "train" / "demo_0000.txt").read_text().splitlines()[0].split()
        assert len(row) >= 7 and len(row) % 2 == 1
        with Store.create(tmp_path / "new") as dst:
            assert import_yolo(dst, tmp_path / "out").ok
            va, vb = project_view(src), project_view(dst)
            lossy = {p for p, _ in rep.warnings}  # objects in several parts or with holes
            assert any("hole" in w for _, w in rep.warnings)
            ious = []
            for name, a in va.items():
                for oa, ob in zip(a.objects, vb[name].objects):
                    ious.append(mask_iou(oa.mask(a.height, a.width), ob.mask(a.height, a.width)))
                    if f"images/{name}" not in lossy:
                        assert ious[-1] > 0.95, name
                        np.testing.assert_allclose(ob.box, oa.box, atol=0.26)  # traced a quarter pixel inside
            assert np.mean(ious) > 0.99


def test_polygons_round_trip_exactly(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        (tmp_path / "p" / "images").mkdir()
        Image.new("RGB", (97, 61)).save(tmp_path / "p" / "images" / "a.png")
        iid = s.add_image("images/a.png", 97, 61, split="val")
        a, b = s.add_category("a").id, s.add_category("b").id
        s.add_category("unused")
        s.add_annotations([Annotation(iid, b, Polygon(np.array([[1.25, 2.5], [90.125, 3], [50.3333, 60.75]]))),
                           Annotation(iid, a, Box(np.array([3.1, 4.2, 50.7, 33.3])))])
        export_yolo(s, tmp_path / "out", task="segment")
        lines = (tmp_path / "out" / "labels" / "val" / "a.txt").read_text().splitlines()
        assert [ln.split()[0] for ln in lines] == ["1", "0"]  # class index = category order in the project
        with Store.create(tmp_path / "q") as d:
            assert import_yolo(d, tmp_path / "out").ok
            assert [c.name for c in d.categories()] == ["a", "b", "unused"]  # one class list, unused kept
            poly = next(x for x in d.annotations() if x.kind == "polygon")
            np.testing.assert_allclose(poly.geometry.points, [[1.25, 2.5], [90.125, 3], [50.3333, 60.75]], atol=1e-6)
            rect = next(x for x in d.annotations() if x.category_id == d.categories()[0].id)
            np.testing.assert_allclose(rect.geometry.bbox(), [3.1, 4.2, 50.7, 33.3], atol=1e-6)
            assert d.images()[0].split == "val"


def test_flat_layout_with_classes_txt_and_score_column(tmp_path: Path) -> None:
    ds = tmp_path / "flat"
    (ds / "labels").mkdir(parents=True)
    Image.new("RGB", (200, 100)).save(ds / "pic.jpg")
    (ds / "classes.txt").write_text("person\nbike\ncar\n")
    (ds / "labels" / "pic.txt").write_text("2 0.5 0.5 0.2 0.4\n0 0.25 0.5 0.1 0.2 0.87\n")
    with Store.create(tmp_path / "p") as s:
        rep = import_yolo(s, ds, ImportOptions(split="test"))
        assert rep.ok and rep.annotations == 2, rep.summary()
        names = {c.id: c.name for c in s.categories()}
        got = {names[a.category_id]: (a.geometry.xyxy.tolist(), a.score) for a in s.annotations()}
        assert got["car"][0] == pytest.approx([80, 30, 120, 70])
        assert got["person"] == (pytest.approx([40, 40, 60, 60]), pytest.approx(0.87))
        assert s.images()[0].split == "test"


def test_image_without_label_file_is_a_background_image(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    for d in ("images/train", "labels/train"):
        (ds / d).mkdir(parents=True)
    Image.new("RGB", (10, 10), (1, 2, 3)).save(ds / "images/train/empty.png")
    Image.new("RGB", (10, 10), (4, 5, 6)).save(ds / "images/train/one.png")
    (ds / "labels/train/one.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (ds / "data.yaml").write_text("train: images/train\nnames: [thing]\n")
    with Store.create(tmp_path / "p") as s:
        rep = import_yolo(s, ds)
        assert rep.ok and rep.images == 2 and rep.annotations == 1
        assert sorted(r.path for r in s.images()) == ["images/ds/images/train/empty.png",
                                                       "images/ds/images/train/one.png"]


def test_identical_image_content_is_stored_once(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    (ds / "labels").mkdir(parents=True)
    for name, row in (("a", "0 0.5 0.5 0.5 0.5"), ("b", "0 0.25 0.25 0.5 0.5"), ("c", "0 0.5 0.5 0.5 0.5")):
        Image.new("RGB", (10, 10)).save(ds / f"{name}.png")
        (ds / "labels" / f"{name}.txt").write_text(row + "\n")
    with Store.create(tmp_path / "p") as s:
        rep = import_yolo(s, ds, ImportOptions(names=["x"]))
        assert rep.ok and rep.images == 1 and rep.annotations == 2, rep.summary()
        # b: other labels for the same pixels -> attached to a's image, with a warning
        assert any(f.endswith("b.txt") and "same content as images/ds/a.png" in w for f, w in rep.warnings)
        # c: the same labels for the same pixels as a -> a duplicate, skipped
        assert [(Path(f).name, "a.txt" in why) for f, why in rep.skipped] == [("c.txt", True)]


def test_orphan_label_is_an_error_and_a_missing_split_folder_a_warning(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    for d in ("images/train", "labels/train"):
        (ds / d).mkdir(parents=True)
    Image.new("RGB", (10, 10), (1, 2, 3)).save(ds / "images/train/a.png")
    (ds / "labels/train/a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (ds / "labels/train/ghost.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (ds / "data.yaml").write_text("train: images/train\nval: images/val\nnames: {0: thing}\n")
    with Store.create(tmp_path / "p") as s:
        rep = import_yolo(s, ds / "data.yaml")
        assert [(Path(f).name, "image not found" in why) for f, why in rep.errors] == [("ghost.txt", True)]
        assert any("images/val" in w and "does not exist" in w for _, w in rep.warnings)
        assert rep.images == 1 and rep.annotations == 1
