"""Child process of test_durability: edits a project through the real GUI, reports the canvas, waits to be killed.

Usage: python durability_child.py PROJECT. Prints one JSON line (what the canvas and panels show after the
edits), then "ready", then sleeps without ever closing the window or the store.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.canvas.items import BoxItem  # noqa: E402
from gui.canvas.testing import click, drag, key  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def main(project: str) -> None:
    app = QApplication.instance() or QApplication([])
    w = MainWindow(project)
    w.resize(1100, 760)
    w.show()
    for _ in range(5):
        app.processEvents()
    w.activateWindow()
    c = w.canvas
    c.setFocus()
    demo_box = next(i for i in w.annotations.items.values() if isinstance(i, BoxItem))
    x1, y1, x2, y2 = demo_box.annotation.geometry.xyxy
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2

    key(c, Qt.Key.Key_V)
    drag(c, [(cx, cy), (cx + 7, cy + 5)])  # move a demo box
    cats = w.store.categories()
    other = next(i for i, cat in enumerate(cats) if cat.id != demo_box.annotation.category_id)
    key(c, Qt.Key(Qt.Key.Key_1 + other))  # relabel it (and its mask) with another category
    key(c, Qt.Key.Key_R)
    drag(c, [(3, 3), (21, 15)])  # a new box with that category
    key(c, Qt.Key(Qt.Key.Key_1 + (other + 1) % len(cats)))  # relabel the new box
    key(c, Qt.Key.Key_P)
    for p in [(30, 4), (52, 6), (41, 27)]:
        click(c, *p)
    key(c, Qt.Key.Key_Return)
    key(c, Qt.Key.Key_B)
    drag(c, [(8, 40), (40, 44)])  # a new mask
    tags = w.labeling.tags
    tag_box = tags.boxes[max(tags.boxes)]
    w.labeling.ui.tags_dock.raise_()
    app.processEvents()
    tags.scroll.ensureWidgetVisible(tag_box)
    QTest.mouseClick(tag_box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(8, 9))
    w.labeling.labels.add_category("late")
    key(c, Qt.Key.Key_W)
    drag(c, [(60, 60), (75, 70)])  # the very last edit, a box of the new category

    shown = {
        "image_id": w.image_id,
        "annotations": sorted([int(k), i.annotation.kind, json.dumps(i.annotation.geometry.to_json()),
                               i.annotation.category_id] for k, i in w.annotations.items.items()),
        "tags": sorted(t for t, b in tags.boxes.items() if b.isChecked()),
        "tag_name": tag_box.text(),
        "tag_step": f"{'Tag' if tag_box.isChecked() else 'Untag'} {tag_box.text()}",
        "categories": [[int(i.data(Qt.ItemDataRole.UserRole + 1)), i.text()] for i in
                       (w.labeling.labels.list.item(r) for r in range(w.labeling.labels.list.count()))],
        "undo_steps": [w.labeling.stack.text(i) for i in range(w.labeling.stack.count())],
    }
    print(json.dumps(shown), flush=True)
    print("ready", flush=True)
    time.sleep(120)  # never returns to the event loop, never closes: the parent kills us


if __name__ == "__main__":
    main(sys.argv[1])
