"""The Analytics panel: filters, four bar charts, the scatter, the selected images and the anchor table.

Pure view: ``set_result(result)`` draws an ``analyze_project`` dict; the feature submits the jobs. The
signals say what the user asked: ``refresh_requested`` (a filter or k changed), ``image_activated(id)``
(a row of the selected images), ``apply_requested`` ("Apply to training").
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.project.store import SPLITS
from gui.analytics.plots import PIXEL_TICKS, RATIO_TICKS, BarChart, ScatterView, log_ticks, plot_widget

DEFAULT_K = 9
ANCHOR_ROWS = ("current", "k-means", "Faster R-CNN fit")
SIDE_WIDTH = 300


def _item(text: str, right: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    if right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return it


def _pct(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


class AnalyticsPanel(QWidget):
    refresh_requested = Signal()
    image_activated = Signal(int)
    apply_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: dict | None = None
        self.image_names: dict[int, str] = {}
        self.split = QComboBox(self)
        self.split.addItem("all splits", None)
        for s in SPLITS:
            self.split.addItem(s, s)
        self.category = QComboBox(self)
        self.category.addItem("all classes", None)
        self.k = QSpinBox(self)
        self.k.setRange(1, 64)
        self.k.setValue(DEFAULT_K)
        self.k.setPrefix("k = ")
        self.k.setToolTip("number of anchors for k-means on box sizes (distance 1 - IoU, YOLOv2)")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("analyse the project again (after annotation edits)")
        self.status = QLabel("open a project", self)
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        for w in (QLabel("Split:"), self.split, QLabel("Class:"), self.category, self.k, self.refresh_button):
            top.addWidget(w)
        top.addWidget(self.status, 1)

        self.class_chart = BarChart(plot_widget("objects per class"))
        self.per_image_chart = BarChart(plot_widget("objects per image (images)"), "#f28e2b")
        self.size_chart = BarChart(plot_widget("box size √(w·h) (px, log)"), "#59a14f")
        self.aspect_chart = BarChart(plot_widget("aspect h / w (log)"), "#b07aa1")
        charts = QWidget(self)
        grid = QGridLayout(charts)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, c in enumerate((self.class_chart, self.per_image_chart, self.size_chart, self.aspect_chart)):
            grid.addWidget(c.widget, 0, i)

        self.scatter = ScatterView()
        self.lines_label = QLabel("", self)
        self.lines_label.setWordWrap(True)
        self.lines_label.setTextFormat(Qt.TextFormat.RichText)
        self.images = QListWidget(self)
        self.images.setToolTip("images of the selected points; click one to open it")
        self.selection_label = QLabel("drag a rubber band on the scatter (or click a point) to list its images")
        self.selection_label.setWordWrap(True)
        self.anchor_table = QTableWidget(len(ANCHOR_ROWS), 2, self)
        self.anchor_table.setHorizontalHeaderLabels(["mean best IoU", "recall@0.5"])
        self.anchor_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.anchor_table.setVerticalHeaderLabels(list(ANCHOR_ROWS))
        self.anchor_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.anchor_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.anchor_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.anchor_table.verticalHeader().setDefaultSectionSize(22)
        self.anchor_table.setFixedHeight(self.anchor_table.horizontalHeader().sizeHint().height()
                                         + 22 * len(ANCHOR_ROWS) + 4)
        self.anchor_table.setToolTip("current: the Train settings' anchors (the tiny detector's default when "
                                     "none are set); k-means: the k suggested shapes; Faster R-CNN fit: the "
                                     "sizes per level and ratios that approximate them (what Apply writes)")
        self.anchor_label = QLabel("", self)
        self.anchor_label.setWordWrap(True)
        self.anchor_label.setTextFormat(Qt.TextFormat.RichText)
        self.apply_button = QPushButton("Apply to training", self)
        self.apply_button.setToolTip("write the suggested Faster R-CNN anchor sizes and ratios into this project's "
                                     "Train settings (tiny backbone)")
        self.apply_button.setEnabled(False)

        side = QWidget(self)
        side.setMinimumWidth(SIDE_WIDTH)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.selection_label)
        sl.addWidget(self.images, 1)
        sl.addWidget(self.anchor_table)
        sl.addWidget(self.anchor_label)
        sl.addWidget(self.apply_button)
        lower = QSplitter(Qt.Orientation.Horizontal, self)
        lower.addWidget(self.scatter)
        lower.addWidget(side)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.lines_label)
        lay.addWidget(charts, 2)
        lay.addWidget(lower, 5)

        self.split.currentIndexChanged.connect(self.refresh_requested)
        self.category.currentIndexChanged.connect(self.refresh_requested)
        self.k.valueChanged.connect(self.refresh_requested)
        self.scatter.selection_changed.connect(self._on_selection)
        self.images.itemClicked.connect(self._on_image_clicked)
        self.images.itemActivated.connect(self._on_image_clicked)
        self.apply_button.clicked.connect(self.apply_requested)

    # -- inputs ---------------------------------------------------------------------------------
    def set_categories(self, categories: list[tuple[int, str]]) -> None:
        keep = self.category.currentData()
        self.category.blockSignals(True)
        self.category.clear()
        self.category.addItem("all classes", None)
        for cid, name in categories:
            self.category.addItem(name, cid)
        self.category.setCurrentIndex(max(0, self.category.findData(keep)))
        self.category.blockSignals(False)

    def config(self) -> dict:
        cid = self.category.currentData()
        return {"split": self.split.currentData(), "k": self.k.value(),
                "categories": None if cid is None else [int(cid)]}

    # -- output ---------------------------------------------------------------------------------
    def clear(self, message: str) -> None:
        self.result = None
        self.status.setText(message)
        for chart in (self.class_chart, self.per_image_chart, self.size_chart, self.aspect_chart):
            chart.set_bars([], [], [])
        self.scatter.set_points(np.zeros((0, 2)), np.zeros(0))
        self.scatter.set_lines(None, None)
        self.scatter.set_anchors(None)
        self.lines_label.setText("")
        self.anchor_label.setText("")
        self.apply_button.setEnabled(False)
        self._fill_anchor_table(None)

    def set_stale(self, stale: bool) -> None:
        """Annotations changed since the numbers were computed: say so on the Refresh button."""
        self.refresh_button.setText("Refresh *" if stale else "Refresh")
        self.refresh_button.setToolTip("annotations changed since this analysis: analyse again" if stale else
                                       "analyse the project again (after annotation edits)")

    def set_result(self, r: dict, image_names: dict[int, str]) -> None:
        self.set_stale(False)
        self.result, self.image_names = r, image_names
        self.status.setText(f"{r['objects']} objects in {r['labeled_images']} labelled of {r['images']} images; "
                            f"{r['objects_per_image']['mean']:.2f} per image (max {r['objects_per_image']['max']})")
        counts = r["class_counts"]
        n = len(counts)
        x = np.arange(n, dtype=np.float64)
        self.class_chart.set_bars(x - 0.4, x + 0.4, list(counts.values()),
                                  [[(float(i), name) for i, name in enumerate(counts)]])
        per = np.bincount(np.asarray(r.get("objects_per_image_counts", []), np.int64))
        xs = np.arange(len(per), dtype=np.float64)
        self.per_image_chart.set_bars(xs - 0.4, xs + 0.4, per, [[(float(i), str(i)) for i in range(len(per))]])
        for chart, key, ticks in ((self.size_chart, "size_histogram", PIXEL_TICKS),
                                  (self.aspect_chart, "aspect_histogram", RATIO_TICKS)):
            edges = np.log(np.asarray(r[key]["edges"], np.float64)) if r[key]["edges"] else np.zeros(1)
            chart.set_bars(edges[:-1], edges[1:], r[key]["counts"],
                           log_ticks(ticks, float(edges.min()), float(edges.max())) if len(edges) > 1 else None)
        pts = r["points"]
        order = {cid: i for i, cid in enumerate(sorted(set(pts["category_ids"])))}
        self.scatter.set_points(np.asarray(pts["log_wh"], np.float64).reshape(-1, 2),
                                np.array([order[c] for c in pts["category_ids"]], np.int64))
        mv, ols = r["max_variance_line"], r["ols_line"]
        self.scatter.set_lines(mv, ols)
        (dx, dy) = mv["direction"]
        slope = dy / dx if abs(dx) > 1e-9 else math.inf
        self.lines_label.setText(
            f"<b style='color:#c9a400'>max-variance line</b>: slope {slope:.3f}, explains "
            f"<b>{mv['explained_variance_ratio']:.1%}</b> of the variance · "
            f"<b style='color:#ff6b6b'>OLS</b> ln h = {ols['slope']:.3f} ln w {ols['intercept']:+.3f}")
        km = r.get("kmeans_anchors")
        self.scatter.set_anchors(np.asarray(km["anchors"]) if km else None)
        self._fill_anchor_table(r)
        if km:
            fr = km["faster_rcnn"]
            sizes = "; ".join(", ".join(map(str, lv)) for lv in fr["anchor_sizes"])
            cur = r["current_anchors"]
            self.anchor_label.setText(
                f"current: {len(cur['anchor_sizes'])} levels × {len(cur['anchor_sizes'][0])} sizes, ratios "
                f"{', '.join(f'{v:g}' for v in cur['aspect_ratios'])}<br>"
                f"<b>suggested</b> sizes {sizes} · ratios {', '.join(f'{v:g}' for v in fr['aspect_ratios'])}")
            self.anchor_label.setToolTip(f"sizes and IoUs in the {r['anchor_frame']}")
        else:
            self.anchor_label.setText(f"<span style='color:#e15759'>{r.get('anchor_error', 'no anchors')}</span>")
        self.apply_button.setEnabled(bool(km))

    def _fill_anchor_table(self, r: dict | None) -> None:
        km = r.get("kmeans_anchors") if r else None
        cur = r.get("current_anchors") if r else None
        rows = [(cur["mean_best_iou"], cur["recall_at_0_5"]) if cur else (None, None),
                (km["mean_best_iou"], km["recall_at_0_5"]) if km else (None, None),
                (km["faster_rcnn"]["mean_best_iou"], km["faster_rcnn"]["recall_at_0_5"]) if km else (None, None)]
        labels = [ANCHOR_ROWS[0], f"k-means (k = {km['k']})" if km else ANCHOR_ROWS[1], ANCHOR_ROWS[2]]
        self.anchor_table.setVerticalHeaderLabels(labels)
        for i, (iou, rec) in enumerate(rows):
            self.anchor_table.setItem(i, 0, _item(_pct(iou), True))
            self.anchor_table.setItem(i, 1, _item(_pct(rec), True))

    # -- selection ------------------------------------------------------------------------------
    def _on_selection(self, indices: np.ndarray) -> None:
        self.images.clear()
        if self.result is None or not len(indices):
            self.selection_label.setText("drag a rubber band on the scatter (or click a point) to list its images")
            return
        ids = np.asarray(self.result["points"]["image_ids"], np.int64)[indices]
        uniq, counts = np.unique(ids, return_counts=True)
        for image_id, n in zip(uniq.tolist(), counts.tolist()):
            it = QListWidgetItem(f"{self.image_names.get(image_id, f'#{image_id}')} · {n} selected")
            it.setData(Qt.ItemDataRole.UserRole, int(image_id))
            self.images.addItem(it)
        self.selection_label.setText(f"{len(indices)} boxes selected in {len(uniq)} images (click one to open it)")

    def _on_image_clicked(self, item: QListWidgetItem) -> None:
        self.image_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))
