"""The layer tree: the trunk's named modules with output shape, stride and receptive field.

Built from an ``inspect_job`` result (``layers``, ``layer_types``, ``layer_stride``,
``layer_receptive_field`` arrays and ``meta["layer_shapes"]``). Parents are the longest dotted prefixes;
modules without a (C, h, w) output (a ``ModuleList``, a module that did not run) are shown greyed and
cannot be chosen. Choosing a row emits ``layer_chosen(name)``. A result of the same model keeps the tree
(expansion, scroll) and only refreshes the numbers.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QWidget

from gui.internals.arrays import pair_text, shape_text, tree_parents

COLUMNS = ("layer", "type", "output", "stride", "RF")
NAME_ROLE = Qt.ItemDataRole.UserRole + 1


class LayerTreeView(QTreeView):
    layer_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_ = QStandardItemModel(0, len(COLUMNS), self)
        self.model_.setHorizontalHeaderLabels(list(COLUMNS))
        self.setModel(self.model_)
        self.setUniformRowHeights(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.names: list[str] = []
        self.rows: dict[str, list[QStandardItem]] = {}
        self.chosen: str | None = None
        self.selectionModel().currentRowChanged.connect(self._on_current_changed)

    def set_layers(self, arrays: dict, shapes: list | None) -> None:
        """Fill (or refresh) the tree from a result's arrays and ``meta['layer_shapes']``."""
        names = [str(n) for n in arrays["layers"].tolist()]
        types = [str(t) for t in arrays["layer_types"].tolist()]
        strides, fields = np.asarray(arrays["layer_stride"]), np.asarray(arrays["layer_receptive_field"])
        shapes = list(shapes) if shapes is not None else [None] * len(names)
        if names != self.names:
            self._rebuild(names, types)
        for k, name in enumerate(names):
            row = self.rows[name]
            shape = shapes[k] if k < len(shapes) else None
            spatial = bool(shape) and len(shape) == 3
            row[2].setText(shape_text(shape))
            row[3].setText(pair_text(strides[k]))
            row[4].setText(pair_text(fields[k]))
            flags = Qt.ItemFlag.ItemIsEnabled | (Qt.ItemFlag.ItemIsSelectable if spatial else Qt.ItemFlag.NoItemFlags)
            for it in row:
                it.setFlags(flags)
                it.setToolTip(name if spatial else f"{name}: no (C, h, w) output to show")
        self.select(str(arrays["layer"]))

    def _rebuild(self, names: list[str], types: list[str]) -> None:
        sm = self.selectionModel()
        sm.blockSignals(True)
        self.model_.removeRows(0, self.model_.rowCount())
        self.rows.clear()
        parents = tree_parents(names)
        for name, typ, parent in zip(names, types, parents):
            label = name if parent < 0 else name[len(names[parent]) + 1:]
            row = [QStandardItem(label), QStandardItem(typ)] + [QStandardItem("") for _ in COLUMNS[2:]]
            row[0].setData(name, NAME_ROLE)
            for it in row[2:]:
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            (self.model_.invisibleRootItem() if parent < 0 else self.rows[names[parent]][0]).appendRow(row)
            self.rows[name] = row
        self.names = list(names)
        sm.blockSignals(False)
        for name, parent in zip(names, parents):  # top level and its children open
            if parent < 0:
                self.expand(self.rows[name][0].index())

    def index_of(self, name: str) -> QModelIndex:
        row = self.rows.get(name)
        return row[0].index() if row else QModelIndex()

    def select(self, name: str) -> None:
        """Make ``name`` the current row without emitting ``layer_chosen``."""
        idx = self.index_of(name)
        if not idx.isValid():
            return
        self.chosen = name
        if self.currentIndex() != idx:
            sm = self.selectionModel()
            sm.blockSignals(True)
            self.setCurrentIndex(idx)
            sm.blockSignals(False)
            self.viewport().update()
        parent = idx.parent()
        while parent.isValid():
            self.expand(parent)
            parent = parent.parent()
        self.scrollTo(idx)

    def clear_layers(self) -> None:
        sm = self.selectionModel()
        sm.blockSignals(True)
        self.model_.removeRows(0, self.model_.rowCount())
        sm.blockSignals(False)
        self.rows.clear()
        self.names = []
        self.chosen = None

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = self.model_.itemFromIndex(current.siblingAtColumn(0))
        if name is None:
            return
        n = name.data(NAME_ROLE)
        if n and n != self.chosen and name.flags() & Qt.ItemFlag.ItemIsSelectable:
            self.chosen = str(n)
            self.layer_chosen.emit(str(n))
