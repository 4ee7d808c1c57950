"""Pascal VOC: round trip with segmentation PNGs and splits, flags, float coordinates, class maps."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.demo import generate_demo
from engine.project.formats.compare import compare_projects
from engine.project.formats.masks import voc_palette
from engine.project.formats.voc import export_voc, import_voc
from engine.project.shapes import Annotation, Box
from engine.project.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voc") / "demo"
    generate_demo(root, images=20, unlabeled=2, seed=4)
    return root


def test_round_trip_demo_with_masks_and_splits(demo: Path, tmp_path: Path) -> None:
    with Store(demo) as src:
        rep = export_voc(src, tmp_path / "out")
        assert rep.ok and rep.images == 22
        out = tmp_path / "out"
        assert {p.stem for p in (out / "ImageSets/Main").glob("*.txt")} == {"train", "val", "test", "unassigned"}
        png = Image.open(next((out / "SegmentationObject").glob("*.png")))
        assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]  # the VOC colour map
        with Store.create(tmp_path / "new") as dst:
            imp = import_voc(dst, out)
            assert imp.ok and imp.images == 22 and len(imp.imported) == 22, imp.summary()
            assert compare_projects(src, dst) == []  # boxes exact, masks IoU 1, splits kept
            assert [c.name for c in dst.categories()] == [c.name for c in src.categories()]


def test_flags_and_float_coordinates_round_trip(tmp_path: Path) -> None:
    ds = tmp_path / "VOC"
    (ds / "Annotations").mkdir(parents=True)
    (ds / "JPEGImages").mkdir()
    Image.new("RGB", (100, 80)).save(ds / "JPEGImages" / "x.jpg")
    (ds / "Annotations" / "x.xml").write_text("""<annotation><filename>x.jpg</filename>
      <size><width>100</width><height>80</height><depth>3</depth></size>
      <object><name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
        <bndbox><xmin>10.5</xmin><ymin>20.25</ymin><xmax>60</xmax><ymax>70.125</ymax></bndbox></object>
      <object><name>cat</name><truncated/><difficult>1</difficult>
        <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
    </annotation>""")
    with Store.create(tmp_path / "p") as s:
        rep = import_voc(s, ds)
        assert rep.ok and rep.annotations == 2
        dog, cat = s.annotations()
        assert dog.geometry.xyxy.tolist() == [10.5, 20.25, 60, 70.125]
        assert dog.attributes == {"truncated": True, "pose": "Left"}
        assert cat.attributes == {"difficult": True}
        export_voc(s, tmp_path / "out")
    root = ET.parse(tmp_path / "out" / "Annotations" / "x.xml").getroot()
    objs = {o.findtext("name"): o for o in root.findall("object")}
    assert [objs["dog"].findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == [
        "10.5", "20.25", "60", "70.125"]
    assert (objs["dog"].findtext("truncated"), objs["dog"].findtext("difficult"), objs["dog"].findtext("pose")) == (
        "1", "0", "Left")
    assert objs["cat"].findtext("difficult") == "1"
    with Store.create(tmp_path / "q") as s:
        assert import_voc(s, tmp_path / "out").ok
        assert sorted(a.attributes.get("difficult", False) for a in s.annotations()) == [False, True]


def test_class_map_without_object_map_gives_one_mask_per_class(tmp_path: Path) -> None:
    ds = tmp_path / "VOC"
    for d in ("Annotations", "JPEGImages", "SegmentationClass"):
        (ds / d).mkdir(parents=True)
    Image.new("RGB", (32, 24)).save(ds / "JPEGImages" / "y.png")
    (ds / "Annotations" / "y.xml").write_text("<annotation><filename>y.png</filename></annotation>")
    index = np.zeros((24, 32), np.uint8)
    index[2:10, 3:12] = 2
    index[12:20, 15:30] = 1
    index[11, :] = 255  # void band: ignored
    im = Image.fromarray(index, mode="P")
    im.putpalette(voc_palette().reshape(-1).tolist())
    im.save(ds / "SegmentationClass" / "y.png")
    (ds / "labels.txt").write_text("_background_\nroad\ncar\n")
    with Store.create(tmp_path / "p") as s:
        rep = import_voc(s, ds)
        assert rep.ok, rep.summary()
        assert [c.name for c in s.categories()] == ["road", "car"]
        names = {c.id: c.name for c in s.categories()}
        masks = {names[a.category_id]: a.geometry.to_array() for a in s.annotations()}
        np.testing.assert_array_equal(masks["car"], index == 2)
        np.testing.assert_array_equal(masks["road"], index == 1)


def test_polygons_are_rasterised_into_the_maps_with_a_warning(tmp_path: Path) -> None:
    from engine.project.shapes import Polygon

    with Store.create(tmp_path / "p") as s:
        (tmp_path / "p" / "images").mkdir()
        Image.new("RGB", (40, 40)).save(tmp_path / "p" / "images" / "z.png")
        iid = s.add_image("images/z.png", 40, 40)
        cat = s.add_category("tri").id
        s.add_annotations([Annotation(iid, cat, Polygon(np.array([[5, 5], [30, 5], [5, 30]])), group_id=1),
                           Annotation(iid, cat, Box(np.array([5, 5, 30, 30])), group_id=1)])
        rep = export_voc(s, tmp_path / "out")
        assert any("polygon" in w for _, w in rep.warnings)
    obj = np.asarray(Image.open(tmp_path / "out" / "SegmentationObject" / "z.png"))
    assert obj[8, 8] == 1 and obj[28, 28] == 0
