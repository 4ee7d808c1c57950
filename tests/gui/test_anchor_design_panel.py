"""Anchor design editor on the demo project: edits recompute the statistics the engine reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.analysis.anchor_config import parse_ratios, parse_sizes
from engine.analysis.anchor_design import anchor_stats, dataset_boxes
from engine.models.faster_rcnn import DetectorSpec
from engine.project.store import Store
from gui.xray.anchor_design import AnchorDesignPanel


def test_parsing_and_errors():
    assert parse_sizes("12; 24, ; 48") == ((12,), (24,), (48,))
    assert parse_sizes("16, 32; 32 64") == ((16, 32), (32, 64))
    assert parse_ratios("0.5, 1 2") == (0.5, 1.0, 2.0)
    for bad in ("12; ; 48", "12, 16; 24", "-3"):
        with pytest.raises(ValueError, match="anchor sizes"):
            parse_sizes(bad)
    with pytest.raises(ValueError, match="ratios"):
        parse_ratios("0, 1")


def test_editing_sizes_recomputes_the_dataset_statistics(qtbot, demo_project: Path):
    panel = AnchorDesignPanel()
    qtbot.addWidget(panel)
    spec = DetectorSpec(min_size=256, max_size=512)
    panel.set_spec(spec)
    panel.set_project(str(demo_project))
    qtbot.waitUntil(lambda: panel.stats is not None, timeout=10_000)
    with Store(demo_project) as s:
        boxes, sizes, ids = dataset_boxes(s)
    ref = anchor_stats(boxes, sizes, spec.anchor_sizes, spec.aspect_ratios, 256, 512)
    np.testing.assert_array_equal(panel.stats.best_iou, ref.best_iou)
    assert f"{ref.share(0.7):.1%}" in panel.summary.text()
    first = panel.stats
    # one huge anchor size everywhere: the demo's small shapes lose their good anchors
    panel.sizes_edit.setText("400; 400; 400; 400; 400")
    qtbot.waitUntil(lambda: panel.stats is not first, timeout=10_000)
    assert panel.stats.share(0.5) < first.share(0.5)
    assert panel.table.rowCount() == len(np.union1d(panel.stats.no_positive(), panel.stats.weak())) > 0
    got = []
    panel.gt_selected.connect(lambda i, b: got.append((i, b)))
    panel._on_row_activated(0, 0)
    assert got and got[0][0] in ids and len(got[0][1]) == 4
    panel.sizes_edit.setText("12; 24")
    panel.recompute()
    assert "5 FPN levels" in panel.error.text()
