"""``PrelabelDialog``: what "Pre-label…" asks: which images, the minimum score, and whether manual labels may go."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QWidget,
)

SPLITS = ("train", "val", "test", "unassigned")


def scope_config(scope: str) -> dict:
    """'unlabeled' | 'all' | 'split:<name>' -> the prelabel job's selection keys."""
    if scope == "unlabeled":
        return {"unlabeled": True}
    if scope.startswith("split:"):
        return {"split": scope.split(":", 1)[1]}
    return {}


class PrelabelDialog(QDialog):
    def __init__(self, run_text: str, threshold: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pre-label images")
        self.setObjectName("prelabel_dialog")
        form = QFormLayout(self)
        form.addRow("Assistant", QLabel(run_text))
        self.scope = QComboBox()
        self.scope.addItem("Unlabeled images", "unlabeled")
        for s in SPLITS:
            self.scope.addItem(f"Split: {s}", f"split:{s}")
        self.scope.addItem("All images", "all")
        form.addRow("Images", self.scope)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(threshold)
        form.addRow("Minimum score", self.threshold)
        self.overwrite = QCheckBox("Replace existing labels (deletes them; cannot be undone)")
        self.overwrite.setToolTip("Off: images that already have labels are skipped")
        form.addRow(self.overwrite)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, float, bool]:
        return str(self.scope.currentData()), float(self.threshold.value()), self.overwrite.isChecked()
