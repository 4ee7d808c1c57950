"""The Labels panel: categories with their colour, key (1-9) and number of annotations.

Each row's checkbox shows or hides that category's shapes on the canvas (display only, not an edit).

Add, rename, recolor, merge and delete each run one undoable command; delete first asks, naming
how many annotations go with the category. The current row is the category new shapes get.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QGridLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.project.store import Category
from gui.labeling.category_commands import AddCategory, DeleteCategory, MergeCategories, UpdateCategory

if TYPE_CHECKING:
    from gui.labeling.host import LabelingHost

CATEGORY_ROLE = Qt.ItemDataRole.UserRole + 1


def _swatch(color: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(color))
    return QIcon(pix)


class LabelsPanel(QWidget):
    def __init__(self, ctl: LabelingHost) -> None:
        super().__init__()
        self.ctl = ctl
        self.list = QListWidget(self)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.cats: list[Category] = []
        self._refreshing = False
        buttons = QGridLayout()
        buttons.setSpacing(2)
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, slot, tip) in enumerate((
                ("Add", self.add_category, "Add a category"),
                ("Rename", self.rename_current, "Rename the current category"),
                ("Color", self.recolor_current, "Change the current category's colour"),
                ("Merge", self.merge_current, "Move all annotations of the current category to another one"),
                ("Delete", self.delete_current, "Delete the current category and its annotations (asks first)"))):
            b = QPushButton(name, self)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(b, i // 3, i % 3)
            self.buttons[name] = b
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list)
        lay.addLayout(buttons)

    # -- view -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        store = self.ctl.store
        self.cats = store.categories() if store else []
        self._refreshing = True
        try:
            self.list.clear()
            hidden = self.ctl.layer.hidden_categories
            for cat in self.cats:
                item = QListWidgetItem(_swatch(cat.color), "")
                item.setData(CATEGORY_ROLE, cat.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if cat.id in hidden else Qt.CheckState.Checked)
                item.setToolTip("Tick: shapes of this category are shown on the canvas")
                self.list.addItem(item)
            self.refresh_counts()
            ids = [c.id for c in self.cats]
            if self.ctl.category_id not in ids:
                self.ctl.category_id = ids[0] if ids else None
            self.show_current(self.ctl.category_id)
        finally:
            self._refreshing = False

    def refresh_counts(self) -> None:
        store = self.ctl.store
        if store is None:
            return
        was, self._refreshing = self._refreshing, True
        try:
            for row, cat in enumerate(self.cats):
                key = f"{row + 1}  " if row < 9 else "   "
                self.list.item(row).setText(f"{key}{cat.name}  ({store.category_usage(cat.id)})")
        finally:
            self._refreshing = was

    def show_current(self, category_id: int | None) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(CATEGORY_ROLE) == category_id:
                self._refreshing, was = True, self._refreshing
                self.list.setCurrentRow(row)
                self._refreshing = was
                return

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(CATEGORY_ROLE))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._refreshing:
            return
        on = item.checkState() == Qt.CheckState.Checked
        cid = int(item.data(CATEGORY_ROLE))
        if on == (cid in self.ctl.layer.hidden_categories):
            self.ctl.set_category_visible(cid, on)

    def set_visible(self, category_id: int, on: bool) -> None:
        """Tick or untick a category's row (as a click on its checkbox does)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(CATEGORY_ROLE) == category_id:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _on_current_changed(self, current: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if current is not None and not self._refreshing:
            self.ctl.set_category(int(current.data(CATEGORY_ROLE)))

    def _name(self, category_id: int) -> str:
        return next((c.name for c in self.cats if c.id == category_id), str(category_id))

    # -- edits (arguments given: no dialog; tests and scripts use that) --------------------------
    def add_category(self, name: str | None = None, color: str | None = None) -> bool:
        if name is None:
            name, ok = QInputDialog.getText(self, "Add category", "Name:")
            if not ok:
                return False
        runner = self.ctl.runner
        cmd = self.ctl.execute(lambda: AddCategory(runner, name, color))
        if isinstance(cmd, AddCategory) and cmd.cat is not None:
            self.ctl.set_category(cmd.cat.id)
        return cmd is not None

    def rename_current(self, name: str | None = None) -> bool:
        cid = self.current_id()
        if cid is None:
            return False
        if name is None:
            name, ok = QInputDialog.getText(self, "Rename category", "New name:", text=self._name(cid))
            if not ok:
                return False
        return self.ctl.execute(lambda: UpdateCategory(self.ctl.runner, cid, name=name)) is not None

    def recolor_current(self, color: str | None = None) -> bool:
        cid = self.current_id()
        if cid is None:
            return False
        if color is None:
            old = next((c.color for c in self.cats if c.id == cid), "#ffffff")
            picked = QColorDialog.getColor(QColor(old), self, "Category colour")
            if not picked.isValid():
                return False
            color = picked.name()
        return self.ctl.execute(lambda: UpdateCategory(self.ctl.runner, cid, color=color)) is not None

    def merge_current(self, target_id: int | None = None) -> bool:
        """Merge the current category INTO ``target_id`` (asked if None)."""
        cid = self.current_id()
        if cid is None:
            return False
        if target_id is None:
            others = [c for c in self.cats if c.id != cid]
            if not others:
                return False
            names = [c.name for c in others]
            name, ok = QInputDialog.getItem(self, "Merge category",
                                            f"Move every '{self._name(cid)}' annotation to:", names, 0, False)
            if not ok:
                return False
            target_id = others[names.index(name)].id
        return self.ctl.execute(lambda: MergeCategories(self.ctl.runner, cid, target_id)) is not None

    def delete_current(self, confirm: bool = True) -> bool:
        """Delete the current category and its annotations, after asking (with how many) if ``confirm``."""
        cid = self.current_id()
        store = self.ctl.store
        if cid is None or store is None:
            return False
        n = store.category_usage(cid)
        if confirm:
            answer = QMessageBox.question(
                self, "Delete category",
                f"Delete category '{self._name(cid)}' and the {n} annotation{'s' if n != 1 else ''} "
                "labeled with it?\n\nYou can undo this (Ctrl+Z).")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        return self.ctl.execute(lambda: DeleteCategory(self.ctl.runner, cid)) is not None
