"""The image list: a flat Qt model over the project's images, fast at 100k rows, with filters and thumbnails.

All columns live in memory (numpy arrays and Python lists, loaded by ``scan.image_summaries`` in a few
aggregate queries); ``data`` does no I/O and no SQL, so scrolling never touches disk or SQLite. Filtering
is an index array over those columns (``image_filter.filter_mask``); the view shows ``order`` and A/D step
through it. Thumbnails come from ``ThumbnailCache`` (decoded on workers); ``data`` only looks them up.
Counts are *objects*: distinct group ids + ungrouped annotations (the demo's box + mask pairs count once).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import QListView, QVBoxLayout, QWidget

from engine.project.scan import ImageSummaries, image_summaries, image_summary, object_count
from engine.project.shapes import Annotation
from engine.project.store import Store
from gui.images.filter import Choices, ImageFilter, ImageFilterBar, filter_mask
from gui.images.thumbnails import ThumbnailCache

IMAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class ImageRow:
    id: int
    name: str
    split: str
    count: int  # objects
    width: int
    height: int


class ImageListModel(QAbstractListModel):
    """Rows are the images passing ``filter``, in id order."""

    def __init__(self, parent: QObject | None = None, thumbnails: ThumbnailCache | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.filter = ImageFilter()
        self.set_summaries(ImageSummaries(np.zeros(0, np.int64), [], np.zeros(0, np.int32), np.zeros(0, np.int32),
                                          [], np.zeros(0, np.int32), {}, {}), Path("."))

    # -- loading ------------------------------------------------------------------------------
    def load(self, store: Store) -> None:
        self.set_summaries(image_summaries(store), store.root)

    def set_summaries(self, s: ImageSummaries, root: Path) -> None:
        self.beginResetModel()
        self.root = Path(root)
        self._ids = s.ids
        self._paths = s.paths
        self._names = [p.rsplit("/", 1)[-1] for p in s.paths]
        self._lower = [n.lower() for n in self._names]
        self._splits, self._widths, self._heights = s.splits, s.widths, s.heights
        self._counts = s.objects.astype(np.int32, copy=True)
        self._index = dict(zip(s.ids.tolist(), range(len(s.ids)), strict=True))
        self._cats = {c: self._rows_of(ids) for c, ids in s.categories.items()}
        self._tags = {t: self._rows_of(ids) for t, ids in s.tags.items()}
        self._set_order()
        self._rows_cache: list[ImageRow] | None = None
        self.endResetModel()

    def _rows_of(self, image_ids: np.ndarray) -> set[int]:
        pos = np.searchsorted(self._ids, image_ids)
        ok = pos < len(self._ids)
        ok[ok] = self._ids[pos[ok]] == image_ids[ok]
        return set(pos[ok].tolist())

    def _set_order(self) -> None:
        mask = filter_mask(self.filter, self._counts, self._lower, self._cats, self._tags)
        self.order = np.flatnonzero(mask)
        self._pos = np.full(len(self._ids), -1, np.int64)
        self._pos[self.order] = np.arange(len(self.order))
        self._rows_cache = None

    def apply_filter(self, f: ImageFilter) -> None:
        self.beginResetModel()
        self.filter = f
        self._set_order()
        self.endResetModel()

    # -- queries ------------------------------------------------------------------------------
    def total(self) -> int:
        return len(self._ids)

    @property
    def rows(self) -> list[ImageRow]:
        """The visible rows, in view order (built on demand; prefer ``image_id_at`` for single rows)."""
        if self._rows_cache is None:
            self._rows_cache = [self._row(int(k)) for k in self.order]
        return self._rows_cache

    def _row(self, k: int) -> ImageRow:
        return ImageRow(int(self._ids[k]), self._names[k], self._splits[k], int(self._counts[k]),
                        int(self._widths[k]), int(self._heights[k]))

    def row_of(self, image_id: int) -> int:
        """Visible row of an image, -1 if filtered out or unknown."""
        k = self._index.get(image_id)
        return -1 if k is None else int(self._pos[k])

    def has_image(self, image_id: int) -> bool:
        """Known to the list (visible or filtered out)."""
        return image_id in self._index

    def image_id_at(self, row: int) -> int:
        return int(self._ids[self.order[row]])

    def count_of(self, image_id: int) -> int:
        k = self._index.get(image_id)
        return -1 if k is None else int(self._counts[k])

    def next_row(self, image_id: int | None, delta: int) -> int:
        """Visible row ``delta`` steps from ``image_id`` (which may be filtered out), clamped; -1 if empty."""
        n = len(self.order)
        if not n:
            return -1
        k = self._index.get(image_id) if image_id is not None else None
        if k is None:
            return 0 if delta > 0 else n - 1
        if self._pos[k] >= 0:
            row = int(self._pos[k]) + delta
        else:  # the current image is hidden by the filter: step from where it would be
            at = int(np.searchsorted(self.order, k))
            row = at + delta - 1 if delta > 0 else at + delta
        return min(n - 1, max(0, row))

    # -- edits from the canvas ------------------------------------------------------------------
    def set_count(self, image_id: int, count: int) -> None:
        """Set the shown object count (the row stays visible until the filter is applied again)."""
        k = self._index.get(image_id)
        if k is None:
            return
        self._counts[k] = count
        self._rows_cache = None
        self._changed(k)

    def set_annotations(self, image_id: int, anns: list[Annotation]) -> None:
        """Update count and categories of one image from its annotations."""
        self.set_image_summary(image_id, object_count(anns), {a.category_id for a in anns}, None)

    def set_image_summary(self, image_id: int, count: int, categories: set[int] | None,
                          tags: set[int] | None) -> None:
        k = self._index.get(image_id)
        if k is None:
            return
        for table, ids in ((self._cats, categories), (self._tags, tags)):
            if ids is None:
                continue
            for key, rows in table.items():
                if key not in ids:
                    rows.discard(k)
            for key in ids:
                table.setdefault(key, set()).add(k)
        self.set_count(image_id, count)

    def _changed(self, k: int) -> None:
        row = int(self._pos[k])
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    # -- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.order)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self.order):
            return None
        k = int(self.order[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            n = int(self._counts[k])
            return f"{self._names[k]}  ·  {n}" if n else self._names[k]
        if role == IMAGE_ID_ROLE:
            return int(self._ids[k])
        if role == Qt.ItemDataRole.DecorationRole and self.thumbnails is not None:
            icon = self.thumbnails.icon(int(self._ids[k]), self.root / self._paths[k])
            return icon if icon is not None else self.thumbnails.blank
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{self._paths[k]}\n{self._widths[k]}×{self._heights[k]} px · split {self._splits[k]} · "
                    f"{self._counts[k]} objects")
        return None


class ImageListPanel(QWidget):
    """Filter bar + list of images; emits ``image_selected(image_id)`` when the current image changes."""

    image_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None, thumbnails: bool = True, icon_size: int = 48) -> None:
        super().__init__(parent)
        self.thumbnails = ThumbnailCache(self, size=icon_size) if thumbnails else None
        self.model = ImageListModel(self, self.thumbnails)
        self.filter_bar = ImageFilterBar(self, choices=self._choices)
        self._store: Store | None = None
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        if thumbnails:
            self.view.setIconSize(QSize(icon_size, icon_size))
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        if self.thumbnails is not None:
            self.thumbnails.on_ready = self._on_thumbnail
        self.filter_bar.changed.connect(self._on_filter_changed)
        self._current: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.filter_bar)
        lay.addWidget(self.view)

    def _on_thumbnail(self, _image_id: int) -> None:
        # one repaint of the visible rows (Qt merges these), not a dataChanged emit per icon
        self.view.viewport().update()

    # -- loading ------------------------------------------------------------------------------
    def load(self, store: Store) -> None:
        """Show a (new) project: filters reset, nothing selected."""
        self._current = None
        if self.thumbnails is not None:
            self.thumbnails.clear()
        self.refresh_choices(store)
        self.model.filter = ImageFilter()
        self.model.load(store)
        self.filter_bar.set_filter(ImageFilter())

    def reload(self, store: Store) -> None:
        """Re-read the project (e.g. after adding images), keeping the filter and the current image."""
        self.refresh_choices(store)
        self.model.filter = self.filter_bar.filter()
        self.model.load(store)
        self._restore_current()

    def refresh_image(self, store: Store, image_id: int) -> None:
        """Re-read one image's count, categories and tags (after an edit)."""
        n, cats, tags = image_summary(store, image_id)
        self.model.set_image_summary(image_id, n, cats, tags)

    def refresh_choices(self, store: Store) -> None:
        """Re-read category and tag names for the filter choosers (they also do so when opened)."""
        self._store = store
        self.filter_bar.refresh_choices()

    def _choices(self) -> Choices:
        if self._store is None:
            return [], []
        try:
            return [(c.id, c.name) for c in self._store.categories()], [(t.id, t.name) for t in self._store.tags()]
        except sqlite3.Error:  # the project was closed: keep what is shown
            f = self.filter_bar
            return ([(f.category.itemData(i), f.category.itemText(i)) for i in range(1, f.category.count())],
                    [(f.tag.itemData(i), f.tag.itemText(i)) for i in range(1, f.tag.count())])

    # -- selection ----------------------------------------------------------------------------
    def current_image(self) -> int | None:
        """The image last selected (it may be hidden by the filter since)."""
        return self._current

    def select_image(self, image_id: int) -> None:
        """Select an image; if the filter hides it, the filter is cleared first."""
        if self.model.row_of(image_id) < 0 and self.model.filter.is_active() and self.model.has_image(image_id):
            self.set_filter(ImageFilter())
        row = self.model.row_of(image_id)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def step(self, delta: int) -> None:
        """Move the selection by ``delta`` visible rows (A/D follow the filtered order)."""
        row = self.model.next_row(self._current, delta)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def set_filter(self, f: ImageFilter) -> None:
        self.filter_bar.set_filter(f)

    def reapply_filter(self) -> None:
        """Filter again with the current filter (after the data it looks at changed)."""
        f = self.filter_bar.filter()
        if f.tag is not None and self.filter_bar.tag.findData(f.tag) < 0:
            f = ImageFilter(f.status, f.category, None, f.text)  # the tag was deleted
            self.filter_bar.set_filter(f)
            return
        self._on_filter_changed(f)

    def _on_filter_changed(self, f: ImageFilter) -> None:
        self.model.apply_filter(f)
        self.filter_bar.set_counts(self.model.rowCount(), self.model.total())
        self._restore_current()

    def _restore_current(self) -> None:
        if self._current is None:
            return
        row = self.model.row_of(self._current)
        if row >= 0:
            idx = self.model.index(row)
            self.view.setCurrentIndex(idx)  # same image: no image_selected
            self.view.scrollTo(idx)
        self.filter_bar.set_counts(self.model.rowCount(), self.model.total())

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        image_id = int(self.model.data(current, IMAGE_ID_ROLE))
        if image_id != self._current:
            self._current = image_id
            self.image_selected.emit(image_id)
