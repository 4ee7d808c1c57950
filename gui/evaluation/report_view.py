"""The report of one run on one split as interactive views: metrics, per-class table, curves, confusion.

``ReportView.set_result(ReportResult | None)`` fills it for any task kind (``engine.inference.report``):

- detection: COCO's 12 stats; per class AP / AP50 / AP75, TP / FP / FN and P / R / F1 at the report's
  IoU and score, best F1 and its threshold; PR curves (IoU .5) and F1 against the score threshold per
  class (the class picker highlights one, the yellow dots mark each class's best F1, the dashed line
  the report's score threshold); the confusion matrix with a background row and column;
- segmentation: mIoU, pixel accuracy, boundary F; per-class IoU table and bars; pixel confusion;
- classification (tags): mAP, F1 macro / micro; per-tag table; PR and F1-vs-threshold curves.

Nothing here computes metrics: the arrays come from the engine's report objects.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.eval.detection import STAT_NAMES
from engine.eval.report import DetectionReport
from engine.eval.seg_report import SegmentationReport
from engine.eval.tag_report import TagReport
from engine.inference.report import ReportResult
from gui.evaluation.plots import TITLE_SIZE, ConfusionView, CurvePlot, class_color
from gui.evaluation.tables import InfoLabel, fill_table, fmt, make_table

STAT_TITLES = {"map": "AP", "map50": "AP50", "map75": "AP75", "map_small": "AP small", "map_medium": "AP medium",
               "map_large": "AP large", "mar1": "AR@1", "mar10": "AR@10", "mar100": "AR@100", "mar_small": "AR small",
               "mar_medium": "AR medium", "mar_large": "AR large"}
DET_COLUMNS = ("class", "GT", "AP", "AP50", "AP75", "TP", "FP", "FN", "precision", "recall", "F1", "best F1",
               "@ score")
SEG_COLUMNS = ("class", "IoU", "truth px", "predicted px", "precision", "recall")
TAG_COLUMNS = ("tag", "AP", "F1", "precision", "recall", "support", "threshold")
ALL = "All classes"
METRICS_PER_ROW = 6  # the headline metrics: rows of names over rows of values (AP row, AR row)


class ReportView(QWidget):
    class_picked = Signal(object)  # index into the class list, or None for all

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: ReportResult | None = None
        self.headline = InfoLabel("No report yet: pick a model and a split, then Evaluate.", self)
        self.metrics_table = make_table(("",) * METRICS_PER_ROW, self, sortable=False)
        self.metrics_table.horizontalHeader().hide()
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.metrics_table.setAlternatingRowColors(False)
        self.metrics_table.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.class_table = make_table(DET_COLUMNS, self)
        self.class_table.itemSelectionChanged.connect(self._on_class_row)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.metrics_table)
        ll.addWidget(self.class_table, 1)

        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("Highlight one class's curves")
        self.class_combo.currentIndexChanged.connect(self._on_class_combo)
        self.pr_plot = CurvePlot("recall", "precision", self)
        self.f1_plot = CurvePlot("score threshold", "F1", self)
        self.confusion = ConfusionView(self)
        self.bars = pg.PlotWidget(self)
        self.bars.setMenuEnabled(False)
        self.bars.setLabel("left", "IoU")
        self.bar_item: pg.BarGraphItem | None = None
        self.bars.hide()  # a tab page of segmentation reports only
        self.plots = QTabWidget(self)
        self.plots.setDocumentMode(True)
        self.plots.addTab(self.pr_plot, "PR curve")
        self.plots.addTab(self.f1_plot, "F1 vs threshold")
        self.plots.addTab(self.confusion, "Confusion")
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Class:", self))
        pick.addWidget(self.class_combo, 1)
        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(pick)
        rl.addWidget(self.plots, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.headline)
        lay.addWidget(split, 1)
        self.set_result(None)

    # -- filling ------------------------------------------------------------------------------------
    def set_result(self, result: ReportResult | None) -> None:
        self.result = result
        report = result.report if result is not None else None
        picked = self.class_combo.currentText()
        if isinstance(report, DetectionReport):
            self._show_detection(result, report)
        elif isinstance(report, SegmentationReport):
            self._show_segmentation(result, report)
        elif isinstance(report, TagReport):
            self._show_tags(result, report)
        else:
            self.headline.setText("No report yet: pick a model and a split, then Evaluate.")
            self._set_metrics([])
            fill_table(self.class_table, DET_COLUMNS, [])
            self._set_names([])
            self.pr_plot.set_curves([], [], [])
            self.f1_plot.set_curves([], [], [])
            self.confusion.set_matrix(None)
        idx = self.class_combo.findText(picked)
        self.class_combo.setCurrentIndex(max(0, idx))

    def _set_metrics(self, pairs: list[tuple[str, float]]) -> None:
        """(name, value) pairs, ``METRICS_PER_ROW`` to a row: a row of names over a row of values."""
        t = self.metrics_table
        chunks = [pairs[i:i + METRICS_PER_ROW] for i in range(0, len(pairs), METRICS_PER_ROW)]
        t.clearContents()
        t.setRowCount(2 * len(chunks))
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for k, chunk in enumerate(chunks):
            for c, (name, value) in enumerate(chunk):
                head = QTableWidgetItem(name)
                head.setForeground(muted)
                head.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                cell = QTableWidgetItem(fmt(value))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(2 * k, c, head)
                t.setItem(2 * k + 1, c, cell)
        rows = t.verticalHeader().length() if t.rowCount() else t.verticalHeader().defaultSectionSize()
        t.setFixedHeight(rows + 2 * t.frameWidth())

    def metrics(self) -> dict[str, str]:
        """The metrics shown, name -> text (tests, exports)."""
        t = self.metrics_table
        out = {}
        for r in range(0, t.rowCount(), 2):
            for c in range(t.columnCount()):
                name, value = t.item(r, c), t.item(r + 1, c)
                if name is not None and name.text():
                    out[name.text()] = value.text() if value is not None else ""
        return out

    def _plot_tabs(self, *tabs: tuple[QWidget, str]) -> None:
        current = self.plots.tabText(self.plots.currentIndex())
        self.plots.blockSignals(True)
        while self.plots.count():
            self.plots.removeTab(0)
        for w, title in tabs:
            self.plots.addTab(w, title)
        self.plots.blockSignals(False)
        for i in range(self.plots.count()):
            if self.plots.tabText(i) == current:
                self.plots.setCurrentIndex(i)

    def _set_names(self, names: list[str]) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem(ALL, None)
        for i, n in enumerate(names):
            self.class_combo.addItem(n, i)
            self.class_combo.setItemData(i + 1, class_color(i), Qt.ItemDataRole.DecorationRole)
        self.class_combo.blockSignals(False)

    def _where(self, result: ReportResult) -> str:
        return f"run {result.run_id} · {result.task} · split {result.split} · {result.images} images"

    def _show_detection(self, result: ReportResult, r: DetectionReport) -> None:
        self.headline.setText(f"{self._where(result)} · AP50 {fmt(r.stats.get('map50'))} · "
                              f"TP {int(r.tp.sum())} FP {int(r.fp.sum())} FN {int(r.fn.sum())} "
                              f"at IoU ≥ {r.iou:g}, score ≥ {r.score:g}")
        self._set_metrics([(STAT_TITLES.get(n, n), float(r.stats.get(n, float("nan")))) for n in STAT_NAMES])
        rows = [(p["class"], p["gt"], p["ap"], p["ap50"], p["ap75"], p["tp"], p["fp"], p["fn"], p["precision"],
                 p["recall"], p["f1"], p["best_f1"], p["best_f1_score"]) for p in r.per_class()]
        fill_table(self.class_table, DET_COLUMNS, [tuple(_num(v) for v in row) for row in rows])
        names = list(r.class_names)
        self._set_names(names)
        self._plot_tabs((self.pr_plot, "PR curve"), (self.f1_plot, "F1 vs threshold"), (self.confusion, "Confusion"))
        self.pr_plot.setTitle("precision–recall at IoU 0.5", size=TITLE_SIZE)
        self.pr_plot.set_curves(names, [r.recall_points] * len(names), list(r.pr_precision))
        self.f1_plot.setTitle("F1 against the score threshold, IoU 0.5", size=TITLE_SIZE)
        self.f1_plot.set_curves(names, [r.score_points] * len(names), list(r.f1_curve))
        self.f1_plot.set_markers([r.best_f1(k) for k in range(1, len(names) + 1)])
        self.f1_plot.set_threshold(r.score)
        self.confusion.set_matrix(r.confusion, ["background", *names],
                                  f"IoU ≥ {r.iou:g}, score ≥ {r.score:g} · colour = share of the truth row")

    def _show_segmentation(self, result: ReportResult, r: SegmentationReport) -> None:
        self.headline.setText(f"{self._where(result)} · mIoU {fmt(r.miou)} · pixel accuracy {fmt(r.pixel_acc)}")
        self._set_metrics([("mIoU", r.miou), ("pixel accuracy", r.pixel_acc), ("boundary F", r.boundary_f)])
        rows = [(p["class"], p["iou"], p["truth_pixels"], p["predicted_pixels"], p["precision"], p["recall"])
                for p in r.per_class()]
        fill_table(self.class_table, SEG_COLUMNS, [tuple(_num(v) for v in row) for row in rows])
        names = list(r.class_names)
        self._set_names(names)
        if self.bar_item is not None:
            self.bars.removeItem(self.bar_item)
        iou = np.nan_to_num(np.asarray(r.iou, np.float64))
        self.bar_item = pg.BarGraphItem(x=np.arange(len(names)), height=iou, width=0.7,
                                        brushes=[class_color(i) for i in range(len(names))])
        self.bars.addItem(self.bar_item)
        self.bars.getAxis("bottom").setTicks([list(enumerate(names))])
        self.bars.setTitle(f"IoU per class (mIoU {fmt(r.miou)})", size=TITLE_SIZE)
        self.bars.setRange(xRange=(-0.6, len(names) - 0.4), yRange=(0, 1), padding=0.02)
        self._plot_tabs((self.bars, "IoU per class"), (self.confusion, "Confusion"))
        self.confusion.set_matrix(r.confusion, names, "pixels · colour = share of the truth row", unit="pixels")

    def _show_tags(self, result: ReportResult, r: TagReport) -> None:
        self.headline.setText(f"{self._where(result)} · mAP {fmt(r.map)} · F1 macro {fmt(r.f1_macro)}")
        self._set_metrics([("mAP", r.map), ("F1 macro", r.f1_macro), ("F1 micro", r.f1_micro)])
        rows = [(p["tag"], p["ap"], p["f1"], p["precision"], p["recall"], p["support"], p["threshold"])
                for p in r.per_class()]
        fill_table(self.class_table, TAG_COLUMNS, [tuple(_num(v) for v in row) for row in rows])
        names = list(r.tag_names)
        self._set_names(names)
        self._plot_tabs((self.pr_plot, "PR curve"), (self.f1_plot, "F1 vs threshold"))
        self.pr_plot.setTitle("precision–recall per tag", size=TITLE_SIZE)
        self.pr_plot.set_curves(names, [c[0] for c in r.pr_curves], [c[1] for c in r.pr_curves])
        self.f1_plot.setTitle("F1 against the score threshold", size=TITLE_SIZE)
        self.f1_plot.set_curves(names, [r.score_points] * len(names), list(r.f1_curve))
        self.f1_plot.set_markers([])
        self.f1_plot.set_threshold(None)
        self.confusion.set_matrix(None)

    # -- class picker ---------------------------------------------------------------------------------
    def pick_class(self, index: int | None) -> None:
        """Highlight class ``index`` (0-based in the report's class list) in every curve; None: all."""
        self.class_combo.setCurrentIndex(0 if index is None else index + 1)

    def _on_class_combo(self, _i: int) -> None:
        data = self.class_combo.currentData()
        index = None if data is None else int(data)
        self.pr_plot.show_class(index)
        self.f1_plot.show_class(index)
        self.class_picked.emit(index)

    def _on_class_row(self) -> None:
        rows = self.class_table.selectionModel().selectedRows()
        if not rows:
            return
        name = self.class_table.item(rows[0].row(), 0).text()
        idx = self.class_combo.findText(name)
        if idx > 0:
            self.class_combo.setCurrentIndex(idx)


def _num(v: object) -> object:
    """JSON null (NaN) back to NaN so the cell shows '–' and sorts last."""
    return float("nan") if v is None else v
