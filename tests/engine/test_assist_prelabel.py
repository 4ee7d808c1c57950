"""``prelabel_job`` and ``anchorlab prelabel``: labeled images are respected (or replaced when asked),
suggestions stay out of training until accepted; uncertainty ordering; the cache stays bounded."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_assist_checkpoints import deeplab_checkpoint, tagger_checkpoint, yolo_checkpoint

from engine.assist import review
from engine.assist.prelabel import PrelabelError, prelabel_job
from engine.assist.scores import detection_uncertainty, segmentation_uncertainty, tag_uncertainty
from engine.assist.suggest import Assistant
from engine.assist.uncertainty import rank_by_uncertainty, uncertainty_job
from engine.cli import main
from engine.data.dataset import snapshot_split
from engine.events import Progress
from engine.jobs import Cancelled, CancelToken, Collector, null_sink
from engine.project.store import Store


def _labels(store: Store) -> list:
    return [(a.id, a.image_id, a.provenance, a.bbox().tolist()) for a in store.annotations()]


def test_prelabel_skips_labeled_images_and_replaces_its_own_pending(demo_copy: Path, tmp_path: Path) -> None:
    ckpt = yolo_checkpoint(demo_copy, tmp_path / "y.pt")
    with Store(demo_copy) as s:
        before, unlabeled = _labels(s), {im.id for im in s.images() if not s.annotations(im.id)}
        snap = [(r.image_id, len(r.annotations)) for r in snapshot_split(s, "train")]
    cfg = {"project": str(demo_copy), "checkpoint": ckpt, "threshold": 0.0, "device": "cpu"}
    res = prelabel_job(cfg, null_sink, CancelToken())
    assert res["images"] == len(unlabeled) == 4 and res["skipped_manual"] == 40 and res["replaced"] == 0
    assert 0 < res["suggestions"] <= 5 * 4 and res["provenance"] == "model:5"
    with Store(demo_copy) as s:
        assert _labels(s) == before  # nothing written to annotations
        assert [(r.image_id, len(r.annotations)) for r in snapshot_split(s, "train")] == snap
        pending = s.suggestions()
        assert len(pending) == res["suggestions"] and {p.image_id for p in pending} <= unlabeled
        assert all(p.provenance == "model:5" and p.state == "suggested" for p in pending)
        first = pending[0]
        review.accept([first.id]).apply(s)
    again = prelabel_job(cfg, null_sink, CancelToken())  # the accepted image is labeled now
    assert again["skipped_manual"] == 41 and again["images"] == 3
    with Store(demo_copy) as s:
        rest = [x for x in s.suggestions() if x.image_id != first.image_id]
        assert len(rest) == again["suggestions"]  # earlier pending ones replaced, not added to
        on_first = [x for x in pending if x.image_id == first.image_id and x.id != first.id]
        assert [x.id for x in s.suggestions(first.image_id)] == [x.id for x in on_first]  # skipped: untouched
        assert s.suggestion(first.id).state == "accepted"  # decisions survive a re-run
        assert s.assist_stats(5)["accepted_unchanged"] == 1


def test_overwrite_manual_replaces_the_labels(demo_copy: Path, tmp_path: Path) -> None:
    ckpt = deeplab_checkpoint(demo_copy, tmp_path / "d.pt")
    with Store(demo_copy) as s:
        val = [im.id for im in s.images("val")]
        n_val = sum(len(s.annotations(i)) for i in val)
        others = [a for a in _labels(s) if a[1] not in val]
    cfg = {"project": str(demo_copy), "checkpoint": ckpt, "split": "val", "threshold": 0.5, "device": "cpu"}
    kept = prelabel_job(cfg, null_sink, CancelToken())
    assert kept == {**kept, "images": 0, "suggestions": 0, "skipped_manual": len(val)}
    res = prelabel_job({**cfg, "overwrite_manual": True}, null_sink, CancelToken())
    assert res["images"] == len(val) and res["skipped_manual"] == 0 and res["replaced"] == n_val > 0
    with Store(demo_copy) as s:
        assert all(s.annotations(i) == [] for i in val) and _labels(s) == others
        assert [x.image_id for x in s.suggestions()] == val  # one mask per class: the constant model's one
        assert all(x.kind == "mask" for x in s.suggestions())


def test_tagger_prelabel_unlabeled_and_cancel(demo_copy: Path, tmp_path: Path) -> None:
    ckpt = tagger_checkpoint(demo_copy, tmp_path / "t.pt")
    with Store(demo_copy) as s:
        untagged = [im.id for im in s.images() if not s.image_tags(im.id)]
        n_tags = len(s.tags())
    cfg = {"project": str(demo_copy), "checkpoint": ckpt, "unlabeled": True, "threshold": 0.0, "device": "cpu"}
    res = prelabel_job(cfg, null_sink, CancelToken())
    assert res["images"] == len(untagged) > 0 and res["suggestions"] == n_tags * len(untagged)
    assert res["skipped_manual"] == 0 and res["kind"] == "classification"

    cancel = CancelToken()

    def sink(event: object) -> None:
        if isinstance(event, Progress) and event.done == 1:
            cancel.cancel()

    with Store(demo_copy) as s:
        s.delete_suggestions()
    with pytest.raises(Cancelled):
        prelabel_job(cfg, sink, cancel)
    with Store(demo_copy) as s:  # cancelled while on the second image: two whole images, nothing after
        assert {x.image_id for x in s.suggestions()} == set(untagged[:2]) and len(s.suggestions()) == 2 * n_tags
    with pytest.raises(PrelabelError, match="threshold"):
        prelabel_job({**cfg, "threshold": 1.5}, null_sink, CancelToken())
    with pytest.raises(PrelabelError, match="choose one"):
        prelabel_job({**cfg, "split": "val"}, null_sink, CancelToken())


def test_uncertainty_scores() -> None:
    assert detection_uncertainty(np.array([])) == 1.0
    assert detection_uncertainty(np.array([0.2, 0.9])) == pytest.approx(0.1)
    assert segmentation_uncertainty(np.full((4, 3, 5), 0.25)) == pytest.approx(1.0)
    assert segmentation_uncertainty(np.eye(3)[:, :, None].repeat(2, 2)) == pytest.approx(0.0, abs=1e-5)
    assert tag_uncertainty(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert tag_uncertainty(np.array([0.0, 1.0])) == pytest.approx(0.0, abs=1e-5)


def test_rank_by_uncertainty_orders_the_unlabeled_images(demo_copy: Path, tmp_path: Path) -> None:
    ckpt = yolo_checkpoint(demo_copy, tmp_path / "y.pt")
    with Store(demo_copy) as s:
        unlabeled = sorted(im.id for im in s.images() if not s.annotations(im.id))
        a = Assistant(ckpt, "cpu")
        order = rank_by_uncertainty(a, s)
        assert sorted(i for i, _ in order) == unlabeled
        scores = [u for _, u in order]
        assert scores == sorted(scores, reverse=True)
        for image_id, u in order:  # 1 - the highest detection score, from the cached prediction
            assert u == pytest.approx(1 - a.cached(image_id).arrays["scores"].max(initial=0.0))
        assert a.predictions_run == 4
    job = uncertainty_job({"project": str(demo_copy), "checkpoint": ckpt, "device": "cpu"}, Collector(),
                          CancelToken())
    assert [i for i, _ in job["order"]] == [i for i, _ in order] and job["provenance"] == "model:5"


def _tiny_project(root: Path, n: int) -> None:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with Store.create(root) as s:
        s.add_category("a")
        s.add_category("b")
        rows = []
        for i in range(n):
            cv2.imwrite(str(root / "images" / f"{i:03d}.png"), rng.integers(0, 255, (24, 32, 3), np.uint8))
            rows.append((f"images/{i:03d}.png", 32, 24, "", "train"))
        s.add_images(rows)


def test_cache_stays_bounded_over_100_images(tmp_path: Path) -> None:
    _tiny_project(tmp_path / "p", 100)
    a = Assistant(yolo_checkpoint(tmp_path / "p", tmp_path / "y.pt"), "cpu", cache_size=8)
    with Store(tmp_path / "p") as s:
        ids = [im.id for im in s.images()]
        for k, image_id in enumerate(ids):
            a.suggest(s, image_id, 0.0)  # cached by the previous prefetch from the second image on
            a.prefetch(s, ids[k + 1:k + 3])  # the next two, as the GUI does
            assert len(a) == min(len(ids[:k + 3]), 8)
        assert a.predictions_run == 100 and a.cached_ids()[-1] == ids[-1]
        assert a.prefetch(s, ids[-3:]) == 0 and a.cached_suggestions(ids[-1], 0.0) is not None
        assert a.cached_suggestions(ids[0], 0.0) is None  # evicted long ago, and not recomputed by reading
        one = a.cache_bytes // len(a)
        small = Assistant(a.checkpoint, "cpu", cache_size=50, max_cache_bytes=3 * one)
        for image_id in ids[:10]:
            small.suggest(s, image_id, 0.0)
        assert len(small) <= 3
    a.unload()
    assert len(a) == 0 and a.cache_bytes == 0 and not a.loaded


def test_cli_prelabel_prints_one_json_line(demo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = yolo_checkpoint(demo_copy, tmp_path / "y.pt")
    p = str(demo_copy)
    rc = main(["prelabel", "--project", p, "--checkpoint", ckpt, "--unlabeled", "--threshold", "0", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    (line,) = cap.out.strip().splitlines()
    res = json.loads(line)
    assert list(res) == ["images", "suggestions", "skipped_manual"] and res["images"] == 4
    assert res["skipped_manual"] == 0 and res["suggestions"] > 0 and "%" in cap.err
    rc = main(["prelabel", "--project", p, "--checkpoint", ckpt, "--split", "val", "--device", "cpu"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["skipped_manual"] > 0

    rc = main(["rank", "--project", p, "--checkpoint", ckpt, "--limit", "2", "--device", "cpu"])
    ranked = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(ranked["order"]) == 2 and ranked["images"] == 4
    rc = main(["suggestions", "--project", p])
    stats = json.loads(capsys.readouterr().out)["runs"]["model:5"]
    assert rc == 0 and stats == {"accepted_unchanged": 0, "edited": 0, "rejected": 0, "pending": res["suggestions"]}

    with pytest.raises(SystemExit) as exc:  # a bad flag value: a usage error
        main(["prelabel", "--project", p, "--checkpoint", ckpt, "--threshold", "2"])
    assert exc.value.code == 2 and "threshold" in capsys.readouterr().err
    rc = main(["prelabel", "--project", p, "--checkpoint", ckpt, "--split", "nope", "--device", "cpu"])
    err = capsys.readouterr()
    assert rc == 1 and err.out == "" and err.err.strip().splitlines()[-1].startswith("error: split 'nope'")
    rc = main(["prelabel", "--project", p, "--checkpoint", str(tmp_path / "none.pt")])
    err = capsys.readouterr()
    assert rc == 1 and len(err.err.strip().splitlines()) == 1 and "none.pt" in err.err


def test_a_trained_faster_rcnn_run_prelabels_with_its_run_id(demo_copy: Path) -> None:
    from engine.config import TrainConfig
    from engine.train.job import train_job

    cfg = TrainConfig(project=str(demo_copy), model="faster_rcnn", backbone="tiny", epochs=1, max_steps=2,
                      max_images=4, batch_size=2, min_size=96, max_size=128, val_split="", device="cpu")
    run = train_job(cfg.to_dict(), null_sink, CancelToken())
    res = prelabel_job({"project": str(demo_copy), "checkpoint": run["last_checkpoint"], "unlabeled": True,
                        "threshold": 0.0, "device": "cpu"}, null_sink, CancelToken())
    assert res["provenance"] == f"model:{run['run_id']}" and res["images"] == 4 and res["kind"] == "detection"
    with Store(demo_copy) as s:
        pending = s.suggestions()
        assert len(pending) == res["suggestions"] and all(x.provenance == res["provenance"] for x in pending)
        review.accept(x.id for x in pending).apply(s)
        assert s.assist_stats(run["run_id"]) == {"accepted_unchanged": len(pending), "edited": 0, "rejected": 0,
                                                 "pending": 0}
