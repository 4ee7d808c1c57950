"""Small form helpers shared by the panels."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QSlider


def slider_row(form: QFormLayout, title: str, top: int, on_change: Callable[[int], None]) -> tuple[QSlider, QLabel]:
    """Add a row ``title: [slider 0..top] [value label]`` to ``form``; the caller writes the label's text."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, top)
    slider.valueChanged.connect(on_change)
    label = QLabel("")
    label.setMinimumWidth(48)
    row = QHBoxLayout()
    row.addWidget(slider, 1)
    row.addWidget(label)
    form.addRow(title, row)
    return slider, label
