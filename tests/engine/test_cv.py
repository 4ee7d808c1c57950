"""k-fold assignment (disjoint, complete, stratified, stored) and a 2-fold cross-validation run."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from engine.cli import main
from engine.data.dataset import SampleRecord, snapshot_split
from engine.data.folds import classes_of, fold_split, load_folds, stratified_folds
from engine.project.shapes import Annotation, Box
from engine.project.store import Store


def _rec(i: int, cats: list[int]) -> SampleRecord:
    anns = tuple(Annotation(i, c, Box([0, 0, 5, 5]), "manual") for c in cats)
    return SampleRecord(i, None, 10, 10, anns)  # type: ignore[arg-type]


def test_folds_are_disjoint_complete_and_stratified() -> None:
    # class 3 is rare (10 images of 100): every one of 5 folds must get 2 of them
    recs = [_rec(i, [1] if i % 10 else [1, 3]) for i in range(100)] + [_rec(100 + i, []) for i in range(7)]
    folds = stratified_folds(recs, 5, seed=3)
    assert set(folds) == {r.image_id for r in recs} and set(folds.values()) == set(range(5))
    rare = Counter(folds[r.image_id] for r in recs if 3 in classes_of(r))
    assert sorted(rare.values()) == [2, 2, 2, 2, 2]
    sizes = Counter(folds.values())
    assert max(sizes.values()) - min(sizes.values()) <= 1
    assert stratified_folds(recs, 5, seed=3) == folds  # fixed by the seed
    assert stratified_folds(recs, 5, seed=4) != folds
    train, val = fold_split(folds, 2)
    assert not set(train) & set(val) and len(train) + len(val) == len(recs)
    # control: contiguous blocks of the list as stored (no stratification) miss the rare class in a fold
    naive = {r.image_id: min(4, i * 5 // 100) for i, r in enumerate(sorted(recs, key=lambda r: 3 in classes_of(r)))}
    assert len(Counter(naive[r.image_id] for r in recs if 3 in classes_of(r))) < 5
    with pytest.raises(ValueError, match="k >= 2"):
        stratified_folds(recs, 1)


def test_folds_command_prints_and_stores_the_assignment(demo_copy, capsys) -> None:
    assert main(["folds", "--project", str(demo_copy), "--folds", "3", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    with Store(demo_copy) as store:
        ids = {r.image_id for s in ("train", "val") for r in snapshot_split(store, s)}
        k, seed, stored = load_folds(store)
    assert (k, seed) == (3, 1) and {int(i) for i in out["assignment"]} == ids == set(stored)


def test_two_fold_cv_of_the_tiny_model_reports_mean_and_std(demo_copy, capsys, tmp_path) -> None:
    cand = tmp_path / "sgd.json"
    cand.write_text(json.dumps({"optimizer": "sgd", "lr": 0.01}))
    rc = main(["cv", "--project", str(demo_copy), "--folds", "2", "--max-steps", "2", "--epochs", "1",
               "--batch-size", "2", "--min-size", "128", "--max-size", "192", "--device", "cpu",
               "--configs", str(cand)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads(cap.out.strip().splitlines()[-1])
    assert res["metric"] == "map50" and len(res["configs"]) == 1 and res["best"] == 0
    (c,) = res["configs"]
    assert c["config"] == {"optimizer": "sgd", "lr": 0.01} and [f["fold"] for f in c["folds"]] == [0, 1]
    with Store(demo_copy) as store:
        pool = sum(len(store.images(s)) for s in ("train", "val"))
        runs = store.runs()
    assert all(f["train_images"] + f["val_images"] == pool for f in c["folds"])
    values = [f["value"] for f in c["folds"]]
    assert c["mean"] == pytest.approx(sum(values) / 2)
    assert c["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert len(runs) == 2 and all(r.name.startswith("cv2-c0-f") for r in runs)
    assert res["retrain"].startswith("anchorlab train --project") and "--optimizer sgd" in res["retrain"]
