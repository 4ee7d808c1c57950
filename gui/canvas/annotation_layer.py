"""The annotation items of the image on the canvas, rebuilt from the store.

``show`` rebuilds everything (new image); ``sync`` replaces only the items of annotations a
command touched, so an edit on an image with thousands of shapes costs a few items, not all.
Selection lives in the scene (``ItemIsSelectable``); helpers here read and set it by annotation id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsScene

from engine.project.shapes import Annotation
from engine.project.store import Category
from gui.canvas.items import AnnotationItem, color_of, make_item


class AnnotationLayer:
    """Owns one display item per annotation of the current image; ``items[ann_id]``."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: dict[int, AnnotationItem] = {}
        self.visible = True
        self.in_batch = False  # True while many selection changes happen at once
        self._looks_selected: set[int] = set()  # ids whose item wears the selected pen/brush
        self._colors: dict[int, QColor] = {}

    def clear(self) -> None:
        for item in self.items.values():
            self.scene.removeItem(item)
        self.items.clear()
        self._looks_selected.clear()

    def show(self, anns: list[Annotation], categories: list[Category]) -> None:
        self.clear()
        self.set_categories(categories)
        for a in anns:
            self._add(a)

    def set_categories(self, categories: list[Category]) -> None:
        """Colours for items made from now on."""
        self._colors = {c.id: color_of(c.color) for c in categories}

    def _color(self, a: Annotation) -> QColor:
        return self._colors.get(a.category_id, color_of("#ffff00"))

    def _add(self, a: Annotation) -> AnnotationItem:
        item = make_item(a, self._color(a))
        item.setVisible(self.visible)
        self.scene.addItem(item)
        self.items[int(a.id)] = item
        return item

    def sync(self, changed: dict[int, Annotation | None]) -> None:
        """Replace the items of ``changed`` (ann id -> its stored annotation, None if gone); keeps selection."""
        with self.batch():
            for ann_id, ann in changed.items():
                old = self.items.get(ann_id)
                if old is not None and ann is not None and old.update_from(ann, self._color(ann)):
                    continue  # same kind: updated in place, selection and look kept
                self.items.pop(ann_id, None)
                selected = old is not None and old.isSelected()
                if old is not None:
                    self.scene.removeItem(old)
                self._looks_selected.discard(ann_id)
                if ann is not None:
                    self._add(ann).setSelected(selected)

    def set_visible(self, on: bool) -> None:
        self.visible = on
        for item in self.items.values():
            item.setVisible(on)

    # -- hit testing and selection -------------------------------------------------------------
    def items_at(self, pos: QPointF) -> list[AnnotationItem]:
        """Annotation items whose shape contains ``pos`` (scene = image pixels), topmost first."""
        out = []
        for item in self.scene.items(pos, Qt.ItemSelectionMode.IntersectsItemShape, Qt.SortOrder.DescendingOrder):
            ann_id = item.data(0)
            if ann_id is not None and self.items.get(int(ann_id)) is item and item.isVisible():
                out.append(item)
        return out

    def item_at(self, pos: QPointF) -> AnnotationItem | None:
        """The topmost annotation item at ``pos``."""
        found = self.items_at(pos)
        return found[0] if found else None

    def items_in(self, rect: QRectF) -> list[AnnotationItem]:
        """Annotation items whose shape intersects ``rect`` (scene = image pixels)."""
        out = []
        for item in self.scene.items(rect, Qt.ItemSelectionMode.IntersectsItemShape):
            ann_id = item.data(0)
            if ann_id is not None and self.items.get(int(ann_id)) is item and item.isVisible():
                out.append(item)
        return out

    def selected_items(self) -> list[AnnotationItem]:
        """Selected annotation items, in annotation id order."""
        out = []
        for item in self.scene.selectedItems():
            ann_id = item.data(0)
            if ann_id is not None and self.items.get(int(ann_id)) is item:
                out.append(item)
        return sorted(out, key=lambda i: int(i.data(0)))

    def selected_ids(self) -> list[int]:
        return [int(i.data(0)) for i in self.selected_items()]

    def update_selected_look(self) -> None:
        """Give newly (de)selected items their pen/brush: once per selection change, never per frame."""
        now = set(self.selected_ids())
        for ann_id in now ^ self._looks_selected:
            item = self.items.get(ann_id)
            if item is not None:
                item.set_selected_look(ann_id in now)
        self._looks_selected = now

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many selection changes; listeners skip ``selectionChanged`` while ``in_batch``."""
        outer = self.in_batch
        self.in_batch = True
        try:
            yield
        finally:
            self.in_batch = outer
        if not outer:
            self.scene.selectionChanged.emit()

    def select(self, ann_ids: Iterable[int], add: bool = False) -> None:
        """Select these annotations (and, unless ``add``, only them); touches only items that change."""
        wanted = {int(i) for i in ann_ids}
        with self.batch():
            if not add:
                for item in self.selected_items():
                    if int(item.data(0)) not in wanted:
                        item.setSelected(False)
            for ann_id in wanted:
                item = self.items.get(ann_id)
                if item is not None and not item.isSelected():
                    item.setSelected(True)

    def clear_selection(self) -> None:
        self.select([])
