"""The error browser: every prediction as TP / FP (cause) and every missed object as FN, in one table.

Rows are ``engine.eval.errors.ErrorRecord``s; filtering and sorting use the engine's
``filter_errors`` / ``sort_errors`` (score or IoU, descending or ascending; records without a score go
last). Selecting a row (mouse or arrow keys) emits ``record_activated(record)``: the feature opens the
image on the canvas and overlays the ground truth and the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.eval.errors import FN_CAUSES, FP_CAUSES, KINDS, ErrorRecord, filter_errors, sort_errors
from gui.evaluation.tables import fmt

COLUMNS = ("image", "kind", "cause", "class", "GT class", "score", "IoU")
SCORE_COL, IOU_COL = 5, 6
KIND_COLORS = {"TP": QColor("#2e9e44"), "FP": QColor("#d9342b"), "FN": QColor("#e08a00")}
Index = QModelIndex | QPersistentModelIndex


class ErrorTableModel(QAbstractTableModel):
    """The filtered, sorted records; ``records()`` is what the table shows, top to bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._all: list[ErrorRecord] = []
        self._shown: list[ErrorRecord] = []
        self._names: list[str] = []
        self._images: dict[int, str] = {}
        self.filters: dict[str, object] = {"kind": None, "cause": None, "label": None}
        self.sort_key: tuple[int, Qt.SortOrder] = (SCORE_COL, Qt.SortOrder.DescendingOrder)

    # -- data ------------------------------------------------------------------------------------------
    def set_records(self, records: Sequence[ErrorRecord], names: Sequence[str],
                    images: dict[int, str] | None = None) -> None:
        """``names``: K class names (label k -> names[k - 1]); ``images``: image id -> file name to show."""
        self._all, self._names, self._images = list(records), [str(n) for n in names], dict(images or {})
        self._apply()

    def image_name(self, image_id: int) -> str:
        return self._images.get(image_id, str(image_id))

    def set_filter(self, kind: str | None = None, cause: str | None = None, label: int | None = None) -> None:
        self.filters = {"kind": kind, "cause": cause, "label": label}
        self._apply()

    def total(self) -> int:
        return len(self._all)

    def records(self) -> list[ErrorRecord]:
        return list(self._shown)

    def record(self, row: int) -> ErrorRecord:
        return self._shown[row]

    def name(self, label: int | None) -> str:
        if label is None:
            return ""
        return self._names[label - 1] if 1 <= label <= len(self._names) else str(label)

    def _apply(self) -> None:
        self.beginResetModel()
        shown = filter_errors(self._all, **self.filters)  # type: ignore[arg-type]
        col, order = self.sort_key
        desc = order == Qt.SortOrder.DescendingOrder
        if col in (SCORE_COL, IOU_COL):
            shown = sort_errors(shown, "score" if col == SCORE_COL else "iou", descending=desc)
        else:
            shown = sorted(shown, key=lambda r: self._sort_text(r, col), reverse=desc)
        self._shown = shown
        self.endResetModel()

    def _sort_text(self, r: ErrorRecord, col: int) -> tuple:
        return (self.image_name(r.image_id), r.image_id) if col == 0 else (str(self._cell(r, col)),)

    # -- Qt model ----------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._shown)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def _cell(self, r: ErrorRecord, col: int) -> object:
        return (self.image_name(r.image_id), r.kind, (r.cause or "").replace("_", " "), self.name(r.label),
                self.name(r.gt_label), r.score, r.iou)[col]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        r = self._shown[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            v = self._cell(r, col)
            return fmt(v) if col in (SCORE_COL, IOU_COL) else str(v)
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return KIND_COLORS.get(r.kind)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (SCORE_COL, IOU_COL):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _describe(r, self)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sort_key = (column, order)
        self._apply()


def _describe(r: ErrorRecord, model: ErrorTableModel) -> str:
    what = {"TP": "true positive", "FP": "false positive", "FN": "missed object (false negative)"}[r.kind]
    text = f"{what} on {model.image_name(r.image_id)} (image {r.image_id}): {model.name(r.label)}"
    if r.cause:
        text += f" · cause: {r.cause.replace('_', ' ')}"
    if r.score is not None:
        text += f" · score {r.score:.3f}"
    return text + f" · IoU {r.iou:.3f}"


class ErrorBrowser(QWidget):
    record_activated = Signal(object)  # ErrorRecord
    overlay_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ErrorTableModel(self)
        self.kind_combo = QComboBox(self)
        self.kind_combo.addItem("All kinds", None)
        for k in KINDS:
            self.kind_combo.addItem(k, k)
        self.cause_combo = QComboBox(self)
        self.class_combo = QComboBox(self)
        self.class_combo.addItem("All classes", None)
        self.count = QLabel(self)
        self.overlay_check = QCheckBox("Show on canvas", self)
        self.overlay_check.setChecked(True)
        self.overlay_check.setToolTip("Overlay the selected row's ground truth and prediction on the image")
        self.overlay_check.toggled.connect(self.overlay_toggled)
        self._fill_causes()
        for combo in (self.kind_combo, self.cause_combo, self.class_combo):
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.kind_combo.currentIndexChanged.connect(self._fill_causes)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(SCORE_COL, Qt.SortOrder.DescendingOrder)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table.clicked.connect(self._on_clicked)
        self.table.viewport().installEventFilter(self)
        self._last: ErrorRecord | None = None
        self._before_press: ErrorRecord | None = None
        row = QHBoxLayout()
        for w in (QLabel("Show:", self), self.kind_combo, QLabel("cause", self), self.cause_combo,
                  QLabel("class", self), self.class_combo):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.count)
        row.addWidget(self.overlay_check)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row)
        lay.addWidget(self.table, 1)
        self._update_count()

    def set_records(self, records: Sequence[ErrorRecord], names: Sequence[str],
                    images: dict[int, str] | None = None) -> None:
        keep = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        for i, n in enumerate(names):
            self.class_combo.addItem(str(n), i + 1)
        self.class_combo.setCurrentIndex(max(0, self.class_combo.findText(keep)))
        self.class_combo.blockSignals(False)
        self._last = None
        self.model.set_records(records, names, images)
        self._on_filter_changed()

    def _fill_causes(self) -> None:
        kind = self.kind_combo.currentData()
        causes = FP_CAUSES if kind == "FP" else FN_CAUSES if kind == "FN" else () if kind == "TP" else \
            tuple(dict.fromkeys((*FP_CAUSES, *FN_CAUSES)))
        keep = self.cause_combo.currentData()
        self.cause_combo.blockSignals(True)
        self.cause_combo.clear()
        self.cause_combo.addItem("All causes", None)
        for c in causes:
            self.cause_combo.addItem(c.replace("_", " "), c)
        self.cause_combo.setCurrentIndex(max(0, self.cause_combo.findData(keep)))
        self.cause_combo.setEnabled(bool(causes))
        self.cause_combo.blockSignals(False)

    def _on_filter_changed(self, _index: int = 0) -> None:
        self.model.set_filter(self.kind_combo.currentData(), self.cause_combo.currentData(),
                              self.class_combo.currentData())
        self._update_count()

    def _update_count(self) -> None:
        self.count.setText(f"{self.model.rowCount()} of {self.model.total()} rows")

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._activate(self.model.record(current.row()))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.MouseButtonPress:
            self._before_press = self._last  # which row was current before this click
        return False

    def _on_clicked(self, index: QModelIndex) -> None:
        """A click on the row that was already current opens it again (e.g. after browsing other images)."""
        if index.isValid():
            rec = self.model.record(index.row())
            if rec is self._before_press:
                self.record_activated.emit(rec)

    def _activate(self, rec: ErrorRecord) -> None:
        self._last = rec
        self.record_activated.emit(rec)
