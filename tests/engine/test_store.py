"""The project store: round trips, atomicity, migrations and concurrent readers on real SQLite."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.project.records import RunRecord
from engine.project.schema import SCHEMA_VERSION, migrate, version_of
from engine.project.shapes import Annotation, Box, Mask, Polygon, instances
from engine.project.store import DB_NAME, Store, StoreError


def _store(tmp_path: Path) -> tuple[Store, int, int]:
    s = Store.create(tmp_path / "p")
    image = s.add_image("images/a.png", 64, 48, "abc", "train")
    cat = s.add_category("cat").id
    return s, image, cat


def test_round_trip_every_kind(tmp_path: Path) -> None:
    s, image, cat = _store(tmp_path)
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 5:30] = 1
    m[30, 40] = 1
    anns = [
        Annotation(image, cat, Box(np.array([30.5, 2.25, 10.0, 40.0])), "manual", None, None, {"difficult": True}),
        Annotation(image, cat, Polygon(np.array([[1.5, 2.5], [20, 3], [11, 17.75]])), "import:x.json", 0.5, 7),
        Annotation(image, cat, Mask.from_array(m), "model:3", 0.9, 7),
    ]
    ids = s.add_annotations(anns)
    s.close()
    s = Store(tmp_path / "p")
    got = s.annotations(image)
    assert [a.id for a in got] == ids
    assert got[0].kind == "box" and got[0].geometry.xyxy.tolist() == [10.0, 2.25, 30.5, 40.0]
    assert got[0].attributes == {"difficult": True}
    np.testing.assert_array_equal(got[1].geometry.points, anns[1].geometry.points)
    assert (got[1].provenance, got[1].score, got[1].group_id) == ("import:x.json", 0.5, 7)
    np.testing.assert_array_equal(got[2].geometry.to_array(), m)
    assert got[2].bbox().tolist() == [5.0, 10.0, 41.0, 31.0]
    boxes, cats = s.boxes(image)
    assert boxes.shape == (3, 4) and cats.tolist() == [cat] * 3
    objs = instances(got, 48, 64, with_masks=True)
    assert len(objs) == 2  # box alone + (polygon, mask) grouped
    assert objs[1].mask is not None and objs[1].mask.sum() > m.sum()


def test_category_ids_are_stable_and_merge_moves_annotations(tmp_path: Path) -> None:
    s, image, cat = _store(tmp_path)
    dog = s.add_category("dog").id
    s.add_annotation(Annotation(image, dog, Box(np.array([0, 0, 5, 5]))))
    deleted = s.delete_category(dog)
    assert len(deleted) == 1
    bird = s.add_category("bird").id
    assert bird > dog  # AUTOINCREMENT: a deleted id is never reused
    s.add_annotation(Annotation(image, bird, Box(np.array([0, 0, 5, 5]))))
    s.merge_categories(bird, cat)
    assert [c.name for c in s.categories()] == ["cat"]
    assert {a.category_id for a in s.annotations(image)} == {cat}
    with pytest.raises(StoreError, match="already exists"):
        s.add_category("cat")


def _digest(path: Path) -> str:
    con = sqlite3.connect(path)
    rows = "\n".join(map(str, con.iterdump()))
    con.close()
    return hashlib.sha1(rows.encode()).hexdigest()


def test_failed_transaction_leaves_database_unchanged(tmp_path: Path) -> None:
    s, image, cat = _store(tmp_path)
    s.add_annotation(Annotation(image, cat, Box(np.array([1, 1, 4, 4]))))
    before = _digest(tmp_path / "p" / DB_NAME)
    with pytest.raises(RuntimeError, match="boom"), s.transaction():
        s.add_annotation(Annotation(image, cat, Box(np.array([2, 2, 5, 5]))))
        s.add_category("half-written")
        raise RuntimeError("boom")
    # a database-level failure (foreign key to a missing image) is a StoreError, also rolled back
    with pytest.raises(StoreError):
        s.add_annotations([Annotation(image, cat, Box(np.array([0, 0, 1, 1]))),
                           Annotation(999, cat, Box(np.array([0, 0, 1, 1])))])
    assert _digest(tmp_path / "p" / DB_NAME) == before
    assert len(s.annotations(image)) == 1


def test_migration_from_v1_keeps_data(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    con = sqlite3.connect(root / DB_NAME, isolation_level=None)
    assert migrate(con, target=1) == 1
    con.execute("INSERT INTO images(path, width, height, hash, split, added_at) VALUES ('a.png', 8, 8, '', 'val', 0)")
    con.execute("INSERT INTO categories(name, color) VALUES ('old', '#ff0000')")
    con.execute("INSERT INTO annotations(image_id, category_id, kind, geometry, x1, y1, x2, y2, created_at, updated_at)"
                " VALUES (1, 1, 'box', '[1, 2, 3, 4]', 1, 2, 3, 4, 0, 0)")
    con.close()
    with Store(root) as s:
        assert version_of(s.conn) == SCHEMA_VERSION
        (ann,) = s.annotations(1)
        assert ann.geometry.xyxy.tolist() == [1, 2, 3, 4] and ann.group_id is None and ann.attributes == {}
        run = s.create_run("r", "faster_rcnn", {"epochs": 1})  # table added by the migration
        assert s.run(run).config == {"epochs": 1}


def test_run_records_are_typed_and_looked_up_by_id(tmp_path: Path) -> None:
    s, _, _ = _store(tmp_path)
    first = s.create_run("a", "faster_rcnn", {"epochs": 1})
    second = s.create_run("b", "yolo_v1", {"epochs": 2})
    s.update_run(second, status="finished", checkpoint="runs/2/best.pt", summary={"step": 3})
    runs = s.runs()
    assert [r.id for r in runs] == [first, second] and all(isinstance(r, RunRecord) for r in runs)
    got = s.run(second)
    assert got == runs[1] and got.model == "yolo_v1" and got.config == {"epochs": 2}
    assert got.status == "finished" and got.checkpoint == "runs/2/best.pt" and got.summary == {"step": 3}
    with pytest.raises(StoreError, match=f"no run with id {second + 1}"):
        s.run(second + 1)
    assert s.run_checkpoint(second) == s.root / "runs/2/best.pt"  # relative paths are the project's
    with pytest.raises(StoreError, match=f"run {first} has no checkpoint yet"):
        s.run_checkpoint(first)
    s.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.create(tmp_path / "p").close()
    con = sqlite3.connect(tmp_path / "p" / DB_NAME, isolation_level=None)
    con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    con.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store(tmp_path / "p")


def test_reader_thread_sees_committed_rows_while_writer_writes(tmp_path: Path) -> None:
    s, image, cat = _store(tmp_path)
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            with Store(tmp_path / "p") as r:
                while not done.is_set():
                    seen.append(len(r.annotations(image)))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(200):
        s.add_annotation(Annotation(image, cat, Box(np.array([i, 0, i + 1, 1]))))
    done.set()
    t.join(10)
    assert not errors
    assert seen and seen == sorted(seen) and seen[-1] <= 200  # monotone: never a half-written state
    assert len(s.annotations(image)) == 200


def test_bad_geometry_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        Box(np.array([0, 0, np.nan, 1]))
    with pytest.raises(ValueError, match="at least 3"):
        Polygon(np.array([[0, 0], [1, 1]]))


def test_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no AnchorLab project"):
        Store(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(tmp_path)
