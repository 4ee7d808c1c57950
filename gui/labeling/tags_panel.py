"""The Tags panel: image-level tags of the current image as checkboxes (multi-label).

Each toggle is one undoable ``ToggleTag`` command; the boxes are re-read from the store after
every change, so a refused write un-ticks the box again. A new tag name is added to the project's
tag list (vocabulary, not an edit of any image) and ticked on the current image as a command.
Right-click a tag to rename it or delete it from the project (both undoable; delete asks first).
``set_scores(image_id, {tag_id: (score, threshold)})`` shows a tagger's scores next to the tags (bold at or
above the threshold); they stay until the next call for another image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.project.store import StoreError
from gui.labeling.commands import DeleteTag, RenameTag, ToggleTag

if TYPE_CHECKING:
    from gui.labeling.host import LabelingHost


class TagsPanel(QWidget):
    def __init__(self, ctl: LabelingHost) -> None:
        super().__init__()
        self.ctl = ctl
        self.boxes: dict[int, QCheckBox] = {}
        self.names: dict[int, str] = {}
        self.scores: dict[int, tuple[float, float]] = {}
        self._scores_image: int | None = None
        self._inner = QWidget()
        self._rows = QVBoxLayout(self._inner)
        self._rows.setContentsMargins(4, 4, 4, 4)
        self._rows.addStretch(1)
        self.scroll = scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._inner)
        self.new_tag = QLineEdit(self)
        self.new_tag.setPlaceholderText("New tag, Enter to add")
        self.new_tag.returnPressed.connect(self._on_new_tag)
        self.empty = QLabel("No image", self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.empty)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.new_tag)

    def refresh(self) -> None:
        """Rebuild the boxes: every project tag, ticked if the current image has it."""
        store, image_id = self.ctl.store, self.ctl.image_id
        tags = store.tags() if store else []
        on = store.image_tags(image_id) if store and image_id is not None else set()
        if [t.id for t in tags] != list(self.boxes) or any(self.names[t.id] != t.name for t in tags):
            for box in self.boxes.values():
                box.deleteLater()
                self._rows.removeWidget(box)
            self.boxes.clear()
            self.names = {t.id: t.name for t in tags}
            for t in tags:
                box = QCheckBox(t.name, self._inner)
                box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                box.clicked.connect(lambda checked, tag_id=t.id: self.toggle(tag_id, bool(checked)))
                box.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
                box.customContextMenuRequested.connect(lambda p, tag_id=t.id: self._on_menu(tag_id, p))
                self._rows.insertWidget(self._rows.count() - 1, box)
                self.boxes[t.id] = box
        for tag_id, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(tag_id in on)
            box.setEnabled(image_id is not None)
            box.blockSignals(False)
        self.empty.setVisible(image_id is None)
        self._show_scores()

    def set_scores(self, image_id: int | None, scores: dict[int, tuple[float, float]]) -> None:
        """A tagger's (score, threshold) per tag id for ``image_id``, shown next to the tag names."""
        self._scores_image, self.scores = image_id, dict(scores)
        self._show_scores()

    def _show_scores(self) -> None:
        scores = self.scores if self._scores_image is not None and self._scores_image == self.ctl.image_id else {}
        for tag_id, box in self.boxes.items():
            name = self.names.get(tag_id, "")
            s = scores.get(tag_id)
            box.setText(f"{name}    {s[0]:.2f}" if s else name)
            box.setToolTip(f"tagger score {s[0]:.3f}, threshold {s[1]:.3f}" if s else "")
            font = box.font()
            font.setBold(bool(s and s[0] >= s[1]))
            box.setFont(font)

    def toggle(self, tag_id: int, on: bool) -> bool:
        image_id = self.ctl.image_id
        if image_id is None:
            return False
        ok = self.ctl.execute(lambda: ToggleTag(self.ctl.runner, image_id, tag_id, on, self.names.get(tag_id, "")))
        self.refresh()
        return ok is not None

    def add_tag(self, name: str) -> bool:
        """Add ``name`` to the project's tags and tick it on the current image."""
        name = name.strip()
        store = self.ctl.store
        if not name or store is None:
            return False
        try:
            tag = store.add_tag(name)
        except StoreError as e:
            self.ctl.show_error(f"Tag {name!r} was not saved: {e}")
            return False
        self.refresh()
        return self.toggle(tag.id, True)

    def _on_new_tag(self) -> None:
        if self.add_tag(self.new_tag.text()):
            self.new_tag.clear()

    # -- rename / delete ------------------------------------------------------------------------
    def _on_menu(self, tag_id: int, pos: QPoint) -> None:
        box = self.boxes.get(tag_id)
        if box is None:
            return
        self.menu = menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_tag(tag_id))
        menu.addAction("Delete from project…", lambda: self.delete_tag(tag_id))
        menu.popup(box.mapToGlobal(pos))

    def rename_tag(self, tag_id: int, name: str | None = None) -> bool:
        if name is None:
            name, ok = QInputDialog.getText(self, "Rename tag", "New name:", text=self.names.get(tag_id, ""))
            if not ok:
                return False
        return self.ctl.execute(lambda: RenameTag(self.ctl.runner, tag_id, name)) is not None

    def delete_tag(self, tag_id: int, confirm: bool = True) -> bool:
        """Delete the tag from the project and every image (asks first, naming how many images have it)."""
        store = self.ctl.store
        if store is None:
            return False
        name = self.names.get(tag_id, "")
        if confirm:
            n = sum(1 for tags in store.all_image_tags().values() if tag_id in tags)
            text = (f"Delete tag '{name}' from the project and from the {n} image{'s' if n != 1 else ''} "
                    "that have it?\n\nYou can undo this (Ctrl+Z).")
            answer = QMessageBox.question(self, "Delete tag", text)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        return self.ctl.execute(lambda: DeleteTag(self.ctl.runner, tag_id, name)) is not None
