"""Suggestions in the store: invisible to training, exports and counts until accepted; accept / reject /
edit / reopen (undo) and the per-run counts; the v3 -> v4 migration keeps every annotation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.assist import review
from engine.cli import main
from engine.data.dataset import snapshot_split
from engine.jobs import CancelToken, null_sink
from engine.project.formats.jobs import export_job
from engine.project.schema import SCHEMA_VERSION, migrate, version_of
from engine.project.shapes import Box, Mask
from engine.project.store import DB_NAME, Store, StoreError, Suggestion


def _view(store: Store, split: str = "train") -> tuple:
    """Everything training, counts and the canvas read."""
    snap = [(r.image_id, [(a.id, a.kind, a.bbox().tolist()) for a in r.annotations], r.tags)
            for r in snapshot_split(store, split)]
    usage = {c.id: store.category_usage(c.id) for c in store.categories()}
    return snap, store.annotation_counts(), usage, store.all_image_tags(), len(store.annotations())


def _some(store: Store, image_id: int, prov: str = "model:5") -> list[Suggestion]:
    rec, (cat, other) = store.image(image_id), store.categories()[:2]
    mask = np.zeros((rec.height, rec.width), np.uint8)
    mask[4:20, 6:30] = 1
    free_tag = store.add_tag("suggested-tag").id  # on no image yet
    return [Suggestion(image_id, prov, 0.9, Box(np.array([1.0, 2.0, 30.0, 40.0])), cat.id),
            Suggestion(image_id, prov, 0.4, Mask.from_array(mask), other.id),
            Suggestion(image_id, prov, 0.7, tag_id=free_tag)]


def _coco_count(project: Path, out: Path, **extra: object) -> int:
    export_job({"format": "coco", "out": str(out), "project": str(project), "split": "train", **extra},
               null_sink, CancelToken())
    return len(json.loads((out / "annotations" / "instances_train.json").read_text())["annotations"])


def test_suggestions_are_invisible_until_accepted(demo_copy: Path, tmp_path: Path) -> None:
    with Store(demo_copy) as s:
        image = s.images("train")[0].id
        before = _view(s)
        ids = s.add_suggestions(image, _some(s, image))
        assert [x.kind for x in s.suggestions(image)] == ["box", "mask", "tag"]
        assert s.pending_suggestion_counts() == {image: 3}
        assert _view(s) == before  # training snapshot, counts, usage, tags, annotations: unchanged
    n_coco = _coco_count(demo_copy, tmp_path / "plain")
    assert _coco_count(demo_copy, tmp_path / "with", include_suggested=True) == n_coco + 2
    with Store(demo_copy) as s:
        s.accept_suggestions(ids[:1])
        (ann,) = [a for a in s.annotations(image) if a.provenance == "model:5"]
        assert ann.score == pytest.approx(0.9) and ann.geometry.xyxy.tolist() == [1, 2, 30, 40]
        snap = {r.image_id: r for r in snapshot_split(s, "train")}
        assert ann.id in {a.id for a in snap[image].annotations}
        assert s.suggestion(ids[0]).annotation_id == ann.id and s.pending_suggestion_counts() == {image: 2}
    assert _coco_count(demo_copy, tmp_path / "after") == n_coco + 1


def test_accept_reject_edit_and_undo(demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        a, b = (im.id for im in s.images("train")[:2])
        box, mask, tag = s.add_suggestions(a, _some(s, a))
        box2, mask2, _ = s.add_suggestions(b, _some(s, b))
        other = s.add_suggestions(b, _some(s, b, "model:6"))
        n_ann = len(s.annotations())

        op = review.accept([box, tag])
        ann_id, none = op.apply(s)
        assert none is None and s.suggestion(tag).state == "accepted"
        assert s.suggestion(tag).tag_id in s.image_tags(a)
        op.revert(s)  # undo: annotation gone, tag off, both pending again
        assert len(s.annotations()) == n_ann and s.suggestion(tag).tag_id not in s.image_tags(a)
        assert {x.id for x in s.suggestions(a)} == {box, mask, tag}
        assert op.apply(s)[0] == ann_id  # redo keeps the annotation id

        moved = Box(np.array([3.0, 4.0, 33.0, 44.0]))
        edit = review.edit_then_accept(box2, moved, s.categories()[2].id)
        (edited_id,) = edit.apply(s)
        got = s.annotation(edited_id)
        assert got.geometry.xyxy.tolist() == [3, 4, 33, 44] and got.category_id == s.categories()[2].id
        assert s.suggestion(box2).geometry.xyxy.tolist() == [1, 2, 30, 40]  # the proposal is kept as it was
        rej = review.reject([mask, mask2])
        rej.apply(s)
        assert s.suggestions(a) == [] and len(s.suggestions(a, state="rejected")) == 1
        with pytest.raises(StoreError, match="already rejected"):
            s.accept_suggestions([mask])
        assert s.assist_stats(5) == {"accepted_unchanged": 2, "edited": 1, "rejected": 2, "pending": 1}
        s.update_annotation(ann_id, geometry=Box(np.array([0.0, 0.0, 5.0, 5.0])))  # corrected after accepting
        assert s.assist_stats("model:5") == {"accepted_unchanged": 1, "edited": 2, "rejected": 2, "pending": 1}
        assert s.assist_stats(6)["pending"] == 3 and s.assist_runs() == ["model:5", "model:6"]
        rej.revert(s)
        assert s.assist_stats(5)["pending"] == 3 and s.assist_stats(5)["rejected"] == 0

        above = review.accept_above(s, b, 0.5, "model:6")
        assert set(above.suggestion_ids) == {other[0], other[2]}
        assert s.delete_suggestions([b], provenance="model:6") == 3 and s.suggestions(b, provenance="model:6") == []
        with pytest.raises(StoreError, match="provenance"):
            s.add_suggestions(a, [Suggestion(a, "manual", 1.0, tag_id=s.tags()[0].id)])
        with pytest.raises(StoreError, match="shape with a category or a tag"):
            s.add_suggestions(a, [Suggestion(a, "model:1", 1.0)])


def test_sync_live_suggestions_never_duplicates_or_reproposes(demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        image = s.images("train")[0].id
        live = _some(s, image)
        first = review.sync_suggestions(s, image, live, "model:5")
        assert [x.id for x in review.sync_suggestions(s, image, live, "model:5")] == [x.id for x in first]
        assert len(first) == 3
        review.reject([first[0].id]).apply(s)
        again = review.sync_suggestions(s, image, live, "model:5")
        assert [x.id for x in again] == [x.id for x in first[1:]]  # the rejected one is not proposed again


def test_categories_deleted_or_merged_take_their_suggestions(demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        image = s.images("train")[0].id
        box, mask, _ = s.add_suggestions(image, _some(s, image))
        cat, other = s.categories()[:2]
        s.merge_categories(cat.id, other.id)
        assert s.suggestion(box).category_id == other.id
        s.delete_category(other.id)
        assert [x.kind for x in s.suggestions(image)] == ["tag"]


V3_TABLES = ("images", "categories", "annotations", "tags", "image_tags", "runs", "metrics", "imports")


def _as_v3(project: Path, out: Path) -> None:
    """Write ``out``: the project's rows in a database built by migrations v1..v3 only, exactly the schema
    an AnchorLab before suggestions created (every v3 column copied; later columns do not exist there)."""
    conn = sqlite3.connect(out, isolation_level=None)
    migrate(conn, 3)
    conn.execute("ATTACH DATABASE ? AS cur", (str(project / DB_NAME),))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO meta SELECT * FROM cur.meta WHERE key != 'schema_version'")
    for table in V3_TABLES:
        cols = ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))
        conn.execute(f"INSERT INTO main.{table}({cols}) SELECT {cols} FROM cur.{table}")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE cur")
    assert version_of(conn) == 3 and "suggestions" not in {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()


def _all(s: Store) -> list[tuple]:
    return [(a.id, a.image_id, a.category_id, a.kind, a.geometry.to_json(), a.provenance, a.score, a.group_id,
             a.attributes, a.created_at, a.updated_at, a.edited_at) for a in s.annotations()]


def test_a_v3_project_opens_migrates_and_keeps_every_annotation(demo_copy: Path, tmp_path: Path) -> None:
    with Store(demo_copy) as s:
        s.update_annotation(s.annotations()[0].id, attributes={"note": "kept"})
        before, tags, images = _all(s), s.all_image_tags(), s.images()
    _as_v3(demo_copy, tmp_path / "v3.sqlite")
    for side in ("-wal", "-shm"):
        (demo_copy / (DB_NAME + side)).unlink(missing_ok=True)
    (tmp_path / "v3.sqlite").replace(demo_copy / DB_NAME)
    with Store(demo_copy) as s:
        assert version_of(s.conn) == SCHEMA_VERSION >= 4
        assert _all(s) == before and len(before) > 0 and s.all_image_tags() == tags and s.images() == images
        image = images[0].id
        ids = s.add_suggestions(image, _some(s, image))
        s.accept_suggestions(ids[:1])
        assert len(s.annotations()) == len(before) + 1 and len(s.suggestions(image)) == 2


def test_export_cli_include_suggested(demo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with Store(demo_copy) as s:
        image = s.images("val")[0]
        s.add_suggestions(image.id, _some(s, image.id))
        tag = {t.id: t.name for t in s.tags()}[s.suggestions(image.id)[2].tag_id]
    for flag, name in (([], "plain"), (["--include-suggested"], "with")):
        rc = main(["export", "--format", "labelme", "--out", str(tmp_path / name), "--project", str(demo_copy),
                   "--split", "val", *flag])
        assert rc == 0, capsys.readouterr().err
    stem = Path(image.path).stem
    plain = json.loads((tmp_path / "plain" / f"{stem}.json").read_text())
    withs = json.loads((tmp_path / "with" / f"{stem}.json").read_text())
    assert len(withs["shapes"]) == len(plain["shapes"]) + 2
    assert sum(withs["flags"].values()) == sum(plain["flags"].values()) + 1
    assert withs["flags"][tag] and not plain["flags"][tag]
