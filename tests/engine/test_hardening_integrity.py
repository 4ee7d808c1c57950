"""Issue 20, data integrity: concurrent imports (two real processes), matching images added without a
hash, and ``--replace`` keeping in-app corrections. Every case runs through the CLI a user types."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.jobs import CancelToken
from engine.project.scan import add_folder_job
from engine.project.shapes import Box
from engine.project.store import DB_NAME, Store

PEERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "peers"
ANCHORLAB = Path(sys.executable).parent / "anchorlab"


def dump(project: Path) -> list[str]:
    """Every row of the project database, as SQL text (compare before/after)."""
    con = sqlite3.connect(project / DB_NAME)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def counts(project: Path) -> dict[str, int]:
    con = sqlite3.connect(project / DB_NAME)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("images", "annotations", "imports", "categories")}
    finally:
        con.close()


def _labelme(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (40, 30), (10 * i, 20, 30)).save(folder / f"im{i}.png")
        doc = {"version": "5.7.0", "flags": {}, "imagePath": f"im{i}.png", "imageData": None, "imageHeight": 30,
               "imageWidth": 40, "shapes": [{"label": "car", "points": [[1, 2], [10, 12]], "shape_type": "rectangle"},
                                           {"label": "dog", "points": [[5, 5], [20, 25]], "shape_type": "rectangle"}]}
        (folder / f"im{i}.json").write_text(json.dumps(doc))
    return folder


def _source() -> Path:
    real = PEERS / "labelme" / "bbox_detection" / "data_annotated"
    return real if real.is_dir() else Path()


def test_two_processes_importing_the_same_folder_at_once_do_not_duplicate(tmp_path: Path) -> None:
    src = _source()
    if not src.is_dir():
        src = _labelme(tmp_path / "gen")
    ds = tmp_path / "ds"
    shutil.copytree(src, ds)  # a writable copy: the importer only reads it
    ref, project = tmp_path / "ref", tmp_path / "p"
    assert main(["new", str(ref)]) == 0 and main(["new", str(project)]) == 0
    assert main(["import", "--format", "labelme", str(ds), "--project", str(ref)]) == 0
    expected = counts(ref)
    assert expected["annotations"] > 0
    cmd = [str(ANCHORLAB), "import", "--format", "labelme", str(ds), "--project", str(project)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert counts(project)["images"] == expected["images"]
    assert counts(project)["annotations"] == expected["annotations"]
    assert counts(project)["imports"] == expected["imports"]
    with Store(project) as s:
        paths = [r.path for r in s.images()]
        assert len(paths) == len(set(paths)) and not any("_1." in p for p in paths)
    copied = sorted(p.name for p in (project / "images").rglob("*") if p.is_file())
    assert len(copied) == expected["images"]  # no stray second copies either


def test_two_processes_adding_the_same_folder_do_not_fail_or_duplicate(tmp_path: Path) -> None:
    ds = _labelme(tmp_path / "ds", n=4)
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    code = ("import sys; from engine.project.scan import add_folder_job; from engine.jobs import CancelToken; "
            "r = add_folder_job({'project': sys.argv[1], 'folder': sys.argv[2], 'batch': 1}, lambda e: None, "
            "CancelToken()); print(r['added'], r['skipped'])")
    cmd = [sys.executable, "-c", code, str(project), str(ds)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2]) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    added = [int(o[0].split()[0]) for o in outs]
    assert sum(added) == 4 and counts(project)["images"] == 4


def _coco(folder: Path, names: list[str]) -> Path:
    doc = {"images": [{"id": i + 1, "file_name": n, "width": 40, "height": 30} for i, n in enumerate(names)],
           "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 2, 8, 9], "iscrowd": 0}
                           for i in range(len(names))],
           "categories": [{"id": 1, "name": "car"}]}
    f = folder / "coco.json"
    f.write_text(json.dumps(doc))
    return f


def test_images_added_without_a_hash_are_matched_by_path_then_by_content(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"  # outside the project, as "Add images from folder" allows
    data.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 30), (60 * i, 1, 2)).save(data / f"a{i}.png")
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    res = add_folder_job({"project": str(project), "folder": str(data)}, lambda e: None, CancelToken())
    assert res["added"] == 2 and res["report"].added == 2  # typed report rides along
    with Store(project) as s:
        before = {r.path: r.id for r in s.images()}
        assert all(r.hash == "" for r in s.images())  # no hash by default
    # 1. the same files: matched by their project-relative path
    assert main(["import", "--format", "coco", str(_coco(data, ["a0.png", "a1.png"])), "--project", str(project)]) == 0
    with Store(project) as s:
        assert {r.path: r.id for r in s.images()} == before  # no second row, no copy
        assert sorted(a.image_id for a in s.annotations()) == sorted(before.values())
        assert all(r.hash for r in s.images())  # the hash is filled in on the way
    assert not (project / "images").exists()
    # 2. a copy of the same bytes elsewhere: matched by content (hashed lazily)
    project2 = tmp_path / "p2"
    assert main(["new", str(project2)]) == 0
    add_folder_job({"project": str(project2), "folder": str(data)}, lambda e: None, CancelToken())
    other = tmp_path / "other"
    shutil.copytree(data, other)
    assert main(["import", "--format", "coco", str(_coco(other, ["a0.png", "a1.png"])), "--project",
                 str(project2)]) == 0
    with Store(project2) as s:
        assert len(s.images()) == 2 and len(s.annotations()) == 2
        assert {a.image_id for a in s.annotations()} == {r.id for r in s.images()}
    capsys.readouterr()


def test_replace_keeps_annotations_corrected_in_the_app(tmp_path: Path, capsys) -> None:
    ds = _labelme(tmp_path / "ds", n=2)
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    assert main(["import", "--format", "labelme", str(ds), "--project", str(project)]) == 0
    with Store(project) as s:
        first = s.images()[0]
        moved = s.annotations(first.id)[0]
        s.update_annotation(moved.id, geometry=Box(np.array([3.0, 4.0, 30.0, 20.0])))  # a correction in the app
        assert s.annotation(moved.id).edited_at is not None
        n_before = len(s.annotations())
    capsys.readouterr()
    assert main(["import", "--format", "labelme", str(ds), "--project", str(project), "--replace"]) == 0
    out = capsys.readouterr().out
    assert "1 edited annotation(s) kept" in out and "corrected in the app" in out
    with Store(project) as s:
        kept = s.annotation(moved.id)
        assert kept.geometry.xyxy.tolist() == [3.0, 4.0, 30.0, 20.0]
        assert len(s.annotations()) == n_before  # no duplicates of the corrected image's shapes
        assert len(s.annotations(first.id)) == 2


def test_migration_adds_the_edited_marker_to_an_old_project(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as s:
        image = s.add_image("a.png", 10, 10)
        cat = s.add_category("x")
    con = sqlite3.connect(tmp_path / "p" / DB_NAME, isolation_level=None)
    con.execute("DROP INDEX images_hash")
    con.execute("DROP INDEX imports_source")
    con.execute("ALTER TABLE annotations DROP COLUMN edited_at")
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.execute("INSERT INTO annotations(image_id, category_id, kind, geometry, x1, y1, x2, y2, created_at, "
                f"updated_at) VALUES ({image}, {cat.id}, 'box', '[1, 2, 3, 4]', 1, 2, 3, 4, 0, 0)")
    con.close()
    with Store(tmp_path / "p") as s:
        (ann,) = s.annotations()
        assert ann.edited_at is None


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_nan_attributes_are_refused_on_import_and_by_the_store(fmt: str, tmp_path: Path, capsys) -> None:
    data = tmp_path / "d"
    data.mkdir()
    Image.new("RGB", (40, 30)).save(data / "a.png")
    if fmt == "coco":
        f = _coco(data, ["a.png"])
        f.write_text(f.read_text().replace('"iscrowd": 0', '"iscrowd": 0, "attributes": {"conf": NaN}'))
    else:
        doc = {"version": "5.7.0", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 30,
               "imageWidth": 40, "shapes": [{"label": "car", "points": [[1, 2], [10, 12]], "shape_type": "rectangle",
                                            "conf": float("nan")}]}
        (data / "a.json").write_text(json.dumps(doc))
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    before = dump(project)
    assert main(["import", "--format", fmt, str(data), "--project", str(project)]) == 1
    assert "NaN/Infinity" in capsys.readouterr().out
    assert dump(project) == before
