"""Mask PNGs: semantic class maps + colour map, instance maps, class-map import."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.data.demo import generate_demo
from engine.project.formats.common import ImportOptions
from engine.project.formats.masks import export_masks, import_class_maps, voc_palette
from engine.project.shapes import instances
from engine.project.store import Store


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("masks")
    generate_demo(base / "demo", images=10, unlabeled=1, seed=8)
    with Store(base / "demo") as s:
        rep = export_masks(s, base / "out")
        assert rep.ok and rep.images == 11
    return base / "demo", base / "out"


def test_class_and_instance_maps_match_the_objects(exported: tuple[Path, Path]) -> None:
    demo, out = exported
    assert (out / "labels.txt").read_text().split() == ["_background_", "circle", "square", "triangle"]
    pal = voc_palette()
    assert (out / "colormap.txt").read_text().splitlines()[1] == f"1 circle {pal[1][0]} {pal[1][1]} {pal[1][2]}"
    with Store(demo) as s:
        index = {c.id: i + 1 for i, c in enumerate(s.categories())}
        for rec in s.images():
            stem = Path(rec.path).stem
            cls_png = Image.open(out / "SegmentationClass" / f"{stem}.png")
            assert cls_png.mode == "P"
            cls = np.asarray(cls_png)
            ins = cv2.imread(str(out / "SegmentationObject" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert ins.dtype == np.uint16 and cls.shape == ins.shape == (rec.height, rec.width)
            objs = instances(s.annotations(rec.id), rec.height, rec.width, with_masks=True)
            assert int(ins.max()) == len(objs)
            for k, ob in enumerate(objs, 1):  # demo masks do not overlap: every map is exact
                np.testing.assert_array_equal(ins == k, ob.mask.astype(bool))
                assert np.all(cls[ob.mask.astype(bool)] == index[ob.category_id])
            assert np.all((cls == 0) == (ins == 0))


def test_import_class_maps_gives_one_mask_per_class(exported: tuple[Path, Path], tmp_path: Path) -> None:
    demo, out = exported
    with Store.create(tmp_path / "p") as dst, Store(demo) as src:
        rep = import_class_maps(dst, out)
        assert rep.ok and rep.images == 11, rep.summary()
        assert [c.name for c in dst.categories()] == ["circle", "square", "triangle"]
        names_src = {c.id: c.name for c in src.categories()}
        names_dst = {c.id: c.name for c in dst.categories()}
        for rec in src.images():
            want: dict[str, np.ndarray] = {}
            for ob in instances(src.annotations(rec.id), rec.height, rec.width, with_masks=True):
                name = names_src[ob.category_id]
                want[name] = want.get(name, np.zeros((rec.height, rec.width), bool)) | ob.mask.astype(bool)
            got_rec = next(r for r in dst.images() if Path(r.path).name == Path(rec.path).name)
            got = {names_dst[a.category_id]: a.geometry.to_array().astype(bool) for a in dst.annotations(got_rec.id)}
            assert set(got) == set(want)
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])


def test_bad_class_maps_are_reported(tmp_path: Path) -> None:
    ds = tmp_path / "maps"
    (ds / "SegmentationClass").mkdir(parents=True)
    (ds / "images").mkdir()
    (ds / "labels.txt").write_text("_background_\nsky\n")
    for name, (w, h) in {"ok": (8, 6), "badidx": (8, 6), "small": (8, 6)}.items():
        Image.new("RGB", (w, h)).save(ds / "images" / f"{name}.jpg")
    ok = np.zeros((6, 8), np.uint8)
    ok[1:3, 2:5] = 1
    Image.fromarray(ok).save(ds / "SegmentationClass" / "ok.png")
    bad = ok * 7
    Image.fromarray(bad).save(ds / "SegmentationClass" / "badidx.png")
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(ds / "SegmentationClass" / "small.png")
    Image.fromarray(ok).save(ds / "SegmentationClass" / "noimage.png")
    with Store.create(tmp_path / "p") as s:
        rep = import_class_maps(s, ds, ImportOptions(split="val"))
        errors = {Path(f).name: why for f, why in rep.errors}
        assert set(errors) == {"badidx.png", "small.png", "noimage.png"}
        assert "unknown class index 7" in errors["badidx.png"]
        assert "size mismatch" in errors["small.png"]
        assert "image not found" in errors["noimage.png"]
        assert rep.imported == [str(ds / "SegmentationClass" / "ok.png")]
        assert len(s.images()) == 1 and s.images()[0].split == "val"
        (ann,) = s.annotations()
        np.testing.assert_array_equal(ann.geometry.to_array(), ok)
