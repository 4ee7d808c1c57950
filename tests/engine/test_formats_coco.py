"""COCO instances JSON: round trip, pycocotools/COCOeval, multi-polygon objects, RLE, ids."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.data.demo import generate_demo
from engine.project.formats.coco import export_coco, import_coco
from engine.project.formats.common import FormatError, ImportOptions
from engine.project.formats.compare import compare_projects
from engine.project.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco") / "demo"
    generate_demo(root, images=20, unlabeled=2, seed=3)
    return root


def _dataset(tmp_path: Path, doc: dict, sizes: dict[str, tuple[int, int]]) -> Path:
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    for name, (w, h) in sizes.items():
        Image.new("RGB", (w, h), (90, 120, 30)).save(ds / "images" / name)
    (ds / "instances_train.json").write_text(json.dumps(doc))
    return ds / "instances_train.json"


def test_round_trip_demo_is_lossless(demo: Path, tmp_path: Path) -> None:
    with Store(demo) as src:
        rep = export_coco(src, tmp_path / "out")
        assert rep.ok and rep.images == 22
        assert sorted(f for f in rep.files if f.startswith("annotations/")) == [
            f"annotations/instances_{s}.json" for s in ("test", "train", "unassigned", "val")]
        with Store.create(tmp_path / "new") as dst:
            imp = import_coco(dst, tmp_path / "out")
            assert imp.ok and imp.images == 22 and not imp.warnings, imp.summary()
            assert compare_projects(src, dst) == []
            assert [(c.id, c.name) for c in dst.categories()] == [(c.id, c.name) for c in src.categories()]
            assert len(dst.annotations()) == len(src.annotations())
            # every imported annotation names its source file
            assert {a.provenance for a in dst.annotations()} == {
                f"import:{(tmp_path / 'out' / 'annotations' / f'instances_{s}.json').resolve().as_posix()}"
                for s in ("train", "val", "test")}
            # copied into images/<source-name>/
            assert all(r.path.startswith("images/out/") for r in dst.images())


def test_export_loads_in_pycocotools_and_scores_ap_1(demo: Path, tmp_path: Path) -> None:
    with Store(demo) as src:
        export_coco(src, tmp_path / "out", split="train")
    gt_file = tmp_path / "out" / "annotations" / "instances_train.json"
    doc = json.loads(gt_file.read_text())
    ids = [a["id"] for a in doc["annotations"]]
    assert len(ids) == len(set(ids)) and min(ids) >= 1
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        for iou_type in ("bbox", "segm"):
            dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                     "segmentation": a["segmentation"], "score": 1.0} for a in doc["annotations"]]
            ev = COCOeval(gt, gt.loadRes(dets), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0), iou_type
    for a in doc["annotations"]:  # area and bbox come from the geometry
        rle = a["segmentation"]
        assert a["area"] == pytest.approx(float(mask_utils.area({**rle, "counts": rle["counts"].encode()})))
        x, y, w, h = mask_utils.toBbox({**rle, "counts": rle["counts"].encode()})
        assert a["bbox"] == pytest.approx([x, y, w, h])


def test_remap_numbers_categories_1_to_k(tmp_path: Path) -> None:
    doc = {"images": [{"id": 5, "file_name": "a.png", "width": 40, "height": 30}],
           "annotations": [{"id": 9, "image_id": 5, "category_id": 7, "bbox": [1.5, 2.25, 10, 5]},
                           {"id": 10, "image_id": 5, "category_id": 3, "bbox": [0, 0, 4, 4]}],
           "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 12, "name": "unused"}]}
    src = _dataset(tmp_path, doc, {"a.png": (40, 30)})
    with Store.create(tmp_path / "p") as s:
        assert import_coco(s, src).ok
        assert [(c.id, c.name) for c in s.categories()] == [(3, "cat"), (7, "dog"), (12, "unused")]
        export_coco(s, tmp_path / "kept")
        export_coco(s, tmp_path / "remapped", remap=True)
    kept = json.loads((tmp_path / "kept/annotations/instances_train.json").read_text())
    assert [c["id"] for c in kept["categories"]] == [3, 7, 12]
    assert sorted((a["category_id"], tuple(a["bbox"])) for a in kept["annotations"]) == [
        (3, (0, 0, 4, 4)), (7, (1.5, 2.25, 10, 5))]
    remapped = json.loads((tmp_path / "remapped/annotations/instances_train.json").read_text())
    assert [(c["id"], c["name"]) for c in remapped["categories"]] == [(1, "cat"), (2, "dog"), (3, "unused")]
    assert sorted(a["category_id"] for a in remapped["annotations"]) == [1, 2]


def test_multi_polygon_instance_is_one_group_and_exports_as_one_annotation(tmp_path: Path) -> None:
    polys = [[2.5, 3, 20, 3, 20, 15.5, 2.5, 15.5], [30, 30, 45.25, 30, 38, 44]]
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.5, 3, 42.75, 41],
                            "segmentation": polys, "area": 0, "iscrowd": 0}],
           "categories": [{"id": 1, "name": "thing"}]}
    src = _dataset(tmp_path, doc, {"a.png": (64, 48)})
    with Store.create(tmp_path / "p") as s:
        assert import_coco(s, src).ok
        anns = s.annotations()
        assert sorted(a.kind for a in anns) == ["box", "polygon", "polygon"]
        assert len({a.group_id for a in anns}) == 1 and anns[0].group_id is not None
        export_coco(s, tmp_path / "out")
    out = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    (ann,) = out["annotations"]
    assert ann["segmentation"] == polys and ann["bbox"] == [2.5, 3, 42.75, 41]
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, 48, 64))
    assert ann["area"] == pytest.approx(float(mask_utils.area(rle)))


def test_uncompressed_crowd_rle_imports_as_mask(tmp_path: Path) -> None:
    m = np.zeros((20, 30), np.uint8)
    m[4:9, 6:20] = 1
    counts, prev, run = [], 0, 0
    for v in m.flatten(order="F"):  # column-major run lengths, starting with zeros
        if v != prev:
            counts.append(run)
            prev, run = v, 0
        run += 1
    counts.append(run)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "iscrowd": 1, "bbox": [6, 4, 14, 5],
                            "segmentation": {"size": [20, 30], "counts": counts}}],
           "categories": [{"id": 2, "name": "crowd"}]}
    src = _dataset(tmp_path, doc, {"a.png": (30, 20)})
    with Store.create(tmp_path / "p") as s:
        assert import_coco(s, src).ok
        mask = next(a for a in s.annotations() if a.kind == "mask")
        assert mask.attributes == {"iscrowd": 1}
        np.testing.assert_array_equal(mask.geometry.to_array(), m)
        export_coco(s, tmp_path / "out")
    (ann,) = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())["annotations"]
    assert ann["iscrowd"] == 1 and ann["area"] == 70
    np.testing.assert_array_equal(mask_utils.decode({**ann["segmentation"],
                                                     "counts": ann["segmentation"]["counts"].encode()}), m)


def test_split_from_file_name_and_override(tmp_path: Path) -> None:
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}], "annotations": [],
           "categories": []}
    src = _dataset(tmp_path, doc, {"a.png": (8, 8)})
    val = src.with_name("instances_val2017.json")
    src.rename(val)
    with Store.create(tmp_path / "p") as s:
        assert import_coco(s, val).ok
        assert [r.split for r in s.images()] == ["val"]
    with Store.create(tmp_path / "q") as s:
        assert import_coco(s, val, ImportOptions(split="test")).ok
        assert [r.split for r in s.images()] == ["test"]


def test_export_refuses_non_empty_folder(demo: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with Store(demo) as src, pytest.raises(FormatError, match="refusing to overwrite"):
        export_coco(src, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_missing_project_image_is_reported_and_the_rest_exported(demo: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(demo, tmp_path / "p")
    with Store(tmp_path / "p") as s:
        gone = s.images("train")[0]
        s.image_path(gone).unlink()
        rep = export_coco(s, tmp_path / "out", split="train")
        assert [f for f, _ in rep.errors] == [gone.path] and "image not exported" in rep.errors[0][1]
        assert rep.images == len(s.images("train")) - 1
    doc = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())
    assert gone.id not in {im["id"] for im in doc["images"]}
    assert gone.id not in {a["image_id"] for a in doc["annotations"]}
