"""Augmentation preview dialog: draws the samples of ``engine.data.preview.preview_job`` (run on the
bridge's ``tasks`` lane, typed payload ``AugmentPreview``); it computes nothing itself."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.data.preview import AugmentPreview
from engine.project.store import Category
from gui.canvas.view import rgb_to_qimage


def draw_boxes(image: np.ndarray, boxes: np.ndarray, cats: np.ndarray, categories: dict[int, Category]) -> QPixmap:
    """(H, W, 3) uint8 RGB + (N, 4) xyxy boxes (image pixels) -> a pixmap with outlined, named boxes."""
    pix = QPixmap.fromImage(rgb_to_qimage(image))
    p = QPainter(pix)
    for box, cat in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(cats).reshape(-1)):
        c = categories.get(int(cat))
        color = QColor(c.color if c else "#ffffff")
        p.setPen(QPen(color, 2))
        x1, y1, x2, y2 = (float(v) for v in box)
        p.drawRect(int(round(x1)), int(round(y1)), max(1, int(round(x2 - x1))), max(1, int(round(y2 - y1))))
        if c is not None:
            p.drawText(int(x1) + 2, max(10, int(y1) - 2), c.name)
    p.end()
    return pix


class AugmentPreviewDialog(QDialog):
    """A grid of augmented samples; 'Shuffle' asks for a fresh draw (``shuffle_requested``)."""

    shuffle_requested = Signal()

    def __init__(self, parent: QWidget | None = None, columns: int = 3, thumb: int = 260) -> None:
        super().__init__(parent)
        self.setWindowTitle("Augmentation preview")
        self.columns = columns
        self.thumb = thumb
        self.labels: list[QLabel] = []
        self.grid = QGridLayout()
        self.status = QLabel("computing…", self)
        self.shuffle_button = shuffle = QPushButton("Shuffle", self)
        shuffle.setToolTip("Draw new samples with new random augmentations")
        shuffle.clicked.connect(self._on_shuffle)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(shuffle)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(self.grid)
        lay.addLayout(row)

    def set_busy(self) -> None:
        self.status.setText("computing…")

    def show_error(self, message: str) -> None:
        self.status.setText(f"✖ {message}")

    def show_samples(self, preview: AugmentPreview, categories: list[Category]) -> None:
        """Replace the grid with the preview's samples drawn with category colours."""
        samples = [(s.image, s.boxes, s.cats) for s in preview.samples]
        for label in self.labels:
            self.grid.removeWidget(label)
            label.deleteLater()
        self.labels = []
        by_id = {c.id: c for c in categories}
        for i, (image, boxes, cats) in enumerate(samples):
            label = QLabel(self)
            pix = draw_boxes(image, boxes, cats, by_id)
            label.setPixmap(pix.scaled(self.thumb, self.thumb, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation))
            label.setToolTip(f"{image.shape[1]}×{image.shape[0]} px · {len(boxes)} boxes")
            self.grid.addWidget(label, i // self.columns, i % self.columns)
            label.show()
            self.labels.append(label)
        self.adjustSize()
        total = sum(len(b) for _, b, _ in samples)
        self.status.setText(f"{len(samples)} samples · {total} boxes" if samples
                            else "the training split has no images to preview")

    def _on_shuffle(self) -> None:
        self.set_busy()
        self.shuffle_requested.emit()
