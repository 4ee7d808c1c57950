"""Anchor design editor: edit anchor sizes / aspect ratios and see how they cover the dataset's boxes.

Shows (``engine.analysis.anchor_design``): the share of GT boxes whose best anchor IoU is >= 0.5 and
>= 0.7, positives per GT, fg : bg : ignored anchors per image (the imbalance focal loss and OHEM
address), histograms of GT size against the anchor sizes and of best IoU, and the GT boxes that get
no positive anchor (or only low-quality ones). Recomputes 300 ms after the last edit, on the bridge's
'tasks' lane when a bridge is given (always in the app), else in place (tests).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.analysis.anchor_config import anchor_design_config
from engine.analysis.anchor_design import BACKBONE_STRIDES, AnchorStats, anchor_design_job
from engine.events import ArraysReady, Event
from engine.jobs import CancelToken, Collector
from engine.models.faster_rcnn import DetectorSpec
from gui.bridge import EngineBridge, JobHandle


class AnchorDesignPanel(QWidget):
    """Anchor sizes/ratios editor with live dataset statistics; ``gt_selected(image_id, box)`` on a row click."""

    gt_selected = Signal(int, list)

    def __init__(self, bridge: EngineBridge | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.project: str | None = None
        self.stats: AnchorStats | None = None
        self.image_ids = np.zeros(0, np.int64)
        self._job: JobHandle | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self.recompute)
        root = QVBoxLayout(self)
        form = QFormLayout()
        self.sizes_edit = QLineEdit("12; 24; 48; 96; 192")
        self.sizes_edit.setToolTip("anchor sizes per FPN level, levels separated by ';' (e.g. 32; 64; 128)")
        self.ratios_edit = QLineEdit("0.5, 1, 2")
        self.backbone = QComboBox()
        self.backbone.addItems(list(BACKBONE_STRIDES))
        self.min_size, self.max_size = QSpinBox(), QSpinBox()
        for box, v in ((self.min_size, 256), (self.max_size, 512)):
            box.setRange(32, 4096)
            box.setValue(v)
        self.split = QComboBox()
        for s in ("all", "train", "val", "test"):
            self.split.addItem(s, None if s == "all" else s)
        form.addRow("sizes per level", self.sizes_edit)
        form.addRow("aspect ratios (h/w)", self.ratios_edit)
        form.addRow("backbone", self.backbone)
        sizes_row = QHBoxLayout()
        sizes_row.addWidget(self.min_size)
        sizes_row.addWidget(QLabel("max"))
        sizes_row.addWidget(self.max_size)
        form.addRow("input min size", sizes_row)
        form.addRow("split", self.split)
        root.addLayout(form)
        for w in (self.sizes_edit, self.ratios_edit):
            w.textChanged.connect(self.schedule)
        for w in (self.backbone, self.split):
            w.currentIndexChanged.connect(self.schedule)
        for w in (self.min_size, self.max_size):
            w.valueChanged.connect(self.schedule)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #e05050")
        self.summary = QLabel("open a project to see its anchor statistics")
        self.summary.setWordWrap(True)
        root.addWidget(self.error)
        root.addWidget(self.summary)
        self.size_plot = pg.PlotWidget(title="GT size (sqrt area, input px) vs anchor sizes")
        self.iou_plot = pg.PlotWidget(title="best anchor IoU per GT box")
        for p in (self.size_plot, self.iou_plot):
            p.setMinimumHeight(140)
            root.addWidget(p)
        root.addWidget(QLabel("GT boxes without a positive anchor, or only low-quality ones (best IoU < 0.7):"))
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["image", "box (x1, y1, x2, y2)", "size", "best IoU", "positives"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(self._on_row_activated)
        root.addWidget(self.table, 1)

    # -- inputs ---------------------------------------------------------------------------------
    def set_project(self, project: str | None) -> None:
        self.project = project
        self.schedule()

    def set_spec(self, spec: DetectorSpec) -> None:
        """Prefill from a detector spec (e.g. the selected run's)."""
        self.sizes_edit.setText("; ".join(", ".join(str(v) for v in lv) for lv in spec.anchor_sizes))
        self.ratios_edit.setText(", ".join(f"{r:g}" for r in spec.aspect_ratios))
        if spec.backbone in BACKBONE_STRIDES:
            self.backbone.setCurrentText(spec.backbone)
        self.min_size.setValue(spec.min_size)
        self.max_size.setValue(spec.max_size)

    def config(self) -> dict:
        """The job config for the current inputs; raises ValueError naming the bad field
        (the RPN's rules: ``engine.analysis.anchor_config``)."""
        return anchor_design_config(self.project, self.split.currentData(), self.sizes_edit.text(),
                                    self.ratios_edit.text(), self.backbone.currentText(), self.min_size.value(),
                                    self.max_size.value())

    def schedule(self) -> None:
        self._timer.start()

    def recompute(self) -> None:
        """Compute now (on the bridge if there is one)."""
        if not self.project:
            return
        try:
            cfg = self.config()
        except ValueError as e:
            self.error.setText(str(e))
            return
        self.error.setText("")
        if self.bridge is not None:
            if self._job is not None:
                self._job.cancel()
            self._job = h = self.bridge.submit(anchor_design_job, cfg, lane="tasks")
            h.event.connect(self._on_event)
            h.failed.connect(self._on_failed)
            return
        sink = Collector()
        anchor_design_job(cfg, sink, CancelToken())
        self._show(sink.of(ArraysReady)[-1])

    def _on_event(self, e: Event) -> None:
        if self.sender() is self._job and isinstance(e, ArraysReady) and e.kind == "anchor_design":
            self._show(e)

    def _on_failed(self, message: str) -> None:
        if self.sender() is self._job:
            self.error.setText(message)

    # -- output ---------------------------------------------------------------------------------
    def _show(self, event: ArraysReady) -> None:
        a = event.arrays
        self.stats = AnchorStats.from_arrays(a)
        self.image_ids = a["image_ids"]
        st, s = self.stats, event.meta
        self.summary.setText(
            f"{s['gt']} GT boxes in {s['images']} images: best anchor IoU >= 0.5 for {s['share_iou50']:.1%}, "
            f">= 0.7 for {s['share_iou70']:.1%}; {s['positives_per_gt']:.2f} positive anchors per GT. "
            f"Per image: {s['fg_per_image']:.1f} fg : {s['bg_per_image']:.0f} bg : {s['ignored_per_image']:.1f} "
            f"ignored ({s['bg_per_fg']:.0f} background anchors per foreground one). "
            f"{s['no_positive']} GT boxes get no positive anchor, {s['weak']} only low-quality ones.")
        self._plot(st, event.meta["config"])
        rows = np.union1d(st.no_positive(), st.weak())
        rows = rows[np.lexsort((st.best_iou[rows], st.positives[rows] > 0))]  # no positive first, worst first
        self.table.setRowCount(len(rows))
        for r, g in enumerate(rows.tolist()):
            vals = [str(int(self.image_ids[st.gt_image[g]])), ", ".join(f"{v:.0f}" for v in st.gt_boxes[g]),
                    f"{st.gt_scale[g]:.1f}", f"{st.best_iou[g]:.2f}", str(int(st.positives[g]))]
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, g)
                if st.positives[g] == 0:
                    item.setForeground(pg.mkColor("#e05050"))
                self.table.setItem(r, c, item)

    def _plot(self, st: AnchorStats, cfg: dict) -> None:
        """Histograms on a log2 size axis (ticks in pixels) with a line per anchor size."""
        self.size_plot.clear()
        if len(st.gt_scale):
            hist, edges = np.histogram(np.log2(np.maximum(st.gt_scale, 1)), bins=30)
            self.size_plot.plot(edges, hist, stepMode="center", fillLevel=0, brush=(90, 140, 255, 120))
        for lv in cfg["anchor_sizes"]:
            for size in lv:
                self.size_plot.addItem(pg.InfiniteLine(float(np.log2(size)), pen=pg.mkPen("#ffa500", width=2)))
        ticks = [(float(np.log2(v)), str(v)) for v in (4, 8, 16, 32, 64, 128, 256, 512, 1024)]
        self.size_plot.getAxis("bottom").setTicks([ticks])
        self.iou_plot.clear()
        hist, edges = np.histogram(st.best_iou, bins=20, range=(0, 1))
        self.iou_plot.plot(edges, hist, stepMode="center", fillLevel=0, brush=(0, 200, 90, 120))
        for t in (0.5, 0.7):
            self.iou_plot.addItem(pg.InfiniteLine(t, pen=pg.mkPen("#e05050", style=Qt.PenStyle.DashLine)))

    def _on_row_activated(self, row: int, _col: int) -> None:
        g = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        st = self.stats
        self.gt_selected.emit(int(self.image_ids[st.gt_image[g]]), [float(v) for v in st.gt_boxes[g]])
