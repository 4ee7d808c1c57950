"""Dataset analytics: log-space lines, k-means anchors, anchor fits, analyze_project and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator

from engine.analysis.analyze import analyze_project
from engine.analysis.anchor_kmeans import (
    anchors_to_faster_rcnn,
    faster_rcnn_anchor_wh,
    kmeans_anchors,
    mean_best_iou,
    recall_at,
    wh_iou,
)
from engine.analysis.box_stats import log_points, max_variance_line, ols_line, size_stats
from engine.cli import main
from engine.models.backbones import tiny_anchor_sizes

S1, S2, THETA = 0.6, 0.15, np.deg2rad(30)


def _cloud(n: int = 20000, seed: int = 0) -> np.ndarray:
    """Anisotropic Gaussian in (ln w, ln h): std S1 along angle THETA, S2 across, centred at (ln 40, ln 30)."""
    rng = np.random.default_rng(seed)
    c, s = np.cos(THETA), np.sin(THETA)
    rot = np.array([[c, -s], [s, c]])
    z = rng.normal(size=(n, 2)) * [S1, S2]
    return z @ rot.T + np.log([40.0, 30.0])


def _analytic_cov() -> np.ndarray:
    c, s = np.cos(THETA), np.sin(THETA)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([S1**2, S2**2]) @ rot.T


def test_max_variance_line_is_the_analytic_eigenvector():
    pts = _cloud()
    boxes = np.c_[np.zeros((len(pts), 2)), np.exp(pts)]  # xyxy with x1 = y1 = 0
    np.testing.assert_allclose(log_points(boxes), pts, atol=1e-9)
    line = max_variance_line(log_points(boxes))
    assert line["direction"][0] >= 0 and np.hypot(*line["direction"]) == pytest.approx(1)
    np.testing.assert_allclose(line["direction"], [np.cos(THETA), np.sin(THETA)], atol=0.01)
    np.testing.assert_allclose(line["mean"], np.log([40.0, 30.0]), atol=0.02)
    assert line["explained_variance_ratio"] == pytest.approx(S1**2 / (S1**2 + S2**2), abs=0.01)
    flipped = max_variance_line(-pts)  # same axis, opposite sign: still dx >= 0
    np.testing.assert_allclose(flipped["direction"], line["direction"], atol=1e-9)


def test_ols_slope_is_cov_over_var_and_attenuated():
    pts = _cloud()
    cov = _analytic_cov()
    ols = ols_line(pts)
    assert ols["slope"] == pytest.approx(cov[0, 1] / cov[0, 0], abs=0.01)
    tls = max_variance_line(pts)
    tls_slope = tls["direction"][1] / tls["direction"][0]
    assert tls_slope == pytest.approx(np.tan(THETA), abs=0.02)
    # regression dilution: OLS/TLS = (s1^2 - s2^2) cos^2 / (s1^2 cos^2 + s2^2 sin^2) < 1
    c2, s2 = np.cos(THETA) ** 2, np.sin(THETA) ** 2
    factor = (S1**2 - S2**2) * c2 / (S1**2 * c2 + S2**2 * s2)
    assert factor < 0.95 and 0 < ols["slope"] < tls_slope
    assert ols["slope"] / tls_slope == pytest.approx(factor, abs=0.02)
    mx, my = pts.mean(0)
    assert ols["intercept"] == pytest.approx(my - ols["slope"] * mx)
    with pytest.raises(ValueError, match="same width"):
        ols_line(np.array([[1.0, 2.0], [1.0, 3.0]]))


def test_size_stats_histograms_count_every_box():
    boxes = np.array([[0, 0, 10, 20], [5, 5, 45, 25], [0, 0, 30, 30]], np.float64)
    st = size_stats(boxes, bins=4)
    assert sum(st["size_histogram"]["counts"]) == 3 and len(st["size_histogram"]["edges"]) == 5
    assert sum(st["aspect_histogram"]["counts"]) == 3
    assert st["aspect_quantiles"]["p0"] == pytest.approx(0.5) and st["aspect_quantiles"]["p100"] == pytest.approx(2)


def _three_clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0, 30.0], [40.0, 40.0], [120.0, 60.0]])
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.04, (60, 2))) for c in centres])
    return wh[rng.permutation(len(wh))], centres


def test_kmeans_recovers_three_clusters_sorted_by_area():
    wh, centres = _three_clusters()
    anchors = kmeans_anchors(wh, 3, seed=1)
    areas = anchors[:, 0] * anchors[:, 1]
    assert np.all(np.diff(areas) > 0)
    np.testing.assert_allclose(anchors, centres, rtol=0.05)
    assert mean_best_iou(wh, anchors) > 0.85 and recall_at(wh, anchors, 0.5) == 1.0
    np.testing.assert_array_equal(kmeans_anchors(wh, 3, seed=1), anchors)  # seeded
    with pytest.raises(ValueError, match="k=4 anchors need at least 4 boxes"):
        kmeans_anchors(wh[:3], 4)


def test_wh_iou_is_centre_aligned_iou():
    iou = wh_iou(np.array([[10.0, 10.0], [20.0, 5.0]]), np.array([[10.0, 10.0], [5.0, 20.0]]))
    np.testing.assert_allclose(iou, [[1.0, 50 / 150], [50 / 150, 25 / 175]])


def test_faster_rcnn_anchor_wh_matches_torchvision_cell_anchors():
    sizes, ratios = tiny_anchor_sizes(), (0.7, 1.0, 1.4)
    gen = AnchorGenerator(sizes, (ratios,) * len(sizes))
    ref = torch.cat(gen.cell_anchors).numpy()
    ref_wh = np.c_[ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]]
    got = faster_rcnn_anchor_wh(sizes, ratios)
    assert got.shape == (5 * 2 * 3, 2)
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(ref_wh, axis=0))
    assert [12.0, 12.0] in got.tolist()


def test_current_vs_suggested_anchors_and_applying_them():
    wh, _ = _three_clusters()
    current = faster_rcnn_anchor_wh(tiny_anchor_sizes(), (0.7, 1.0, 1.4))
    suggested = kmeans_anchors(wh, 9, seed=0)
    cur_iou, sug_iou = mean_best_iou(wh, current), mean_best_iou(wh, suggested)
    assert 0 < cur_iou < 1 and 0 < sug_iou <= 1 and sug_iou > cur_iou  # 9 fitted shapes beat 30 generic ones
    assert 0 <= recall_at(wh, current) <= 1
    sizes, ratios = anchors_to_faster_rcnn(suggested, levels=5, sizes_per_level=2, max_ratios=3)
    flat = [s for lv in sizes for s in lv]
    assert len(sizes) == 5 and all(len(lv) == 2 for lv in sizes) and flat == sorted(set(flat))
    assert 1 <= len(ratios) <= 3 and min(ratios) < 1 < max(ratios)  # tall, square-ish and wide clusters
    applied = faster_rcnn_anchor_wh(sizes, ratios)
    assert mean_best_iou(wh, applied) > 0.7
    ((one,),), (r,) = anchors_to_faster_rcnn(np.array([[20.0, 40.0]]), levels=1, sizes_per_level=1)
    assert one == round(np.sqrt(800)) and r == 2.0


def test_analyze_project_on_the_demo(demo_project):
    st = analyze_project(demo_project, None, k=5)
    for key in ("class_counts", "objects_per_image", "max_variance_line", "ols_line", "kmeans_anchors",
                "current_anchors", "size_histogram", "aspect_histogram"):
        assert key in st
    assert set(st["class_counts"]) == {"circle", "square", "triangle"}
    assert sum(st["class_counts"].values()) == st["objects"] > 0
    assert st["labeled_images"] == 40 and 1 <= st["objects_per_image"]["mean"] <= st["objects_per_image"]["max"] <= 6
    line = st["max_variance_line"]
    assert set(line) == {"mean", "direction", "explained_variance_ratio"} and line["direction"][0] >= 0
    assert set(st["ols_line"]) == {"slope", "intercept"}
    km = st["kmeans_anchors"]
    assert km["k"] == 5 and len(km["anchors"]) == 5
    areas = [w * h for w, h in km["anchors"]]
    assert areas == sorted(areas)
    for rep in (km, st["current_anchors"], km["faster_rcnn"]):
        assert 0 < rep["mean_best_iou"] <= 1 and 0 <= rep["recall_at_0_5"] <= 1
    assert len(st["points"]["log_wh"]) == sum(st["size_histogram"]["counts"])
    json.dumps(st, allow_nan=False)
    val = analyze_project(demo_project, "val", k=3)
    assert 0 < val["objects"] < st["objects"]
    with pytest.raises(ValueError, match="unknown split"):
        analyze_project(demo_project, "nope", k=3)


def test_cli_analyze_writes_json_and_refuses_large_k(demo_project, tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert main(["analyze", "--project", str(demo_project), "--k", "4", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    stats = json.loads(out.read_text())
    assert summary["objects"] == stats["objects"] and stats["kmeans_anchors"]["k"] == 4
    assert summary["kmeans_mean_best_iou"] == pytest.approx(stats["kmeans_anchors"]["mean_best_iou"], abs=1e-4)
    bad = tmp_path / "bad.json"
    assert main(["analyze", "--project", str(demo_project), "--split", "val", "--k", "100000",
                 "--out", str(bad)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: k=100000 anchors need at least") and not bad.exists()
    assert captured.out == ""
