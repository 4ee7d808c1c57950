"""The demo generator: deterministic, exact boxes, balanced enough to learn from."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.data.demo import CLASSES, generate_demo, make_image
from engine.project.shapes import instances
from engine.project.store import Store


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted((root / "images").iterdir())}


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", images=8, seed=3, unlabeled=1)
    b = generate_demo(tmp_path / "b", images=8, seed=3, unlabeled=1)
    generate_demo(tmp_path / "c", images=8, seed=4, unlabeled=1)
    assert a == b
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")
    with Store(tmp_path / "a") as sa, Store(tmp_path / "b") as sb:
        ga = [(x.image_id, x.kind, x.bbox().tolist()) for x in sa.annotations()]
        gb = [(x.image_id, x.kind, x.bbox().tolist()) for x in sb.annotations()]
        assert ga == gb


def test_boxes_are_mask_bounding_boxes(demo_project: Path) -> None:
    with Store(demo_project) as s:
        checked = 0
        for im in s.images():
            for ob in instances(s.annotations(im.id), im.height, im.width, with_masks=True):
                assert ob.mask is not None
                ys, xs = np.nonzero(ob.mask)
                assert ob.box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                checked += 1
        assert checked > 50


def test_class_balance_sizes_splits_and_tags(demo_project: Path) -> None:
    with Store(demo_project) as s:
        images = s.images()
        assert {im.split for im in images} == {"train", "val", "test", "unassigned"}
        assert all(160 <= im.width <= 320 and 160 <= im.height <= 320 for im in images)
        unlabeled = [im for im in images if im.split == "unassigned"]
        assert len(unlabeled) == 4 and all(not s.annotations(im.id) for im in unlabeled)
        tags = {t.id: t.name for t in s.tags()}
        cats = {c.id: c.name for c in s.categories()}
        for im in images[:20]:
            present = {cats[a.category_id] for a in s.annotations(im.id)}
            tagged = {tags[t] for t in s.image_tags(im.id)} - {"crowded"}
            assert present == tagged
    stats = generate_demo(demo_project.parent / "again", images=40, seed=7, unlabeled=4)
    counts = stats["class_counts"]
    assert set(counts) == set(CLASSES)
    assert min(counts.values()) >= 0.5 * max(counts.values())  # reported and roughly balanced


def test_object_sizes_vary_and_occlusion_happens() -> None:
    sides, occluded = [], 0
    for i in range(60):
        _, objs = make_image(0, i)
        for o in objs:
            sides.append(max(o.box[2] - o.box[0], o.box[3] - o.box[1]))
            # a visible mask smaller than its box's fill share hints at occlusion
        masks = [o.mask for o in objs]
        occluded += sum(1 for a in range(len(masks)) for b in range(a + 1, len(masks))
                        if (np.logical_and(objs[a].box[:2] < objs[b].box[2:], objs[b].box[:2] < objs[a].box[2:])).all())
    assert min(sides) <= 16 and max(sides) >= 100
    assert occluded > 0
