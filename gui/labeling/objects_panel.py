"""The Objects panel: the current image's objects with their parts, in sync with the canvas selection.

One top-level row per object (shapes sharing a group id; an ungrouped shape is its own object), one child
row per part (``#id kind``). Selecting rows selects those shapes on the canvas (an object row selects all
its parts) and a canvas selection selects the rows; Del here deletes the selection like on the canvas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from gui.labeling.host import LabelingHost

IDS_ROLE = Qt.ItemDataRole.UserRole + 1


def _swatch(color: QColor) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(color)
    return QIcon(pix)


class ObjectsPanel(QWidget):
    def __init__(self, ctl: LabelingHost) -> None:
        super().__init__()
        self.ctl = ctl
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.tree.itemSelectionChanged.connect(self._on_rows_selected)
        self._quiet = False
        self._rows: dict[int, QTreeWidgetItem] = {}  # ann id -> part row
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.tree)

    def refresh(self) -> None:
        """Rebuild the rows from the canvas's items (what the store holds for the image)."""
        layer = self.ctl.layer
        store = self.ctl.store
        names = {c.id: c.name for c in store.categories()} if store is not None else {}
        self._quiet = True
        try:
            self.tree.clear()
            self._rows.clear()
            for members in layer.objects().values():
                a = members[0].annotation
                ids = [int(m.data(0)) for m in members]
                kinds = " + ".join(m.annotation.kind for m in members)
                top = QTreeWidgetItem([f"{names.get(a.category_id, a.category_id)}  ·  {kinds}"])
                top.setData(0, IDS_ROLE, ids)
                top.setIcon(0, _swatch(members[0].style.color))
                if not any(m.isVisible() for m in members):
                    top.setForeground(0, QColor(140, 140, 140))
                for m in members:
                    ann = m.annotation
                    child = QTreeWidgetItem([f"#{ann.id}  {ann.kind}"])
                    child.setData(0, IDS_ROLE, [int(ann.id)])
                    top.addChild(child)
                    self._rows[int(ann.id)] = child
                self.tree.addTopLevelItem(top)
                top.setExpanded(len(members) > 1)
        finally:
            self._quiet = False
        self.show_selection()

    def show_selection(self) -> None:
        """Select the rows of the canvas selection (an object row when all its parts are selected)."""
        selected = set(self.ctl.layer.selected_ids())
        self._quiet = True
        try:
            self.tree.clearSelection()
            for i in range(self.tree.topLevelItemCount()):
                top = self.tree.topLevelItem(i)
                ids = set(top.data(0, IDS_ROLE))
                if ids and ids <= selected:
                    top.setSelected(True)
                    self.tree.scrollToItem(top)
                for k in range(top.childCount()):
                    child = top.child(k)
                    if child.data(0, IDS_ROLE)[0] in selected and not ids <= selected:
                        child.setSelected(True)
                        top.setExpanded(True)
        finally:
            self._quiet = False

    def object_rows(self) -> list[list[int]]:
        """Annotation ids of each object row, top to bottom (tests)."""
        return [list(self.tree.topLevelItem(i).data(0, IDS_ROLE)) for i in range(self.tree.topLevelItemCount())]

    def _on_rows_selected(self) -> None:
        if self._quiet:
            return
        ids: set[int] = set()
        for item in self.tree.selectedItems():
            ids.update(int(i) for i in item.data(0, IDS_ROLE))
        self.ctl.layer.select(sorted(ids))
