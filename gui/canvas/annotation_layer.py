"""The annotation items of the image on the canvas, rebuilt from the store."""

from __future__ import annotations

from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from engine.project.shapes import Annotation
from engine.project.store import Category
from gui.canvas.items import color_of, make_item


class AnnotationLayer:
    """Owns one display item per annotation of the current image; ``items[ann_id]``."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: dict[int, QGraphicsItem] = {}
        self.visible = True

    def clear(self) -> None:
        for item in self.items.values():
            self.scene.removeItem(item)
        self.items.clear()

    def show(self, anns: list[Annotation], categories: list[Category]) -> None:
        self.clear()
        colors = {c.id: color_of(c.color) for c in categories}
        for a in anns:
            item = make_item(a, colors.get(a.category_id, color_of("#ffff00")))
            item.setVisible(self.visible)
            self.scene.addItem(item)
            self.items[int(a.id)] = item

    def set_visible(self, on: bool) -> None:
        self.visible = on
        for item in self.items.values():
            item.setVisible(on)
