"""Evaluation report maths: confusion matrix and TP/FP/FN causes on a hand-built case, PR curves and
per-class AP against faster-coco-eval and pycocotools, segmentation/tag reports, run curves."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from engine.eval.curves import RunCurves, run_curves
from engine.eval.detection import ImageDetections, ImageTargets, _coco_dicts, coco_map
from engine.eval.errors import (
    detection_errors,
    error_counts,
    filter_errors,
    sort_errors,
    write_errors_csv,
)
from engine.eval.matching import RECALL_THRESHOLDS, box_iou, greedy_match
from engine.eval.report import build_detection_report, detection_confusion
from engine.eval.seg_report import SegmentationReport
from engine.eval.segmentation import confusion_matrix, iou_per_class
from engine.eval.tag_report import build_tag_report
from engine.eval.tags import per_tag_ap
from engine.project.store import Store

CAT, DOG = 1, 2
NAMES = ("cat", "dog")


def _hand_case() -> tuple[list[ImageTargets], list[ImageDetections]]:
    """Image 1: one TP, one duplicate, one class confusion, one localisation error, one background FP and a
    dog found only below the score threshold; image 2: a missed cat; image 3: no objects, one background FP."""
    g1 = ImageTargets(1, 300, 300, np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [80, 80, 90, 90]],
                                            np.float32), np.array([CAT, DOG, CAT, DOG]))
    d1 = ImageDetections(1, np.array([[0, 0, 10, 10],        # cat on the cat: TP (IoU 1)
                                      [0, 0, 10, 11],        # cat on the same cat, lower score: duplicate
                                      [20, 20, 30, 30],      # cat on the dog: class confusion
                                      [50, 50, 60, 75],      # cat on the cat at IoU 0.4: localisation
                                      [200, 200, 210, 210],  # dog on nothing: background
                                      [80, 80, 90, 90]],     # dog on the dog, score 0.1 < 0.25: not counted
                                     np.float32),
                         np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1]), np.array([CAT, CAT, CAT, CAT, DOG, DOG]))
    g2 = ImageTargets(2, 100, 100, np.array([[10, 10, 40, 40]], np.float32), np.array([CAT]))
    g3 = ImageTargets(3, 100, 100, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    d3 = ImageDetections(3, np.array([[0, 0, 5, 5]], np.float32), np.array([0.95]), np.array([DOG]))
    return [g1, g2, g3], [d1, d3]


def test_confusion_matrix_and_error_causes_on_a_hand_built_case() -> None:
    gts, dets = _hand_case()
    cm = detection_confusion(gts, dets, 2, iou=0.5, score=0.25)
    # truth rows, prediction columns; index 0 = background
    assert cm.tolist() == [[0, 2, 2],   # FPs: cat duplicate + cat localisation; dog background x2
                           [2, 1, 0],   # cats: the localised one and image 2's missed; one TP
                           [1, 1, 0]]   # dogs: the low-score one missed; one taken for a cat
    errors = detection_errors(gts, dets, iou=0.5, score=0.25)
    counts = error_counts(errors)
    assert (counts["TP"], counts["FP"], counts["FN"]) == (1, 5, 4)
    assert counts["FP_causes"] == {"duplicate": 1, "class_confusion": 1, "localisation": 1, "background": 2}
    assert counts["FN_causes"] == {"class_confusion": 1, "localisation": 1, "low_score": 1, "missed": 1}
    # the error list and the confusion matrix count the same TP / FP / FN
    report = build_detection_report(gts, dets, NAMES, iou=0.5, score=0.25)
    assert report.tp.tolist() == [1, 0] and report.fp.tolist() == [3, 2] and report.fn.tolist() == [2, 2]
    by = {(r.kind, r.cause, r.image_id): r for r in errors}
    dup = by[("FP", "duplicate", 1)]
    assert dup.gt_box == (0, 0, 10, 10) and dup.iou == pytest.approx(100 / 110) and dup.score == 0.8
    conf = by[("FP", "class_confusion", 1)]
    assert conf.label == CAT and conf.gt_label == DOG and conf.iou == pytest.approx(1.0)
    assert by[("FP", "localisation", 1)].iou == pytest.approx(0.4)
    assert by[("FP", "background", 1)].gt_box is None and by[("FP", "background", 3)].label == DOG
    low = by[("FN", "low_score", 1)]
    assert low.label == DOG and low.score == pytest.approx(0.1) and low.box == (80, 80, 90, 90)
    missed = by[("FN", "missed", 2)]
    assert missed.box is None and missed.score is None and missed.gt_box == (10, 10, 40, 40)
    # a lower score threshold turns the low-score dog into a TP
    assert error_counts(detection_errors(gts, dets, 0.5, 0.05))["TP"] == 2


def test_error_helpers_filter_sort_and_export(tmp_path) -> None:
    gts, dets = _hand_case()
    errors = detection_errors(gts, dets)
    assert len(filter_errors(errors, kind="FP", cause="background")) == 2
    assert {r.cause for r in filter_errors(errors, kind=["FN"], label=CAT)} == {"localisation", "missed"}
    assert len(filter_errors(errors, image_id=3)) == 1
    assert all(r.score >= 0.7 for r in filter_errors(errors, min_score=0.7))
    by_score = sort_errors(errors, "score")
    assert by_score[0].score == 0.95 and by_score[-1].score is None  # FNs without a prediction go last
    by_iou = sort_errors(errors, "iou", descending=False)
    assert [r.iou for r in by_iou] == sorted(r.iou for r in errors)
    text = json.dumps([r.to_dict(NAMES) for r in errors])
    assert '"class_confusion"' in text and '"gt_category": "dog"' in text
    path = write_errors_csv(errors, tmp_path / "errors.csv", NAMES)
    assert len(path.read_text().strip().splitlines()) == 1 + len(errors)
    with pytest.raises(ValueError, match="sort by"):
        sort_errors(errors, "area")


def test_greedy_match_takes_the_best_free_ground_truth_in_score_order() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 12]], np.float64)
    det = np.array([[0, 0, 10, 11], [0, 0, 10, 10]], np.float64)  # first (higher score) overlaps both
    ious = box_iou(det, gt)
    assert ious[0, 0] == pytest.approx(10 / 11) and ious[0, 1] == pytest.approx(11 / 12)
    assert greedy_match(ious, 0.5).tolist() == [1, 0]  # det 0 takes its best (gt 1); det 1 gets gt 0
    assert greedy_match(ious, np.array([0.5, 0.95])).tolist() == [[1, 0], [-1, 0]]  # at .95 only the exact one


def _random_case(seed: int, n_images: int = 30, k: int = 3) -> tuple[list[ImageTargets], list[ImageDetections]]:
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for i in range(1, n_images + 1):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 100, (n, 2))], 1)
        labels = rng.integers(1, k + 1, n)
        gts.append(ImageTargets(i, 320, 320, boxes, labels))
        fp_xy = rng.uniform(0, 250, (3, 2))
        d_boxes = np.concatenate([boxes + rng.normal(0, 6, boxes.shape), np.concatenate([fp_xy, fp_xy + 30], 1)])
        d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 1)
        d_labels = np.concatenate([np.where(rng.random(n) < 0.8, labels, rng.integers(1, k + 1, n)),
                                   rng.integers(1, k + 1, 3)])
        dets.append(ImageDetections(i, d_boxes, rng.uniform(0.05, 1.0, len(d_boxes)), d_labels))
    return gts, dets


def _reference_eval(gts: list[ImageTargets], dets: list[ImageDetections], k: int) -> tuple[object, object]:
    """(faster-coco-eval, pycocotools) evaluators after evaluate + accumulate on the same data."""
    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, res = _coco_dicts(gts, dets, k + 1)
    quiet = lambda *a, **kw: None  # noqa: E731
    fast_gt = FastCOCO(gt_dict, print_function=quiet)
    fast = COCOeval_faster(fast_gt, fast_gt.loadRes(res), "bbox", print_function=quiet)
    fast.evaluate()
    fast.accumulate()
    with contextlib.redirect_stdout(io.StringIO()):
        ref_gt = COCO()
        ref_gt.dataset = gt_dict
        ref_gt.createIndex()
        ref = COCOeval(ref_gt, ref_gt.loadRes(res), "bbox")
        ref.evaluate()
        ref.accumulate()
    return fast, ref


@pytest.mark.parametrize("seed", [0, 1])
def test_pr_curves_and_per_class_ap_match_the_coco_evaluators(seed: int) -> None:
    gts, dets = _random_case(seed)
    report = build_detection_report(gts, dets, ("a", "b", "c"))
    fast, ref = _reference_eval(gts, dets, 3)
    fast_p = np.asarray(fast.eval["precision"])  # (T, R, K, A, M): IoU .5 = 0, area all = 0, maxDets 100 = -1
    ref_p = ref.eval["precision"]
    assert np.array_equal(report.recall_points, RECALL_THRESHOLDS) and len(RECALL_THRESHOLDS) == 101
    for k in range(3):
        recall, precision = report.pr_curve(k + 1)
        np.testing.assert_allclose(precision, fast_p[0, :, k, 0, -1], atol=1e-9)
        per_iou = ref_p[:, :, k, 0, -1]
        assert report.ap[k] == pytest.approx(per_iou[per_iou > -1].mean(), abs=1e-12)
        assert report.ap50[k] == pytest.approx(per_iou[0].mean(), abs=1e-12)
        # at score threshold 0 every detection is kept: recall = COCO's final recall at IoU .5
        assert report.r_curve[k, 0] == pytest.approx(ref.eval["recall"][0, k, 0, -1], abs=1e-12)
    assert report.stats == coco_map(gts, dets, 4)
    assert 0.05 < np.nanmean(report.ap50) < 0.99
    # TP/FP/FN of the error list equal the confusion matrix's, whatever the data
    counts = error_counts(detection_errors(gts, dets, 0.5, 0.3))
    cm_report = build_detection_report(gts, dets, ("a", "b", "c"), 0.5, 0.3)
    assert (counts["TP"], counts["FP"], counts["FN"]) == (cm_report.tp.sum(), cm_report.fp.sum(), cm_report.fn.sum())


def test_report_exports_json_and_csv(tmp_path) -> None:
    gts, dets = _hand_case()
    report = build_detection_report(gts, dets, NAMES)
    doc = json.loads(json.dumps(report.to_json()))  # strict JSON: NaN became null
    assert doc["confusion"]["labels"] == ["background", "cat", "dog"]
    assert [r["class"] for r in doc["per_class"]] == ["cat", "dog"]
    names = {p.name for p in report.to_csv(tmp_path)}
    assert {"per_class.csv", "confusion.csv", "pr_cat.csv", "pr_dog.csv", "f1_cat.csv", "f1_dog.csv"} <= names
    assert (tmp_path / "pr_cat.csv").read_text().splitlines()[0] == "recall,precision"
    thr, f1 = report.best_f1(CAT)
    assert 0 <= thr <= 1 and 0 < f1 <= 1


def test_segmentation_and_tag_reports(tmp_path) -> None:
    truth = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [255, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 2, 2], [0, 2, 0, 2]])
    seg = SegmentationReport.from_maps([truth], [pred], ["background", "a", "b"])
    np.testing.assert_allclose(seg.iou, iou_per_class(confusion_matrix(truth, pred, 3)))
    assert seg.miou == pytest.approx(np.nanmean(seg.iou)) and seg.confusion.sum() == 11
    assert {p.name for p in seg.to_csv(tmp_path / "seg")} == {"per_class.csv", "confusion.csv"}
    json.dumps(seg.to_json())

    scores = np.array([[0.9, 0.2], [0.6, 0.7], [0.3, 0.1], [0.8, 0.4]])
    truth_t = np.array([[1, 0], [0, 1], [0, 0], [1, 0]], bool)
    tags = build_tag_report(scores, truth_t, [0.5, 0.5], ["x", "y"])
    np.testing.assert_allclose(tags.ap, per_tag_ap(scores, truth_t))
    assert tags.f1[0] == pytest.approx(0.8) and tags.f1[1] == pytest.approx(1.0)  # x: 2 TP, 1 FP
    recall, precision = tags.pr_curves[0]
    assert recall[-1] == 1.0 and precision[0] == 1.0
    assert {p.name for p in tags.to_csv(tmp_path / "tags")} == {"per_class.csv", "pr_x.csv", "pr_y.csv",
                                                                 "f1_x.csv", "f1_y.csv"}


def test_run_curves_from_hand_written_metric_rows(tmp_path) -> None:
    with Store.create(tmp_path / "p") as store:
        run_id = store.create_run("r", "faster_rcnn", {})
        rows = []
        for epoch, (train_losses, val_loss) in enumerate([((2.0, 1.0), 1.6), ((1.0, 0.8), None),
                                                          ((0.6, 0.4), 1.2), ((0.3, 0.1), 1.5)]):
            rows += [(epoch * 2 + i + 1, epoch, "train", "loss", v) for i, v in enumerate(train_losses)]
            rows.append((epoch * 2 + 2, epoch, "train", "lr", 0.01))
            if val_loss is not None:
                rows += [(epoch * 2 + 2, epoch, "val", "loss", val_loss), (epoch * 2 + 2, epoch, "val", "map50", 0.1)]
        store.add_metrics(run_id, rows)
        store.update_run(run_id, status="early_stopped", summary={
            "stop_reason": "early_stop", "epoch": 3, "best": {"metric": "val_loss", "value": 1.2, "step": 6,
                                                              "epoch": 2}})
        curves = run_curves(store, run_id)
    assert curves.epochs.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(curves.train_loss, [1.5, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(curves.val_loss, [1.6, np.nan, 1.2, 1.5])
    np.testing.assert_allclose(curves.gap, [0.1, np.nan, 0.7, 1.3])
    assert curves.max_gap_epoch() == 3 and set(curves.val_metrics) == {"map50"}
    assert curves.early_stop_epoch == 3 and curves.best_epoch == 2 and curves.best_step == 6
    assert curves.best_metric == "val_loss" and curves.stop_reason == "early_stop"
    doc = json.loads(json.dumps(curves.to_json()))
    assert doc["val_loss"][1] is None and doc["best"]["epoch"] == 2
    plain = RunCurves.from_rows([(1, 0, "train", "loss", 1.0)], {"stop_reason": "max_steps"})
    assert plain.early_stop_epoch is None and np.isnan(plain.gap).all()
