"""The image list's filter bar and the filtering itself (numpy over in-memory columns, no SQL).

``ImageFilter`` is a plain value: status (all / labeled / unlabeled), a category id, a tag id and a
file-name substring (case-insensitive). ``filter_mask`` turns it into a boolean row mask over the list's
columns in a few vectorised steps (100k images: milliseconds), and ``ImageFilterBar`` is the widget row
above the list that edits it and shows "shown / total".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

STATUSES = ("all", "labeled", "unlabeled")


@dataclass(frozen=True)
class ImageFilter:
    status: str = "all"  # all | labeled (>= 1 object) | unlabeled
    category: int | None = None  # images with at least one annotation of this category
    tag: int | None = None  # images carrying this image tag
    text: str = ""  # substring of the file name, case-insensitive

    def is_active(self) -> bool:
        return self != ImageFilter()


def _member_mask(n: int, rows: set[int] | None) -> np.ndarray:
    m = np.zeros(n, bool)
    if rows:
        m[np.fromiter(rows, np.int64, len(rows))] = True
    return m


def filter_mask(f: ImageFilter, counts: np.ndarray, lower_names: Sequence[str],
                category_rows: dict[int, set[int]], tag_rows: dict[int, set[int]]) -> np.ndarray:
    """(N,) bool: rows passing ``f``. ``counts`` (N,) objects per image; ``*_rows`` id -> set of row indices."""
    n = len(counts)
    mask = np.ones(n, bool)
    if f.status == "labeled":
        mask &= counts > 0
    elif f.status == "unlabeled":
        mask &= counts == 0
    if f.category is not None:
        mask &= _member_mask(n, category_rows.get(f.category))
    if f.tag is not None:
        mask &= _member_mask(n, tag_rows.get(f.tag))
    text = f.text.strip().lower()
    if text:
        mask &= np.fromiter((text in s for s in lower_names), bool, n)
    return mask


Choices = tuple[Sequence[tuple[int, str]], Sequence[tuple[int, str]]]


class _ChoiceCombo(QComboBox):
    """A combo that refreshes its items from the bar's ``choices`` provider right before it opens."""

    def __init__(self, bar: ImageFilterBar) -> None:
        super().__init__(bar)
        self.bar = bar

    def showPopup(self) -> None:  # noqa: N802
        self.bar.refresh_choices()
        super().showPopup()


class ImageFilterBar(QWidget):
    """Search field + status / category / tag choosers; emits ``changed(ImageFilter)`` on every edit.

    ``choices``, if set, returns the current ((id, name) categories, (id, name) tags); it is asked again
    whenever a chooser opens, so categories and tags created meanwhile are offered.
    """

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None, choices: Callable[[], Choices] | None = None) -> None:
        super().__init__(parent)
        self.choices = choices
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search file names…")
        self.search.setClearButtonEnabled(True)
        self.status = QComboBox(self)
        self.status.addItems(["All images", "Labeled", "Unlabeled"])
        self.category = _ChoiceCombo(self)
        self.tag = _ChoiceCombo(self)
        self.count_label = QLabel(self)
        self.set_choices([], [])
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.status, self.category, self.tag):
            row.addWidget(w, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        lay.addWidget(self.search)
        lay.addLayout(row)
        lay.addWidget(self.count_label)
        self.search.textChanged.connect(self._on_edited)
        for combo in (self.status, self.category, self.tag):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(1)  # keep the dock narrow; the popup still shows full names
            combo.currentIndexChanged.connect(self._on_edited)
        self._quiet = False

    def filter(self) -> ImageFilter:
        return ImageFilter(STATUSES[max(0, self.status.currentIndex())], self.category.currentData(),
                           self.tag.currentData(), self.search.text())

    def set_filter(self, f: ImageFilter) -> None:
        """Show ``f`` in the widgets and emit ``changed`` once."""
        self._quiet = True
        try:
            self.search.setText(f.text)
            self.status.setCurrentIndex(STATUSES.index(f.status))
            if (f.category is not None and self.category.findData(f.category) < 0) or (
                    f.tag is not None and self.tag.findData(f.tag) < 0):
                self.refresh_choices()
            for combo, value in ((self.category, f.category), (self.tag, f.tag)):
                i = combo.findData(value) if value is not None else 0
                combo.setCurrentIndex(max(0, i))
        finally:
            self._quiet = False
        self._on_edited()

    def set_choices(self, categories: Sequence[tuple[int, str]], tags: Sequence[tuple[int, str]]) -> None:
        """Fill the category and tag choosers with (id, name) pairs, keeping the current choice if it still exists."""
        self._quiet = True
        try:
            for combo, first, items in ((self.category, "Any category", categories), (self.tag, "Any tag", tags)):
                keep = combo.currentData()
                combo.clear()
                combo.addItem(first, None)
                for i, name in items:
                    combo.addItem(name, int(i))
                combo.setCurrentIndex(max(0, combo.findData(keep)) if keep is not None else 0)
        finally:
            self._quiet = False

    def refresh_choices(self) -> None:
        if self.choices is not None:
            self.set_choices(*self.choices())

    def set_counts(self, shown: int, total: int) -> None:
        self.count_label.setText(f"{total:,} images" if shown == total else f"{shown:,} of {total:,} images")

    def _on_edited(self) -> None:
        if not self._quiet:
            self.changed.emit(self.filter())
