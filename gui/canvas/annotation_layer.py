"""The annotation items of the image on the canvas, rebuilt from the store.

``show`` rebuilds everything (new image); ``sync`` replaces only the items of annotations a
command touched, so an edit on an image with thousands of shapes costs a few items, not all.
Selection lives in the scene (``ItemIsSelectable``); helpers here read and set it by annotation id.

Objects: annotations sharing a ``group_id`` are one object (``object_ids``). Visibility: everything
(``set_visible``) and per category (``set_category_visible``); a hidden item can be neither hit nor
selected. Names: one small text item per object at its top-left corner (``set_names_visible``), in
screen-size letters; rebuilt only for objects an edit touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem

from engine.project.shapes import Annotation
from engine.project.store import Category
from gui.canvas.items import AnnotationItem, color_of, make_item
from gui.canvas.view import Z_OVERLAYS

ObjectKey = tuple[str, int]  # ("g", group id) or ("a", annotation id)


def object_key(a: Annotation) -> ObjectKey:
    return ("g", int(a.group_id)) if a.group_id is not None else ("a", int(a.id or 0))


class NameLabel(QGraphicsRectItem):
    """A category name in screen-size letters on a tab of the category's colour (readable on any image)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(Z_OVERLAYS - 1)
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.label = QGraphicsSimpleTextItem(self)
        font = QFont()
        font.setPointSize(8)
        self.label.setFont(font)
        self.label.setBrush(QColor(255, 255, 255))
        self._key: tuple[str, int] = ("", 0)

    def set(self, text: str, color: QColor) -> None:
        if self._key == (text, color.rgba()):
            return
        self._key = (text, color.rgba())
        self.label.setText(text)
        fill = QColor(color.darker(150))
        fill.setAlpha(150)
        self.setBrush(QBrush(fill))
        r = self.label.boundingRect()
        self.label.setPos(3, 0)
        self.setRect(0, -r.height(), r.width() + 6, r.height())
        self.label.setPos(3, -r.height())

    def text(self) -> str:
        return self.label.text()


class AnnotationLayer:
    """Owns one display item per annotation of the current image; ``items[ann_id]``."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: dict[int, AnnotationItem] = {}
        self.visible = True
        self.in_batch = False  # True while many selection changes happen at once
        self._looks_selected: set[int] = set()  # ids whose item wears the selected pen/brush
        self._colors: dict[int, QColor] = {}
        self._names: dict[int, str] = {}
        self.hidden_categories: set[int] = set()
        self.names_visible = False  # the labeling feature turns names on
        self._labels: dict[ObjectKey, NameLabel] = {}

    def clear(self) -> None:
        for item in self.items.values():
            self.scene.removeItem(item)
        self.items.clear()
        self._looks_selected.clear()
        for label in self._labels.values():
            self.scene.removeItem(label)
        self._labels.clear()

    def show(self, anns: list[Annotation], categories: list[Category]) -> None:
        self.clear()
        self.set_categories(categories)
        for a in anns:
            self._add(a)
        self._update_labels(None)

    def set_categories(self, categories: list[Category]) -> None:
        """Colours (and names) for items made from now on."""
        self._colors = {c.id: color_of(c.color) for c in categories}
        self._names = {c.id: c.name for c in categories}

    # -- objects --------------------------------------------------------------------------------
    def object_ids(self, ann_id: int) -> list[int]:
        """Ids of the annotations of ``ann_id``'s object (itself, plus those sharing its group id)."""
        item = self.items.get(int(ann_id))
        if item is None:
            return []
        g = item.annotation.group_id
        if g is None:
            return [int(ann_id)]
        return sorted(k for k, it in self.items.items() if it.annotation.group_id == g)

    def objects(self) -> dict[ObjectKey, list[AnnotationItem]]:
        """Items grouped into objects, in order of first annotation id."""
        out: dict[ObjectKey, list[AnnotationItem]] = {}
        for k in sorted(self.items):
            it = self.items[k]
            out.setdefault(object_key(it.annotation), []).append(it)
        return out

    # -- visibility -----------------------------------------------------------------------------
    def _shown(self, a: Annotation) -> bool:
        return self.visible and a.category_id not in self.hidden_categories

    def _apply_visibility(self) -> None:
        with self.batch():
            for item in self.items.values():
                on = self._shown(item.annotation)
                if not on and item.isSelected():
                    item.setSelected(False)
                item.setVisible(on)
        self._update_labels(None)

    def set_category_visible(self, category_id: int, on: bool) -> None:
        (self.hidden_categories.discard if on else self.hidden_categories.add)(int(category_id))
        self._apply_visibility()

    def set_names_visible(self, on: bool) -> None:
        self.names_visible = on
        self._update_labels(None)

    def _update_labels(self, keys: set[ObjectKey] | None) -> None:
        """Re-place the name labels of ``keys`` (None: every object)."""
        objects = self.objects()
        if keys is None:
            keys = set(objects) | set(self._labels)
        for key in keys:
            members = [m for m in objects.get(key, []) if m.isVisible()]
            label = self._labels.get(key)
            if not members or not self.names_visible:
                if label is not None:
                    self.scene.removeItem(label)
                    del self._labels[key]
                continue
            a = members[0].annotation
            boxes = [m.annotation.bbox() for m in members]
            x = min(float(b[0]) for b in boxes)
            y = min(float(b[1]) for b in boxes)
            if label is None:
                label = NameLabel()
                self.scene.addItem(label)
                self._labels[key] = label
            label.set(self._names.get(a.category_id, str(a.category_id)), self._color(a))
            label.setPos(x, y)

    def label_texts(self) -> dict[ObjectKey, str]:
        """Names drawn on the canvas, per object (tests)."""
        return {k: v.text() for k, v in self._labels.items()}

    def _color(self, a: Annotation) -> QColor:
        return self._colors.get(a.category_id, color_of("#ffff00"))

    def _add(self, a: Annotation) -> AnnotationItem:
        item = make_item(a, self._color(a))
        item.setVisible(self._shown(a))
        self.scene.addItem(item)
        self.items[int(a.id)] = item
        return item

    def sync(self, changed: dict[int, Annotation | None]) -> None:
        """Replace the items of ``changed`` (ann id -> its stored annotation, None if gone); keeps selection."""
        keys: set[ObjectKey] = set()
        with self.batch():
            for ann_id, ann in changed.items():
                old = self.items.get(ann_id)
                if old is not None:
                    keys.add(object_key(old.annotation))
                if ann is not None:
                    keys.add(object_key(ann))
                if old is not None and ann is not None and old.update_from(ann, self._color(ann)):
                    old.setVisible(self._shown(ann))
                    continue  # same kind: updated in place, selection and look kept
                self.items.pop(ann_id, None)
                selected = old is not None and old.isSelected()
                if old is not None:
                    self.scene.removeItem(old)
                self._looks_selected.discard(ann_id)
                if ann is not None:
                    self._add(ann).setSelected(selected and self._shown(ann))
        self._update_labels(keys)

    def set_visible(self, on: bool) -> None:
        self.visible = on
        self._apply_visibility()

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
