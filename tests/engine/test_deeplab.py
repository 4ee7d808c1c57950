"""DeepLab task: data refusal, the semantic target rule, the CRF path, ``eval --crf`` and ``predict --write``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from engine.cli import main
from engine.config import TrainConfig
from engine.crf import CrfParams, crf_available, dense_crf
from engine.data.dataset import snapshot_split
from engine.data.segmentation import semantic_mask
from engine.models.deeplab import DeeplabSpec
from engine.project.shapes import Annotation, Box, Mask, Polygon
from engine.project.store import Store
from engine.tasks.checkpoint import model_state, save_checkpoint
from engine.tasks.deeplab import TASK


def _one_json_line(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def _rect(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[rows, cols] = 1
    return m


def test_semantic_target_by_hand() -> None:
    h, w = 10, 12
    label_map = {5: 1, 7: 2}
    poly = Polygon(np.array([[6.0, 7.0], [9.0, 7.0], [9.0, 10.0]]))
    anns = [
        Annotation(1, 5, Mask.from_array(_rect(h, w, slice(1, 5), slice(1, 5))), id=1),
        Annotation(1, 7, Mask.from_array(_rect(h, w, slice(3, 7), slice(3, 7))), id=2),  # later: wins the overlap
        Annotation(1, 5, Box(np.array([8.0, 6.0, 11.0, 9.0])), id=3),  # box-only object: unknown inside
        Annotation(1, 9, Mask.from_array(_rect(h, w, slice(8, 10), slice(0, 2))), id=4),  # unknown category
        Annotation(1, 7, Mask.from_array(_rect(h, w, slice(0, 1), slice(10, 12))), group_id=3, id=5),
        Annotation(1, 7, Box(np.array([10.0, 0.0, 12.0, 1.0])), group_id=3, id=6),  # box of a masked object
        Annotation(1, 5, poly, id=7),
    ]
    expected = np.zeros((h, w), np.int64)
    expected[6:9, 8:11] = 255
    expected[1:5, 1:5] = 1
    expected[3:7, 3:7] = 2
    expected[8:10, 0:2] = 255
    expected[0:1, 10:12] = 2
    expected[poly.to_mask(h, w).astype(bool)] = 1
    got = semantic_mask(anns, h, w, label_map)
    assert got.dtype == np.int64 and got.shape == (h, w)
    np.testing.assert_array_equal(got, expected)
    # no polygon or mask of a known category: no segmentation truth at all
    assert (semantic_mask([anns[2]], h, w, label_map) == 255).all()
    assert (semantic_mask([anns[3]], h, w, label_map) == 255).all()


def _boxes_only(project) -> None:
    with Store(project) as store:
        store.delete_annotations([a.id for a in store.annotations() if a.kind != "box"])


def test_project_without_masks_refuses_in_one_line(demo_copy, capsys) -> None:
    _boxes_only(demo_copy)
    rc = main(["train", "--project", str(demo_copy), "--model", "deeplab", "--max-steps", "1", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 1 and cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot train deeplab"), cap.err
    assert "mask or polygon" in lines[0]


def test_training_set_leaves_out_images_without_truth_and_a_batch_of_one_trains(demo_copy) -> None:
    with Store(demo_copy) as store:
        labels = TASK.label_space(store)
        first = [a.id for a in store.annotations(store.images("train")[0].id) if a.kind != "box"]
        store.delete_annotations(first)
        records = snapshot_split(store, "train", 4)
    cfg = TrainConfig(project=str(demo_copy), model="deeplab")
    assert len(TASK.dataset(records, labels, cfg, train=True)) == 3
    val = TASK.dataset(records, labels, None, train=False)
    assert len(val) == 4 and (val[0][1]["mask"] == 255).all()
    model, _ = TASK.build(DeeplabSpec(num_classes=labels.num_outputs, min_size=64, max_size=128))
    model.train()
    image, target = TASK.dataset(records, labels, cfg, train=True)[0]
    losses = model([image], [target])  # the ASPP pooling BatchNorm cannot normalise a batch of one
    assert set(losses) == {"loss_ce"} and torch.isfinite(losses["loss_ce"])
    losses["loss_ce"].backward()


def _constant_checkpoint(project, path, run_id: int = 77) -> str:
    """A deeplab checkpoint predicting label 1 everywhere with probability e^3 / (e^3 + C - 1)."""
    with Store(project) as store:
        labels = TASK.label_space(store)
    spec = DeeplabSpec(num_classes=labels.num_outputs, min_size=64, max_size=128, pretrained=False)
    model, _ = TASK.build(spec)
    last = model.net.classifier[-1]
    nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.zero_()
        last.bias[1] = 3.0
    save_checkpoint(path, {"kind": "best", "task": "deeplab", "model": model_state(model), "optimizer": None,
                           "config": TrainConfig(project=str(project), model="deeplab").to_dict(),
                           "spec": spec.to_dict(), "label_map": labels.label_map,
                           "category_names": list(labels.names), "run_id": run_id, "step": 0, "epoch": 0,
                           "epoch_batches": 0, "metrics": {}, "best": {}})
    return str(path)


@pytest.mark.parametrize("backend", ["fast", pytest.param("exact", marks=pytest.mark.skipif(
    not crf_available(), reason="pydensecrf not importable"))])
def test_crf_path_keeps_the_original_image_size(demo_project, tmp_path, backend) -> None:
    from engine.tasks.checkpoint import load_model

    task, model, _, labels, _ = load_model(_constant_checkpoint(demo_project, tmp_path / "c.pt"))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)  # odd sizes, not a multiple of the stride
    pred = task.predict(model, [image], torch.device("cpu"))[0]
    assert pred["class_map"].shape == (97, 131) and pred["probs"].shape == (labels.num_outputs, 97, 131)
    q = dense_crf(image, pred["probs"], CrfParams(iterations=2), backend)
    assert q.shape == pred["probs"].shape and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-3)
    assert (q.argmax(0) == 1).all()


def test_eval_with_crf_prints_the_keys_and_rejects_bad_parameters(demo_project, tmp_path, capsys,
                                                                  monkeypatch) -> None:
    ckpt = _constant_checkpoint(demo_project, tmp_path / "c.pt")
    base = ["eval", "--project", str(demo_project), "--checkpoint", ckpt, "--max-images", "2", "--device", "cpu"]
    rc = main([*base, "--crf", "fast", "--crf-params", '{"iterations": 3}'])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = _one_json_line(cap.out)
    keys = {"miou", "boundary_f", "pixel_acc", "miou_crf", "boundary_f_crf", "crf_ms_per_image"}
    assert keys <= set(res) and res["images"] == 2 and res["crf_params"]["iterations"] == 3
    assert all(0.0 <= res[k] <= 1.0 for k in keys - {"crf_ms_per_image"}) and res["crf_ms_per_image"] > 0

    rc = main(base)  # no CRF: no CRF keys
    res = _one_json_line(capsys.readouterr().out)
    assert rc == 0 and "miou_crf" not in res and {"miou", "boundary_f"} <= set(res)

    for params, words in (('{"w_bilateral": -1}', "w_bilateral must be >= 0"),
                          ('{"iterations": 0}', "iterations must be in 1..100"),
                          ('{"sigma": 3}', "unknown CrfParams field")):
        rc = main([*base, "--crf", "fast", "--crf-params", params])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1 and words in err[0], err
    with pytest.raises(SystemExit) as exc:  # a flag value that is not JSON: a usage error
        main([*base, "--crf", "fast", "--crf-params", "{oops"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "--crf-params: not JSON" in err[0]

    monkeypatch.setattr("engine.inference.jobs.crf_available", lambda: False)
    rc = main([*base, "--crf", "exact"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "pip install pydensecrf2" in err[0] and "--crf fast" in err[0]


def test_predict_write_stores_masks_with_provenance_and_keeps_manual_ones(demo_copy, tmp_path, capsys) -> None:
    ckpt = _constant_checkpoint(demo_copy, tmp_path / "c.pt", run_id=77)
    with Store(demo_copy) as store:
        val = store.images("val")
        store.add_annotation(Annotation(val[0].id, store.categories()[1].id, Box(np.array([1.0, 1.0, 9.0, 9.0]))))
        before = {a.id for a in store.annotations()}
    for _ in range(2):  # the second run replaces the first one's masks
        rc = main(["predict", "--project", str(demo_copy), "--checkpoint", ckpt, "--split", "val",
                   "--device", "cpu", "--write"])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        res = _one_json_line(cap.out)
        assert res["provenance"] == "model:77" and res["written"] == res["predictions"] == len(val)
        with Store(demo_copy) as store:
            anns = store.annotations()
            cats = store.categories()
        model_anns = [a for a in anns if a.provenance == "model:77"]
        assert len(model_anns) == len(val) and {a.id for a in anns if a.provenance != "model:77"} == before
        for a in model_anns:  # one whole-image region of label 1 per image, scored by its mean probability
            im = next(v for v in val if v.id == a.image_id)
            assert a.kind == "mask" and a.category_id == cats[0].id
            assert a.geometry.area() == im.width * im.height
            assert a.score == pytest.approx(np.exp(3) / (np.exp(3) + len(cats)), abs=1e-4)
    entry = res["results"][0]
    im = next(v for v in val if v.id == entry["image_id"])
    assert entry["classes"] == {cats[0].name: im.width * im.height}
    assert [r["category"] for r in entry["regions"]] == [cats[0].name]
