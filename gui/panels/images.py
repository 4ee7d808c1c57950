"""The image list: a flat Qt model over the project's images, fast at 100k rows.

Rows are plain tuples kept in Python lists; ``data`` does no I/O, so scrolling never touches
disk or SQLite. The view uses uniform item sizes so Qt never measures every row.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import QListView, QVBoxLayout, QWidget

from engine.project.store import Store

IMAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class ImageRow:
    id: int
    name: str
    split: str
    count: int
    width: int
    height: int


class ImageListModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ImageRow] = []
        self._row_of: dict[int, int] = {}

    def load(self, store: Store) -> None:
        counts = store.annotation_counts()
        self.beginResetModel()
        self.rows = [ImageRow(im.id, im.path.rsplit("/", 1)[-1], im.split, counts.get(im.id, 0), im.width, im.height)
                     for im in store.images()]
        self._row_of = {r.id: i for i, r in enumerate(self.rows)}
        self.endResetModel()

    def set_count(self, image_id: int, count: int) -> None:
        i = self._row_of.get(image_id)
        if i is None:
            return
        r = self.rows[i]
        self.rows[i] = ImageRow(r.id, r.name, r.split, count, r.width, r.height)
        idx = self.index(i)
        self.dataChanged.emit(idx, idx)

    def row_of(self, image_id: int) -> int:
        return self._row_of.get(image_id, -1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{r.name}  ·  {r.count}" if r.count else r.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{r.name}\n{r.width}×{r.height} px · split {r.split} · {r.count} annotations"
        if role == IMAGE_ID_ROLE:
            return r.id
        return None


class ImageListPanel(QWidget):
    """List of images; emits ``image_selected(image_id)``."""

    image_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ImageListModel(self)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)

    def load(self, store: Store) -> None:
        self.model.load(store)

    def current_image(self) -> int | None:
        idx = self.view.currentIndex()
        return int(self.model.data(idx, IMAGE_ID_ROLE)) if idx.isValid() else None

    def select_image(self, image_id: int) -> None:
        row = self.model.row_of(image_id)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def step(self, delta: int) -> None:
        """Move the selection by ``delta`` rows (A/D)."""
        n = self.model.rowCount()
        if not n:
            return
        cur = self.view.currentIndex().row()
        row = min(n - 1, max(0, (cur if cur >= 0 else -delta) + delta))
        self.view.setCurrentIndex(self.model.index(row))

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.image_selected.emit(int(self.model.data(current, IMAGE_ID_ROLE)))
