"""Adding a folder of images as a job (header-only sizes, batches, cancel) and the image-list summaries."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.events import Notice, Progress
from engine.jobs import Cancelled, CancelToken, Collector
from engine.project.scan import add_folder_job, find_images, image_summaries, image_summary, object_count
from engine.project.shapes import Annotation, Box
from engine.project.store import Store, StoreError


def _folder(root: Path) -> Path:
    """root/imgs: 5 PNGs (two in a subfolder), an EXIF-rotated JPEG, a corrupt PNG, junk to ignore."""
    d = root / "imgs"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"a{i}.png"), np.full((10 + i, 20, 3), 40 * i, np.uint8))
    for i in range(2):
        cv2.imwrite(str(d / "sub" / f"b{i}.PNG"), np.zeros((8, 9), np.uint8))
    cv2.imwrite(str(d / ".hidden" / "h.png"), np.zeros((8, 9), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(d / "rot.jpg", exif=exif.tobytes())
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (d / "notes.txt").write_text("not an image")
    return d


def test_find_images_skips_hidden_and_non_images(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    names = [p.relative_to(d).as_posix() for p in find_images(d)]
    assert names == ["a0.png", "a1.png", "a2.png", "broken.png", "rot.jpg", "sub/b0.PNG", "sub/b1.PNG"]
    assert len(find_images(d, recursive=False)) == 5


def test_add_folder_adds_readable_images_with_oriented_header_sizes(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    Store.create(proj).close()
    d = _folder(proj)
    sink = Collector()
    res = add_folder_job({"project": str(proj), "folder": str(d), "batch": 2}, sink, CancelToken())
    assert (res["added"], res["skipped"], res["unreadable"]) == (6, 0, 1)
    with Store(proj) as s:
        rows = {r.path: r for r in s.images()}
        assert set(rows) == {"imgs/a0.png", "imgs/a1.png", "imgs/a2.png", "imgs/rot.jpg", "imgs/sub/b0.PNG",
                             "imgs/sub/b1.PNG"}
        assert (rows["imgs/a2.png"].width, rows["imgs/a2.png"].height) == (20, 12)
        assert (rows["imgs/rot.jpg"].width, rows["imgs/rot.jpg"].height) == (30, 50)  # EXIF 6: portrait
        assert {r.split for r in rows.values()} == {"train"}
        assert sorted(res["image_ids"]) == sorted(r.id for r in rows.values())
    notices = sink.of(Notice)
    assert len(notices) == 1 and "broken.png" in notices[0].message and notices[0].level == "warning"
    progress = sink.of(Progress)
    assert progress[-1].done == progress[-1].total == 7
    again = add_folder_job({"project": str(proj), "folder": str(d)}, Collector(), CancelToken())
    assert (again["added"], again["skipped"]) == (0, 6)


def test_folder_outside_the_project_is_stored_relative_and_resolves(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    Store.create(proj).close()
    d = _folder(tmp_path / "elsewhere")
    add_folder_job({"project": str(proj), "folder": str(d), "split": "unassigned"}, Collector(), CancelToken())
    with Store(proj) as s:
        recs = s.images()
        assert recs and all(r.path.startswith("../elsewhere/imgs/") and r.split == "unassigned" for r in recs)
        assert all(s.image_path(r).exists() for r in recs)


@pytest.mark.parametrize(("batch", "kept"), [(1, 1), (2, 0)])
def test_cancel_keeps_whole_batches_only(tmp_path: Path, batch: int, kept: int) -> None:
    proj = tmp_path / "proj"
    Store.create(proj).close()
    d = _folder(proj)
    token = CancelToken()

    def sink(event: object) -> None:
        if isinstance(event, Progress) and event.done >= 1:
            token.cancel()

    with pytest.raises(Cancelled):
        add_folder_job({"project": str(proj), "folder": str(d), "batch": batch}, sink, token)
    with Store(proj) as s:
        assert len(s.images()) == kept


def test_bad_config_is_refused_before_writing(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    Store.create(proj).close()
    with pytest.raises(StoreError, match="split"):
        add_folder_job({"project": str(proj), "folder": str(tmp_path), "split": "nope"}, Collector(), CancelToken())
    with pytest.raises(FileNotFoundError, match="missing"):
        add_folder_job({"project": str(proj), "folder": str(tmp_path / "missing")}, Collector(), CancelToken())


def test_image_summaries_count_objects_categories_and_tags(demo_copy: Path) -> None:
    with Store(demo_copy) as s:
        summ = image_summaries(s)
        recs = s.images()
        assert summ.ids.tolist() == [r.id for r in recs]
        assert summ.paths == [r.path for r in recs]
        for i, r in enumerate(recs):
            anns = s.annotations(r.id)
            assert summ.objects[i] == object_count(anns) == len({a.group_id for a in anns})
            assert (summ.widths[i], summ.heights[i]) == (r.width, r.height)
            assert image_summary(s, r.id) == (object_count(anns), {a.category_id for a in anns}, s.image_tags(r.id))
        assert (summ.objects == 0).sum() == 4  # the demo's unlabeled images
        for c in s.categories():
            want = sorted({a.image_id for a in s.annotations() if a.category_id == c.id})
            assert summ.categories[c.id].tolist() == want
        tags = s.all_image_tags()
        for t in s.tags():
            assert summ.tags[t.id].tolist() == sorted(i for i, ts in tags.items() if t.id in ts)
        # ungrouped annotations count one each
        img = recs[-1].id
        cat = s.categories()[0].id
        s.add_annotations([Annotation(img, cat, Box(np.array([1.0, 1, 5, 5]))),
                           Annotation(img, cat, Box(np.array([2.0, 2, 6, 6])))])
        before = summ.objects[-1]
        assert image_summaries(s).objects[-1] == before + 2 == image_summary(s, img)[0]
