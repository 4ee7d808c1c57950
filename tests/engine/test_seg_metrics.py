"""Segmentation metrics (engine.eval.segmentation) against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.eval.segmentation import (
    SegmentationMeter,
    bf_tolerance,
    boundary,
    boundary_f1,
    confusion_matrix,
    image_boundary_f,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)


def test_confusion_matrix_iou_and_accuracy_by_hand() -> None:
    truth = np.array([[0, 1], [1, 255]])
    pred = np.array([[0, 1], [0, 1]])
    cm = confusion_matrix(truth, pred, 2)
    # the ignored pixel (255) is left out; rows truth, columns prediction
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])
    # class 0: TP 1, union 1 + 1 = 2; class 1: TP 1, union 2 (truth) + 1 (pred) - 1 = 2
    np.testing.assert_allclose(iou_per_class(cm), [0.5, 0.5])
    assert mean_iou(cm) == pytest.approx(0.5)
    assert pixel_accuracy(cm) == pytest.approx(2 / 3)


def test_absent_class_is_left_out_of_the_mean() -> None:
    truth = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 0]])
    cm = confusion_matrix(truth, pred, 3)
    iou = iou_per_class(cm)
    assert iou[0] == pytest.approx(2 / 3) and iou[1] == pytest.approx(1 / 2) and math.isnan(iou[2])
    assert mean_iou(cm) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert mean_iou(np.zeros((3, 3), np.int64)) == 0.0 and pixel_accuracy(np.zeros((3, 3))) == 0.0


def test_classes_out_of_range_are_errors() -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        confusion_matrix(np.array([[0, 2]]), np.array([[0, 1]]), 2)
    with pytest.raises(ValueError, match="prediction"):
        confusion_matrix(np.array([[0, 1]]), np.array([[0, 5]]), 2)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)


def test_boundary_is_the_inner_ring_and_not_the_image_border() -> None:
    m = np.zeros((7, 7), bool)
    m[2:5, 2:5] = True
    b = boundary(m)
    assert b.sum() == 8 and not b[3, 3]
    assert not boundary(np.ones((5, 5), bool)).any()  # a class filling the image has no boundary
    # ignored neighbours (valid False) do not make a boundary
    valid = np.ones((7, 7), bool)
    valid[:, 5:] = False
    assert boundary(m, valid).sum() == 7 and not boundary(m, valid)[3, 4]  # (3, 4) touches only ignored pixels


def test_boundary_f1_by_hand() -> None:
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True  # ring of 12 pixels
    pred = np.zeros((10, 10), bool)
    pred[2:6, 3:7] = True  # shifted one column right
    # exact matching: rows 2 and 5, columns 3..5 coincide -> 6 of 12 each way -> P = R = F = 0.5
    assert boundary_f1(truth, pred, tolerance=0.5) == pytest.approx(0.5)
    # within 1 px every boundary pixel has a partner
    assert boundary_f1(truth, pred, tolerance=1.0) == pytest.approx(1.0)
    assert boundary_f1(truth, np.zeros_like(pred), tolerance=2.0) == 0.0


def test_image_boundary_f_averages_classes_present() -> None:
    truth = np.zeros((20, 20), np.int64)
    truth[5:15, 5:15] = 1
    assert image_boundary_f(truth, truth.copy(), 3) == pytest.approx(1.0)
    # the object is missed: class 1 scores 0, and so does background (its true boundary, the ring
    # around the object, has no predicted partner)
    assert image_boundary_f(truth, np.zeros_like(truth), 3) == 0.0
    # one class filling the image in both: no boundary anywhere -> 1
    assert image_boundary_f(np.zeros((6, 6), int), np.zeros((6, 6), int), 3) == 1.0
    # a spurious 2x2 blob of class 2 in the corner (tolerance 1 px for 20x20): class 2 scores 0,
    # class 1 scores 1; background: the truth's 40-pixel ring around the object is all matched
    # (R = 1), the prediction adds 4 pixels next to the blob (P = 40 / 44) -> F = 80 / 84
    pred = truth.copy()
    pred[0:2, 0:2] = 2
    assert image_boundary_f(truth, pred, 3) == pytest.approx((80 / 84 + 1 + 0) / 3)
    assert image_boundary_f(np.full((4, 4), 255), np.zeros((4, 4), int), 3) is None


def test_tolerance_is_three_quarters_of_a_percent_of_the_diagonal() -> None:
    assert bf_tolerance(300, 400) == pytest.approx(3.75)
    assert bf_tolerance(10, 10) == 1.0  # at least one pixel


def test_meter_sums_confusion_over_images_and_skips_ignored_images() -> None:
    meter = SegmentationMeter(2)
    meter.update(np.array([[0, 1]]), np.array([[0, 1]]))
    meter.update(np.array([[1, 1]]), np.array([[0, 1]]))
    meter.update(np.full((2, 2), 255), np.zeros((2, 2), int))  # no valid pixel: no BF entry
    out = meter.compute()
    np.testing.assert_array_equal(meter.cm, [[1, 0], [1, 2]])
    assert out["pixel_acc"] == pytest.approx(3 / 4)
    assert out["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert out["images"] == 2 and 0.0 <= out["boundary_f"] <= 1.0
