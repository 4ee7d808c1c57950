"""The split snapshot dataset, label map, size-from-data and box/mask-consistent augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import TrainConfig
from engine.data.dataset import DetectionDataset, make_label_map, size_from_data, snapshot_split
from engine.data.transforms import augment_preview, train_transform
from engine.project.shapes import Annotation, Box
from engine.project.store import Store


def test_snapshot_is_independent_of_later_edits(demo_copy) -> None:
    with Store(demo_copy) as store:
        lm = make_label_map(store)
        ds = DetectionDataset.from_store(store, "train", lm, max_images=3)
        first = ds.records[0]
        before_img, before_t = ds[0]
        cat = store.categories()[0].id
        store.add_annotation(Annotation(first.image_id, cat, Box(np.array([1.0, 1.0, 30.0, 30.0]))))
        store.set_split([first.image_id], "test")
    assert len(ds) == 3 and ds.records[0] is first
    img, t = ds[0]
    assert torch.equal(t["boxes"], before_t["boxes"]) and torch.equal(t["labels"], before_t["labels"])
    assert img.dtype == torch.float32 and img.shape[0] == 3 and 0.0 <= float(img.min()) <= float(img.max()) <= 1.0


def test_labels_and_boxes_match_the_store(demo_project) -> None:
    with Store(demo_project) as store:
        cats = store.categories()
        lm = make_label_map(store)
        ds = DetectionDataset.from_store(store, "val", lm)
        assert len(ds) == len(store.images("val"))
        assert lm == {c.id: i + 1 for i, c in enumerate(cats)}
        rec = next(r for r in ds.records if r.annotations)
        boxes, cat_ids = store.boxes(rec.image_id)
    _, t = ds[ds.records.index(rec)]
    # the demo stores each object as a mask + a box with the same group id: one target per object
    want = sorted(zip(boxes.tolist(), cat_ids.tolist()))[::2]
    got = sorted(zip(t["boxes"].tolist(), t["labels"].tolist()))
    assert len(got) == len(boxes) // 2
    for (wb, wc), (gb, gl) in zip(want, got):
        assert np.allclose(wb, gb, atol=1e-3) and lm[wc] == gl


def test_size_from_data_uses_median_short_and_max_long_side(demo_project) -> None:
    with Store(demo_project) as store:
        recs = snapshot_split(store, "train")
    min_size, max_size = size_from_data(recs)
    assert min_size == int(np.median([min(r.width, r.height) for r in recs]))
    assert max_size == max(max(r.width, r.height) for r in recs)
    assert max_size <= 320  # demo images are 160-320 px: no 800-px upscaling


def test_augmentations_keep_boxes_on_their_masks(demo_project) -> None:
    cfg = TrainConfig(augment_flip=True, augment_scale=True, augment_crop=True, augment_color=True)
    with Store(demo_project) as store:
        ds = DetectionDataset.from_store(store, "train", transform=train_transform(cfg), max_images=6,
                                         with_masks=True)
    torch.manual_seed(0)
    checked = 0
    for _ in range(3):
        for i in range(len(ds)):
            img, t = ds[i]
            boxes, masks = t["boxes"], t["masks"]
            assert len(boxes) == len(masks) == len(t["labels"])
            assert boxes.canvas_size == tuple(img.shape[-2:]) == tuple(masks.shape[-2:])
            for b, m in zip(boxes.tolist(), masks):
                ys, xs = torch.nonzero(m, as_tuple=True)
                if len(xs) == 0:
                    continue
                tight = np.array([xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1])
                b = np.array(b)
                # the mask always lies inside its box; a box clipped by a crop may be looser than the
                # clipped mask (non-rectangular shapes), one clear of the borders must fit it tightly
                assert (tight[:2] >= b[:2] - 3).all() and (tight[2:] <= b[2:] + 3).all(), (b, tight)
                h, w = img.shape[-2:]
                if b[0] > 1 and b[1] > 1 and b[2] < w - 1 and b[3] < h - 1:
                    assert np.allclose(b, tight, atol=3.0), (b, tight)
                    checked += 1
    assert checked > 20


def test_overfit_mode_and_all_off_disable_augmentation() -> None:
    assert train_transform(TrainConfig(overfit_one_batch=True)) is None
    assert train_transform(TrainConfig(augment_flip=False, augment_scale=False, augment_color=False)) is None
    assert len(train_transform(TrainConfig(augment_crop=True))) == 6  # flip scale crop color clamp sanitize


def test_augment_preview(demo_project) -> None:
    with Store(demo_project) as store:
        cat_ids = {c.id for c in store.categories()}
    out = augment_preview(demo_project, TrainConfig().to_dict(), n=4, seed=1)
    again = augment_preview(demo_project, TrainConfig(), n=4, seed=1)
    assert len(out) == 4
    for (img, boxes, cats), (img2, _, _) in zip(out, again):
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.flags.c_contiguous
        assert np.array_equal(img, img2)  # the seed fixes the draw
        assert boxes.shape == (len(cats), 4) and boxes.dtype == np.float32
        h, w = img.shape[:2]
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        assert set(cats.tolist()) <= cat_ids
    with pytest.raises(ValueError, match="unknown training options"):
        augment_preview(demo_project, {"bogus": 1}, n=1)
