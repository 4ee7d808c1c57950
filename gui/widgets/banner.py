"""``ErrorBanner``: a red bar under the toolbars that shows why something was NOT done until dismissed."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolBar, QWidget


class ErrorBanner(QToolBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Errors", parent)
        self.setObjectName("toolbar_errors")
        self.setMovable(False)
        box = QWidget(self)
        lay = QHBoxLayout(box)
        lay.setContentsMargins(8, 2, 8, 2)
        self.label = QLabel(box)
        self.label.setWordWrap(True)
        self.label.setStyleSheet("color: white;")
        dismiss = QPushButton("Dismiss", box)
        dismiss.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(dismiss)
        self.addWidget(box)
        self.setStyleSheet("QToolBar { background: #b3261e; }")
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def message(self) -> str:
        return self.label.text() if self.isVisible() else ""
