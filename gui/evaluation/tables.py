"""Read-only tables of numbers (NaN shown as '–', numeric sorting, one call to fill) and one-line labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

DASH = "–"


def fmt(value: Any, digits: int = 3) -> str:
    """A cell's text: None / NaN -> '–', floats with ``digits`` decimals, the rest as ``str``."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else DASH
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else DASH


class NumItem(QTableWidgetItem):
    """A cell that sorts by its number (missing values last), else by text."""

    def __init__(self, value: Any, text: str | None = None) -> None:
        super().__init__(fmt(value) if text is None else text)
        self.value = value
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def _key(self) -> tuple:
        v = self.value
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (0, float(v)) if math.isfinite(float(v)) else (1, 0.0)
        return (0 if v is not None else 1, str(v))

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumItem):
            a, b = self._key(), other._key()
            if type(a[1]) is type(b[1]):
                return a < b
        return self.text() < other.text()


def make_table(headers: Sequence[str], parent: QWidget | None = None, sortable: bool = True) -> QTableWidget:
    t = QTableWidget(0, len(headers), parent)
    t.setHorizontalHeaderLabels(list(headers))
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(20)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    t.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # natural order until a header click
    t.setSortingEnabled(sortable)
    t.setAlternatingRowColors(True)
    return t


def fill_table(table: QTableWidget, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Replace the table's content (sorting is switched off while filling, as Qt requires)."""
    sorting = table.isSortingEnabled()
    table.setSortingEnabled(False)
    table.clearContents()
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, value if isinstance(value, QTableWidgetItem) else NumItem(value))
    table.setSortingEnabled(sorting)


def column_texts(table: QTableWidget, column: int) -> list[str]:
    """The texts of one column, top to bottom (tests and exports)."""
    return [table.item(r, column).text() if table.item(r, column) else "" for r in range(table.rowCount())]


class InfoLabel(QLabel):
    """One line of status text that never widens its layout: elided to the width it gets, the whole
    text in the tooltip (word-wrapped labels would give a scrolled dock a height-for-width and a scroll bar)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())
        p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        p.end()
