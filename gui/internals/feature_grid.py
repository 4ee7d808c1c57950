"""The feature-map grid: one page of a layer's channels composed into ONE uint8 image, with paging and hover.

``FeatureGridView`` paints the composed image (built by ``arrays.compose_grid`` when the data, the page or
the colouring change, never in paint) scaled to fit, nearest neighbour, with each tile's channel number;
hovering a cell emits ``cell_hovered(row, i, j)`` (row of the sorted feature map, cell row, cell column),
leaving emits ``hover_left``. ``FeatureGridPanel`` adds the page controls and the colouring options.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.internals.arrays import GridLayout, best_cols, compose_grid, grid_layout, lut, page_count

PER_PAGE_CHOICES = (16, 36, 64)


class FeatureGridView(QWidget):
    """One page of tiles; see the module docstring."""

    cell_hovered = Signal(int, int, int)  # feature row, cell row i, cell column j
    hover_left = Signal()
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.layout_: GridLayout | None = None
        self.channels: np.ndarray = np.zeros(0, np.int64)  # the layer's channel number of each feature row
        self.means: np.ndarray = np.zeros(0, np.float32)
        self._image: QImage | None = None
        self._rgb: np.ndarray | None = None  # the buffer behind _image (never mutated after hand-over)
        self.hovered: tuple[int, int, int] | None = None

    def set_page(self, rgb: np.ndarray | None, layout: GridLayout | None, channels: np.ndarray,
                 means: np.ndarray) -> None:
        """Show a composed page: (height, width, 3) uint8 C-contiguous RGB and its layout."""
        self.layout_, self.channels, self.means = layout, channels, means
        if self.hovered is not None:
            self.hovered = None
            self.hover_left.emit()
        if rgb is None or layout is None:
            self._rgb, self._image = None, None
        else:
            self._rgb = np.ascontiguousarray(rgb, np.uint8)
            h, w = self._rgb.shape[:2]
            self._image = QImage(self._rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self.update()

    # -- geometry ---------------------------------------------------------------------------------
    def target_rect(self) -> QRectF:
        """Where the composed image is drawn in widget pixels (aspect kept, centred)."""
        if self._image is None:
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_image(self, p: QPointF) -> QPointF:
        r = self.target_rect()
        if r.isEmpty():
            return QPointF(-1, -1)
        s = r.width() / self._image.width()
        return QPointF((p.x() - r.x()) / s, (p.y() - r.y()) / s)

    def cell_center(self, row: int, i: int, j: int) -> QPointF:
        """Widget position of the centre of cell (i, j) of feature row ``row`` (must be on this page)."""
        lay = self.layout_
        x0, y0 = lay.origin(row - lay.first)
        r = self.target_rect()
        s = r.width() / self._image.width()
        return QPointF(r.x() + (x0 + j + 0.5) * s, r.y() + (y0 + i + 0.5) * s)

    # -- events -----------------------------------------------------------------------------------
    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.resized.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hit = None
        if self.layout_ is not None:
            p = self.to_image(event.position())
            hit = self.layout_.hit(p.x(), p.y())
        if hit != self.hovered:
            self.hovered = hit
            self.update()
            if hit is None:
                self.hover_left.emit()
            else:
                self.cell_hovered.emit(*hit)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        if self.hovered is not None:
            self.hovered = None
            self.update()
            self.hover_left.emit()
        super().leaveEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 33))
        if self._image is None or self.layout_ is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no feature map")
            return
        r = self.target_rect()
        p.drawImage(r, self._image)  # nearest neighbour: no smooth-pixmap hint
        lay = self.layout_
        s = r.width() / self._image.width()
        if lay.w * s >= 24:  # tile captions when the tiles are big enough to read them
            f = QFont(p.font())
            f.setPointSizeF(7)
            p.setFont(f)
            for t in range(lay.count):
                x0, y0 = lay.origin(t)
                row = lay.first + t
                pos = QPointF(r.x() + x0 * s + 2, r.y() + y0 * s + 10)
                text = f"#{int(self.channels[row])}" if row < len(self.channels) else ""
                p.setPen(QColor(0, 0, 0))
                p.drawText(pos + QPointF(1, 1), text)
                p.setPen(QColor(255, 255, 255))
                p.drawText(pos, text)
        if self.hovered is not None:
            row, i, j = self.hovered
            x0, y0 = lay.origin(row - lay.first)
            pen = QPen(QColor("#00e5ff"), 2)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(r.x() + (x0 + j) * s, r.y() + (y0 + i) * s, max(s, 3.0), max(s, 3.0)))
        p.end()


class FeatureGridPanel(QWidget):
    """Page controls + colouring + the grid of one layer's feature map (rows sorted by mean activation)."""

    cell_hovered = Signal(int, int, int)
    hover_left = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feature: np.ndarray | None = None  # (C, h, w) float32, rows by mean activation
        self.channel_order = np.zeros(0, np.int64)
        self.channel_mean = np.zeros(0, np.float32)
        self.page = 0
        self.per_page = PER_PAGE_CHOICES[0]
        self._tables = {name: lut(name) for name in ("viridis", "gray", "inferno")}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.prev_button = QToolButton(self)
        self.prev_button.setText("◀")
        self.prev_button.setToolTip("Previous page of channels")
        self.prev_button.clicked.connect(self._on_prev)
        self.next_button = QToolButton(self)
        self.next_button.setText("▶")
        self.next_button.setToolTip("Next page of channels")
        self.next_button.clicked.connect(self._on_next)
        self.page_label = QLabel("", self)
        self.per_page_combo = QComboBox(self)
        for n in PER_PAGE_CHOICES:
            self.per_page_combo.addItem(f"{n} / page", n)
        self.per_page_combo.currentIndexChanged.connect(self._on_per_page)
        self.colormap_combo = QComboBox(self)
        self.colormap_combo.addItems(list(self._tables))
        self.colormap_combo.setToolTip("Colour map of the activations")
        self.colormap_combo.currentIndexChanged.connect(self._on_options)
        self.shared_check = QCheckBox("same scale", self)
        self.shared_check.setToolTip("One min..max for every channel of the page (else each channel its own)")
        self.shared_check.toggled.connect(self._on_options)
        row.addWidget(self.prev_button)
        row.addWidget(self.page_label, 1)
        row.addWidget(self.next_button)
        row.addWidget(self.per_page_combo)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(self.colormap_combo)
        row2.addWidget(self.shared_check)
        row2.addStretch(1)
        lay.addLayout(row2)
        self.view = FeatureGridView(self)
        self.view.cell_hovered.connect(self.cell_hovered)
        self.view.hover_left.connect(self.hover_left)
        self.view.resized.connect(self._on_view_resized)
        lay.addWidget(self.view, 1)
        self.hover_label = QLabel("", self)
        self.hover_label.setWordWrap(True)
        lay.addWidget(self.hover_label)
        self._sync()

    def set_feature(self, feature: np.ndarray | None, channel_order: np.ndarray | None = None,
                    channel_mean: np.ndarray | None = None, keep_page: bool = False) -> None:
        """Show ``feature`` (C, h, w) (None: nothing); ``keep_page`` keeps the page (same layer, new image)."""
        self.feature = feature
        c = 0 if feature is None else int(feature.shape[0])
        self.channel_order = np.arange(c) if channel_order is None else np.asarray(channel_order)
        self.channel_mean = np.zeros(c, np.float32) if channel_mean is None else np.asarray(channel_mean)
        if not keep_page:
            self.page = 0
        self._render()

    def pages(self) -> int:
        return 0 if self.feature is None else page_count(self.feature.shape[0], self.per_page)

    def set_page(self, page: int) -> None:
        self.page = min(max(0, int(page)), max(0, self.pages() - 1))
        self._render()

    def _render(self) -> None:
        f = self.feature
        if f is None or f.ndim != 3 or not f.shape[0]:
            self.view.set_page(None, None, self.channel_order, self.channel_mean)
            self._sync()
            return
        self.page = min(self.page, self.pages() - 1)
        layout = grid_layout(f.shape, self.page, self.per_page, cols=self._cols())
        table = self._tables[self.colormap_combo.currentText()]
        rgb = compose_grid(f, layout, table, shared=self.shared_check.isChecked())
        self.view.set_page(rgb, layout, self.channel_order, self.channel_mean)
        self._sync()

    def _cols(self) -> int:
        """Columns that make the tiles biggest in the view as it is now."""
        f = self.feature
        count = min(self.per_page, int(f.shape[0]) - self.page * self.per_page)
        return best_cols(count, int(f.shape[1]), int(f.shape[2]), self.view.width(), self.view.height())

    def _on_view_resized(self) -> None:
        lay = self.view.layout_
        if self.feature is not None and lay is not None and self._cols() != lay.cols:
            self._render()

    def _sync(self) -> None:
        n = self.pages()
        self.prev_button.setEnabled(self.page > 0)
        self.next_button.setEnabled(self.page < n - 1)
        if self.feature is None or not n:
            self.page_label.setText("no feature map yet")
            return
        lay = self.view.layout_
        c = self.feature.shape[0]
        first = lay.first + 1 if lay else 0
        last = lay.first + lay.count if lay else 0
        self.page_label.setText(f"page {self.page + 1} / {n} · channels {first}–{last} of {c} (by mean activation)")

    def _on_prev(self) -> None:
        self.set_page(self.page - 1)

    def _on_next(self) -> None:
        self.set_page(self.page + 1)

    def _on_per_page(self, _index: int) -> None:
        first = self.page * self.per_page
        self.per_page = int(self.per_page_combo.currentData())
        self.page = first // self.per_page  # keep the first channel shown on screen
        self._render()

    def _on_options(self, *_args: object) -> None:
        self._render()
