"""``ParamRow``: one CRF parameter as a slider and a spin box kept in step; ``PARAMS`` their ranges."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QWidget


@dataclass(frozen=True)
class ParamSpec:
    name: str  # the CrfParams field
    label: str
    low: float
    high: float
    step: float
    decimals: int
    tip: str


PARAMS = (
    ParamSpec("w_bilateral", "w bilateral", 0.0, 20.0, 0.5, 1,
              "Weight of the appearance kernel (w1): pixels close in position AND colour prefer one label "
              "(DeepLab searched 3–6; 0 turns the kernel off)"),
    ParamSpec("theta_alpha", "θα (px)", 1.0, 200.0, 1.0, 0,
              "Spatial reach of the appearance kernel in pixels (DeepLab: 30–100)"),
    ParamSpec("theta_beta", "θβ (RGB)", 0.5, 30.0, 0.5, 1,
              "Colour tolerance of the appearance kernel in RGB levels (DeepLab: 3–6)"),
    ParamSpec("w_gaussian", "w gaussian", 0.0, 20.0, 0.5, 1,
              "Weight of the smoothness kernel (w2): removes small isolated regions (DeepLab: 3)"),
    ParamSpec("theta_gamma", "θγ (px)", 0.5, 20.0, 0.5, 1, "Reach of the smoothness kernel in pixels (DeepLab: 3)"),
    ParamSpec("iterations", "iterations", 1.0, 30.0, 1.0, 0, "Mean-field iterations (DeepLab: 10)"),
)


class ParamRow(QWidget):
    """A slider (``steps`` of ``spec.step``) and a spin box showing one value; ``value_changed`` once per change."""

    value_changed = Signal(str, float)  # name, value

    def __init__(self, spec: ParamSpec, value: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, round((spec.high - spec.low) / spec.step))
        self.slider.setToolTip(spec.tip)
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(spec.low, spec.high)
        self.spin.setSingleStep(spec.step)
        self.spin.setDecimals(spec.decimals)
        self.spin.setToolTip(spec.tip)
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(64)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        self.set_value(value)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin.valueChanged.connect(self._on_spin)

    def value(self) -> float:
        return float(self.spin.value())

    def set_value(self, value: float) -> None:
        """Show ``value`` without emitting ``value_changed``."""
        for w in (self.slider, self.spin):
            w.blockSignals(True)
        self.spin.setValue(value)
        self.slider.setValue(round((self.spin.value() - self.spec.low) / self.spec.step))
        for w in (self.slider, self.spin):
            w.blockSignals(False)

    def _on_slider(self, pos: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(self.spec.low + pos * self.spec.step)
        self.spin.blockSignals(False)
        self.value_changed.emit(self.spec.name, self.value())

    def _on_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round((value - self.spec.low) / self.spec.step))
        self.slider.blockSignals(False)
        self.value_changed.emit(self.spec.name, self.value())
