"""``AssistPanel``: the widgets of the Assist dock (no logic: the feature connects them).

Top to bottom: the assistant (a run with a checkpoint; Unload), what is shown (minimum score) and the
accept-all threshold slider, the image's pending suggestions (click: make current, double-click: accept)
with Accept / Accept all >= / Reject / Reject all, "Accept as" (another category: edit-then-accept),
the per-run counts, Pre-label… with its progress bar, and Sort by uncertainty with the ranked images
(click one to open it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

NO_RUN = "no assistant"


class AssistPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("assist_panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        box = QGroupBox("Assistant")
        form = QFormLayout(box)
        self.runs = QComboBox()
        self.runs.setToolTip("A trained run whose checkpoint proposes shapes (or tags) for the image on screen")
        self.unload_button = QPushButton("Unload")
        self.unload_button.setToolTip("Stop assisting: free the model and its prediction cache")
        row = QHBoxLayout()
        row.addWidget(self.runs, 1)
        row.addWidget(self.unload_button)
        form.addRow("Run", row)
        self.min_score = QDoubleSpinBox()
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setSingleStep(0.05)
        self.min_score.setDecimals(3)
        self.min_score.setValue(0.3)
        self.min_score.setToolTip("Suggestions scoring less are not proposed")
        form.addRow("Show ≥", self.min_score)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(70)
        self.threshold_label = QLabel("0.70")
        row = QHBoxLayout()
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        form.addRow("Accept all ≥", row)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        form.addRow(self.state)
        lay.addWidget(box)

        box = QGroupBox("Suggestions on this image")
        v = QVBoxLayout(box)
        self.list = QListWidget()
        self.list.setObjectName("assist_suggestions")
        self.list.setMinimumHeight(90)
        v.addWidget(self.list)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept (Enter)")
        self.accept_above_button = QPushButton("Accept all ≥ 0.70 (Shift+Enter)")
        row.addWidget(self.accept_button)
        row.addWidget(self.accept_above_button)
        v.addLayout(row)
        row = QHBoxLayout()
        self.reject_button = QPushButton("Reject (Del)")
        self.reject_all_button = QPushButton("Reject all")
        row.addWidget(self.reject_button)
        row.addWidget(self.reject_all_button)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Accept as"))
        self.accept_as = QComboBox()
        self.accept_as.setToolTip("Accept with another category (counted as edited)")
        row.addWidget(self.accept_as, 1)
        v.addLayout(row)
        hint = QLabel("Click a suggestion to make it current; click its score chip to accept it. "
                      "An accepted shape is a normal annotation: edit it with the usual tools.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        v.addWidget(hint)
        lay.addWidget(box)

        box = QGroupBox("Quality per run")
        v = QVBoxLayout(box)
        self.stats = QLabel("")
        self.stats.setObjectName("assist_stats")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.stats)
        lay.addWidget(box)

        box = QGroupBox("Batch")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.prelabel_button = QPushButton("Pre-label…")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.prelabel_button)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        v.addWidget(self.progress)
        self.rank_button = QPushButton("Sort by uncertainty")
        self.rank_button.setToolTip("Rank the unlabeled images, most uncertain first (click one to open it)")
        v.addWidget(self.rank_button)
        self.ranked = QListWidget()
        self.ranked.setObjectName("assist_ranked")
        self.ranked.setMinimumHeight(90)
        v.addWidget(self.ranked)
        lay.addWidget(box)
        lay.addStretch(1)
        self.threshold.valueChanged.connect(self._on_threshold)

    def accept_threshold(self) -> float:
        return self.threshold.value() / 100.0

    def _on_threshold(self, value: int) -> None:
        t = value / 100.0
        self.threshold_label.setText(f"{t:.2f}")
        self.accept_above_button.setText(f"Accept all ≥ {t:.2f} (Shift+Enter)")
