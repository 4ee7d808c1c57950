"""A seeded monkey: random labeling actions through REAL mouse and key events (tests and bench/bench_monkey.py).

``Monkey(canvas, ctl, next_image).run(n)`` draws, selects, moves, deletes, groups, paints, erases, undoes,
redoes, copies, pastes, nudges, tags, relabels and steps to the next image, each through the same event
path a user's hand takes (viewport event -> canvas -> tool/shortcut -> command -> store). ``snapshot(store)``
is what undo-all must give back: every annotation and tag without timestamps.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.project.store import Store
from gui.canvas.testing import click, drag, key
from gui.canvas.view import CanvasView
from gui.labeling.host import LabelingHost

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


def snapshot(store: Store) -> tuple:
    """Every annotation (id, image, category, kind, geometry, group) and every tag, no timestamps."""
    c = store.conn
    anns = c.execute("SELECT id, image_id, category_id, kind, geometry, group_id FROM annotations "
                     "ORDER BY id").fetchall()
    tags = c.execute("SELECT id, name FROM tags ORDER BY id").fetchall()
    image_tags = c.execute("SELECT image_id, tag_id FROM image_tags ORDER BY image_id, tag_id").fetchall()
    return anns, tags, image_tags


class Monkey:
    ACTIONS = ("box", "polygon", "select", "move", "delete", "group", "ungroup", "paint", "erase", "undo", "redo",
               "copy", "paste", "next", "tag", "relabel", "nudge", "duplicate", "alt_select", "band")

    def __init__(self, canvas: CanvasView, ctl: LabelingHost, next_image: Callable[[], None], seed: int = 0,
                 wait_image: Callable[[], object] | None = None) -> None:
        self.canvas, self.ctl, self.next_image = canvas, ctl, next_image
        self.rng = random.Random(seed)
        self.wait_image = wait_image
        self.counts: dict[str, int] = {}

    def _pt(self, margin: float = 4.0) -> tuple[float, float]:
        w, h = self.canvas.image_size()
        rng = self.rng
        return rng.uniform(margin, max(margin + 1, w - margin)), rng.uniform(margin, max(margin + 1, h - margin))

    def _on_shape(self) -> tuple[float, float]:
        items = [i for i in self.ctl.layer.items.values() if i.isVisible()]
        if not items:
            return self._pt()
        x1, y1, x2, y2 = self.rng.choice(items).annotation.bbox()
        return (x1 + x2) / 2, (y1 + y2) / 2

    def _tool(self, k: Qt.Key) -> None:
        key(self.canvas, k)

    def step(self) -> str:
        a = self.rng.choice(self.ACTIONS)
        self.counts[a] = self.counts.get(a, 0) + 1
        c, rng = self.canvas, self.rng
        if c.image_size()[0] <= 0:
            self.next_image()
            return "next"
        if a == "box":
            self._tool(Qt.Key.Key_R)
            x, y = self._pt(20)
            drag(c, [(x, y), (x + rng.uniform(4, 30), y + rng.uniform(4, 30))], steps=2)
        elif a == "polygon":
            self._tool(Qt.Key.Key_P)
            x, y = self._pt(25)
            for dx, dy in ((0, 0), (18, 2), (12, 17)):
                click(c, x + dx, y + dy)
            key(c, Qt.Key.Key_Return)
        elif a in ("select", "alt_select"):
            self._tool(Qt.Key.Key_V)
            click(c, *self._on_shape(), ALT if a == "alt_select" else Qt.KeyboardModifier.NoModifier)
        elif a == "band":
            self._tool(Qt.Key.Key_V)
            x, y = self._pt(30)
            drag(c, [(x - 25, y - 25), (x + 25, y + 25)], steps=2)
        elif a == "move":
            self._tool(Qt.Key.Key_V)
            x, y = self._on_shape()
            drag(c, [(x, y), (x + rng.uniform(-8, 8), y + rng.uniform(-8, 8))], steps=2)
        elif a == "delete":
            key(c, Qt.Key.Key_Delete)
        elif a == "group":
            key(c, Qt.Key.Key_G, CTRL)
        elif a == "ungroup":
            key(c, Qt.Key.Key_G, CTRL | SHIFT)
        elif a in ("paint", "erase"):
            self._tool(Qt.Key.Key_B if a == "paint" else Qt.Key.Key_E)
            x, y = self._on_shape() if a == "erase" else self._pt(15)
            drag(c, [(x, y), (x + rng.uniform(-10, 10), y + rng.uniform(-10, 10))], steps=2)
            self._tool(Qt.Key.Key_V)
        elif a == "undo":
            key(c, Qt.Key.Key_Z, CTRL)
        elif a == "redo":
            key(c, Qt.Key.Key_Y, CTRL)
        elif a == "copy":
            key(c, Qt.Key.Key_C, CTRL)
        elif a == "paste":
            key(c, Qt.Key.Key_V, CTRL)
        elif a == "duplicate":
            key(c, Qt.Key.Key_D, CTRL)
        elif a == "next":
            key(c, Qt.Key.Key_D)
            if self.wait_image is not None:
                self.wait_image()
        elif a == "tag":
            store, image = self.ctl.store, self.ctl.image_id
            tags = store.tags() if store is not None else []
            if tags and image is not None:
                box = self.ctl.tags.boxes.get(rng.choice(tags).id)  # type: ignore[attr-defined]
                if box is not None:
                    box.click()
        elif a == "relabel":
            key(c, Qt.Key(Qt.Key.Key_1 + rng.randrange(2)))
        elif a == "nudge":
            self._tool(Qt.Key.Key_V)
            key(c, rng.choice((Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down)))
        QApplication.processEvents()
        return a

    def run(self, n: int) -> dict[str, int]:
        for _ in range(n):
            self.step()
        self.ctl.tool.cancel()  # type: ignore[attr-defined]
        key(self.canvas, Qt.Key.Key_Escape)
        return dict(self.counts)
