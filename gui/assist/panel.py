"""``AssistPanel``: the widgets of the Assist dock (no logic: the feature connects them).

Left to right: the assistant (a run with a checkpoint; Unload), what is shown (minimum score) and the
accept-all threshold slider; the image's pending suggestions (click: make current, double-click: accept)
with Accept / Accept all >= / Reject / Reject all and "Accept as" (another category: edit then accept);
Pre-label… and Sort by uncertainty with their progress bar, the per-run counts and the ranked images
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
    """Wide and short: it sits in the bottom dock area (beside Plots), in three columns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("assist_panel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)

        box = QGroupBox("Assistant")
        form = QFormLayout(box)
        self.runs = QComboBox()
        self.runs.setToolTip("A trained run whose checkpoint proposes shapes (or tags) for the image on screen")
        self.runs.setMinimumContentsLength(12)
        self.runs.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
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
        self.threshold.setToolTip("Shift+Enter (or the button) accepts every shown suggestion scoring this or more")
        self.threshold_label = QLabel("0.70")
        row = QHBoxLayout()
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        form.addRow("Accept all ≥", row)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        form.addRow(self.state)
        lay.addWidget(box, 3)

        box = QGroupBox("Suggestions on this image")
        h = QHBoxLayout(box)
        self.list = QListWidget()
        self.list.setObjectName("assist_suggestions")
        self.list.setToolTip("Click: make current · double-click: accept. On the canvas: click a suggestion to make it "
                             "current, click its score chip to accept it")
        self.list.setMinimumWidth(140)
        h.addWidget(self.list, 3)
        v = QVBoxLayout()
        self.accept_button = QPushButton("Accept (Enter)")
        self.accept_above_button = QPushButton("Accept ≥ 0.70 (⇧Enter)")
        self.reject_button = QPushButton("Reject (Del)")
        self.reject_all_button = QPushButton("Reject all")
        for b in (self.accept_button, self.accept_above_button, self.reject_button, self.reject_all_button):
            v.addWidget(b)
        self.accept_as = QComboBox()
        self.accept_as.setToolTip("Accept as another category (edit then accept: counted as edited). An accepted "
                                  "shape is a normal annotation: edit it with the usual tools")
        v.addWidget(self.accept_as)
        v.addStretch(1)
        h.addLayout(v, 2)
        lay.addWidget(box, 5)

        box = QGroupBox("Batch and quality")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.prelabel_button = QPushButton("Pre-label…")
        self.prelabel_button.setToolTip("Store suggestions for a split or the unlabeled images in the background")
        self.rank_button = QPushButton("Sort by uncertainty")
        self.rank_button.setToolTip("Rank the unlabeled images, most uncertain first (click one to open it)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.prelabel_button)
        row.addWidget(self.rank_button)
        v.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("no batch job")
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        v.addLayout(row)
        self.stats = QLabel("")
        self.stats.setObjectName("assist_stats")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats.setToolTip("Per run: suggestions accepted unchanged, edited (edit then accept, or corrected "
                              "later), rejected, pending")
        v.addWidget(self.stats)
        self.ranked = QListWidget()
        self.ranked.setObjectName("assist_ranked")
        self.ranked.setToolTip("Sort by uncertainty: the most uncertain images first (uncertainty, image); "
                               "click one to open it")
        self.ranked.setMinimumHeight(40)
        v.addWidget(self.ranked, 1)
        lay.addWidget(box, 4)
        self.threshold.valueChanged.connect(self._on_threshold)

    def accept_threshold(self) -> float:
        return self.threshold.value() / 100.0

    def _on_threshold(self, value: int) -> None:
        t = value / 100.0
        self.threshold_label.setText(f"{t:.2f}")
        self.accept_above_button.setText(f"Accept ≥ {t:.2f} (⇧Enter)")
