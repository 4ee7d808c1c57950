"""The "Loss explorer" dock: CE vs focal, Smooth L1 vs L1 vs L2, sigmoid-BCE vs softmax-CE.

``LossExplorerDock`` has three tabs, every curve from ``engine.losses.curves`` (pure numpy, a few hundred
points: recomputed on the GUI thread when a slider moves, one ``setData`` per curve):

- "Focal vs CE": focal loss over p_t for γ ∈ ``GAMMAS`` (Lin et al., Figure 1; γ = 0 is cross-entropy)
  with an α slider (its leftmost notch is α = −1: no weighting);
- "Smooth L1": Smooth L1 (β slider) vs L1 vs L2, losses above and their gradients below;
- "Sigmoid vs softmax": a 3-class logit vector set with sliders, the per-class probabilities, losses and
  gradients under sigmoid-BCE (multi-label targets) and softmax-CE (one true class).

``set_marker(RunMarker)`` marks the current run's settings: its focal curve (γ, α) dashed with a label
"this run: γ=2, α=0.25", its Smooth L1 (β) dashed with ±β lines, and its RPN/RoI loss choices.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.losses import curves
from gui.explorer.marker import RunMarker, num

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
GAMMA_COLORS = ("#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4")
P_T = np.linspace(0.0, 1.0, 401)[1:]  # (400,) float64, p_t in (0, 1] (0 would be +inf)
X = np.linspace(-3.0, 3.0, 601)  # (601,) float64 regression residuals
MARK_COLOR = "#f0f0f0"
MARK_P_T = 0.15  # where the run's focal curve carries its label
SMOOTH_COLOR, L1_COLOR, L2_COLOR = "#f58231", "#42d4f4", "#bfef45"
SIGMOID_COLOR, SOFTMAX_COLOR = "#42d4f4", "#f58231"
N_CLASSES = 3
ALPHA_OFF = -1  # alpha slider value meaning alpha = -1 (no weighting)


def _pen(color: str, dashed: bool = False) -> object:
    return pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)


def _slider(parent: QWidget, lo: int, hi: int, value: int, tip: str) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal, parent)
    s.setRange(lo, hi)
    s.setSingleStep(1)
    s.setPageStep(10)
    s.setValue(value)
    s.setToolTip(tip)
    return s


def _curve(plot: pg.PlotItem, x: np.ndarray, y: np.ndarray, pen: object, name: str | None = None) -> pg.PlotDataItem:
    """A curve in ``plot``; clipToView set once it has its view box (pyqtgraph 0.14 fails when set before)."""
    item = plot.plot(x, y, pen=pen, name=name)
    item.setClipToView(True)
    return item


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotItem:
    p = pg.PlotItem(title=title)
    p.setLabel("bottom", x_label)
    p.setLabel("left", y_label)
    p.setMenuEnabled(False)
    p.getAxis("left").setWidth(40)
    return p


class LossExplorerDock(QWidget):
    """See the module docstring. Curves are public attributes (tests read their data)."""

    curves_updated = Signal()  # after any recompute

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.marker: RunMarker | None = None
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        self.header = QLabel("no project", self)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.adopt_button = QPushButton("Use run's α, β", self)
        self.adopt_button.setToolTip("Set the α and β sliders to the current run's settings")
        self.adopt_button.clicked.connect(self.adopt_marker)
        head.addWidget(self.header, 1)
        head.addWidget(self.adopt_button)
        root.addLayout(head)
        self.tabs = QTabWidget(self)
        root.addWidget(self.tabs, 1)
        self._build_focal()
        self._build_box()
        self._build_classes()
        self.set_marker(None)
        self._update_focal()
        self._update_box()
        self._update_classes()

    # -- construction ---------------------------------------------------------------------------
    def _build_focal(self) -> None:
        page = QWidget(self)
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 4, 0, 0)
        view = pg.GraphicsLayoutWidget(page)
        view.setMinimumHeight(220)
        self.focal_plot = p = _plot("CE vs focal loss", "probability of the ground-truth class p_t", "loss")
        view.addItem(p)
        p.setXRange(0, 1, padding=0.02)
        p.setYRange(0, 5, padding=0.02)
        p.addLegend(offset=(-10, 10), labelTextSize="8pt")
        region = pg.LinearRegionItem((0.6, 1.0), movable=False, brush=pg.mkBrush(255, 255, 255, 18),
                                     pen=pg.mkPen(None))
        p.addItem(region)
        well = pg.TextItem("well-classified examples", color="#a0a0a0", anchor=(0.5, 1))
        well.setPos(0.8, 2.0)
        p.addItem(well)
        self.focal_curves: dict[float, pg.PlotDataItem] = {}
        for g, color in zip(GAMMAS, GAMMA_COLORS, strict=True):
            self.focal_curves[g] = _curve(p, P_T, P_T, pen=_pen(color), name=f"γ = {num(g)}")
        self.run_focal_curve = _curve(p, P_T, P_T, pen=_pen(MARK_COLOR, dashed=True), name="this run")
        self.run_focal_dot = pg.ScatterPlotItem(size=7, pen=_pen(MARK_COLOR), brush=pg.mkBrush(MARK_COLOR))
        p.addItem(self.run_focal_dot)
        self.run_focal_label = pg.TextItem("", color=MARK_COLOR, anchor=(0, 1))
        p.addItem(self.run_focal_label)
        lay.addWidget(view, 1)
        row = QHBoxLayout()
        self.alpha_slider = _slider(page, ALPHA_OFF, 100, 25, "α: weight of the foreground class (background 1 − α);"
                                    " leftmost notch: −1, no weighting")
        self.alpha_slider.valueChanged.connect(self._update_focal)
        self.alpha_label = QLabel(page)
        self.alpha_label.setMinimumWidth(90)
        row.addWidget(QLabel("α", page))
        row.addWidget(self.alpha_slider, 1)
        row.addWidget(self.alpha_label)
        lay.addLayout(row)
        note = QLabel("Focal loss −α (1 − p_t)^γ log p_t; γ = 0 is cross-entropy (× α when α is on). A larger γ "
                      "shrinks the loss of well-classified examples (p_t > 0.5), so the many easy background "
                      "anchors stop swamping the few hard ones (Lin et al.: γ = 2, α = 0.25).", page)
        note.setWordWrap(True)
        lay.addWidget(note)
        self.tabs.addTab(page, "Focal vs CE")

    def _build_box(self) -> None:
        page = QWidget(self)
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 4, 0, 0)
        view = pg.GraphicsLayoutWidget(page)
        view.setMinimumHeight(260)
        self.box_plot = p = _plot("box regression loss", "", "loss")
        view.addItem(p, row=0, col=0)
        self.box_grad_plot = g = _plot("gradient d loss / d x", "residual x = prediction − target", "gradient")
        view.addItem(g, row=1, col=0)
        g.setXLink(p)
        p.setXRange(-3, 3, padding=0.02)
        p.setYRange(0, 3, padding=0.02)
        g.setYRange(-2, 2, padding=0.02)
        legend = p.addLegend(labelTextSize="8pt")
        legend.anchor(itemPos=(0.5, 0), parentPos=(0.5, 0), offset=(0, 10))  # top centre: above the V of the curves
        self.smooth_curve = _curve(p, X, X, pen=_pen(SMOOTH_COLOR), name="Smooth L1 (β)")
        self.l1_curve = _curve(p, X, curves.l1_curve(X), pen=_pen(L1_COLOR), name="L1")
        self.l2_curve = _curve(p, X, curves.l2_curve(X), pen=_pen(L2_COLOR), name="L2 (½x²)")
        self.run_smooth_curve = _curve(p, X, X, pen=_pen(MARK_COLOR, dashed=True), name="this run")
        self.smooth_grad_curve = _curve(g, X, X, pen=_pen(SMOOTH_COLOR))
        self.l1_grad_curve = _curve(g, X, curves.l1_grad(X), pen=_pen(L1_COLOR))
        self.l2_grad_curve = _curve(g, X, curves.l2_grad(X), pen=_pen(L2_COLOR))
        self.run_beta_lines: list[pg.InfiniteLine] = []
        for plot in (p, g):
            for _sign in (-1, 1):
                line = pg.InfiniteLine(pos=0, angle=90, movable=False,
                                       pen=pg.mkPen(MARK_COLOR, width=1, style=Qt.PenStyle.DotLine))
                plot.addItem(line)
                self.run_beta_lines.append(line)
        self.run_beta_label = pg.TextItem("", color=MARK_COLOR, anchor=(0, 0.5))
        g.addItem(self.run_beta_label)  # below the +1 plateau, right of the +β line: crosses no curve
        lay.addWidget(view, 1)
        row = QHBoxLayout()
        self.beta_slider = _slider(page, 0, 300, 100, "β of Smooth L1: quadratic for |x| < β, linear beyond "
                                   "(0 = L1; torchvision's detectors use 1/9)")
        self.beta_slider.valueChanged.connect(self._update_box)
        self.beta_label = QLabel(page)
        self.beta_label.setMinimumWidth(90)
        row.addWidget(QLabel("β", page))
        row.addWidget(self.beta_slider, 1)
        row.addWidget(self.beta_label)
        lay.addLayout(row)
        note = QLabel("Smooth L1 is L2-like near zero (a gradient that fades as the box fits) and L1-like for large "
                      "errors (a gradient bounded by 1, so outliers cannot blow up training, unlike L2).", page)
        note.setWordWrap(True)
        lay.addWidget(note)
        self.tabs.addTab(page, "Smooth L1")

    def _build_classes(self) -> None:
        page = QWidget(self)
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 4, 0, 0)
        view = pg.GraphicsLayoutWidget(page)
        view.setMinimumHeight(220)
        ticks = [[(k, f"class {k}") for k in range(N_CLASSES)]]
        self.prob_plot = p = _plot("probabilities: sigmoid (blue) vs softmax (orange)", "", "p")
        self.class_grad_plot = g = _plot("gradient d loss / d z: BCE (blue) vs CE (orange)", "", "gradient")
        view.addItem(p, row=0, col=0)
        view.addItem(g, row=1, col=0)
        for plot, lo, hi in ((p, 0.0, 1.0), (g, -1.0, 1.0)):
            plot.getAxis("bottom").setTicks(ticks)
            plot.setXRange(-0.6, N_CLASSES - 0.4, padding=0)
            plot.setYRange(lo, hi, padding=0.05)
            plot.setMouseEnabled(x=False, y=False)
        idx = np.arange(N_CLASSES, dtype=np.float64)
        zeros = np.zeros(N_CLASSES)
        bar = {"width": 0.38, "pen": pg.mkPen(None)}
        self.sigmoid_bars = pg.BarGraphItem(x=idx - 0.2, height=zeros, brush=SIGMOID_COLOR, **bar)
        self.softmax_bars = pg.BarGraphItem(x=idx + 0.2, height=zeros, brush=SOFTMAX_COLOR, **bar)
        self.bce_grad_bars = pg.BarGraphItem(x=idx - 0.2, height=zeros, brush=SIGMOID_COLOR, **bar)
        self.ce_grad_bars = pg.BarGraphItem(x=idx + 0.2, height=zeros, brush=SOFTMAX_COLOR, **bar)
        for item in (self.sigmoid_bars, self.softmax_bars):
            p.addItem(item)
        for item in (self.bce_grad_bars, self.ce_grad_bars):
            g.addItem(item)
        g.addItem(pg.InfiniteLine(pos=0, angle=0, movable=False, pen=pg.mkPen("#808080", width=1)))
        lay.addWidget(view, 1)
        grid = QGridLayout()
        grid.addWidget(QLabel("logit z", page), 0, 1)
        grid.addWidget(QLabel("present (multi-label)", page), 0, 3)
        self.logit_sliders: list[QSlider] = []
        self.logit_labels: list[QLabel] = []
        self.present_boxes: list[QCheckBox] = []
        for k, (z0, on) in enumerate(zip((2.0, -1.0, 0.5), (True, False, True), strict=True)):
            s = _slider(page, -50, 50, int(round(z0 * 10)), f"logit of class {k} (−5 … 5)")
            s.valueChanged.connect(self._update_classes)
            lab = QLabel(page)
            lab.setMinimumWidth(40)
            box = QCheckBox(page)
            box.setChecked(on)
            box.setToolTip(f"class {k} is present in the image (sigmoid-BCE target)")
            box.toggled.connect(self._update_classes)
            grid.addWidget(QLabel(f"class {k}", page), k + 1, 0)
            grid.addWidget(s, k + 1, 1)
            grid.addWidget(lab, k + 1, 2)
            grid.addWidget(box, k + 1, 3, Qt.AlignmentFlag.AlignHCenter)
            self.logit_sliders.append(s)
            self.logit_labels.append(lab)
            self.present_boxes.append(box)
        grid.setColumnStretch(1, 1)
        lay.addLayout(grid)
        row = QHBoxLayout()
        row.addWidget(QLabel("true class (single-label, softmax-CE target):", page))
        self.target_combo = QComboBox(page)
        self.target_combo.addItems([f"class {k}" for k in range(N_CLASSES)])
        self.target_combo.currentIndexChanged.connect(self._update_classes)
        row.addWidget(self.target_combo)
        row.addStretch(1)
        lay.addLayout(row)
        self.class_table = QLabel(page)
        self.class_table.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.class_table)
        self.run_class_label = QLabel(page)
        self.run_class_label.setWordWrap(True)
        lay.addWidget(self.run_class_label)
        note = QLabel("Sigmoid: one yes/no per class, independent, several can be present (multi-label: RPN "
                      "objectness, image tags). Softmax: the classes compete and sum to 1, exactly one is true "
                      "(single-label: the RoI classifier); raising one logit lowers every other probability.", page)
        note.setWordWrap(True)
        lay.addWidget(note)
        self.tabs.addTab(page, "Sigmoid vs softmax")

    # -- values ---------------------------------------------------------------------------------
    def alpha(self) -> float | None:
        """The α slider's value; None for its leftmost notch (−1, no weighting)."""
        v = self.alpha_slider.value()
        return None if v == ALPHA_OFF else v / 100.0

    def beta(self) -> float:
        return self.beta_slider.value() / 100.0

    def logits(self) -> np.ndarray:
        """(3,) float64, the logit sliders."""
        return np.array([s.value() / 10.0 for s in self.logit_sliders], dtype=np.float64)

    def present(self) -> np.ndarray:
        """(3,) float64 0/1 multi-label targets."""
        return np.array([1.0 if b.isChecked() else 0.0 for b in self.present_boxes], dtype=np.float64)

    def target(self) -> int:
        return max(0, self.target_combo.currentIndex())

    # -- the run's settings -----------------------------------------------------------------------
    def set_marker(self, marker: RunMarker | None) -> None:
        """Mark ``marker``'s settings on the curves (None: no project, nothing marked)."""
        self.marker = marker
        shown = marker is not None
        for item in (self.run_focal_curve, self.run_focal_dot, self.run_focal_label, self.run_smooth_curve,
                     self.run_beta_label, *self.run_beta_lines):
            item.setVisible(shown)
        self.adopt_button.setEnabled(shown)
        if marker is None:
            self.header.setText("no project open: nothing to mark")
            self.run_class_label.setText("")
            self.curves_updated.emit()
            return
        self.header.setText(marker.summary())
        y = curves.focal_curve(P_T, marker.focal_gamma, marker.alpha)
        self.run_focal_curve.setData(P_T, y)
        y0 = float(curves.focal_curve(np.array([MARK_P_T]), marker.focal_gamma, marker.alpha)[0])
        self.run_focal_dot.setData([MARK_P_T], [y0])
        self.run_focal_label.setText(marker.focal_text() + ("" if marker.uses_focal else " (focal not used)"))
        self.run_focal_label.setPos(MARK_P_T, y0)
        b = marker.box_loss_beta
        self.run_smooth_curve.setData(X, curves.smooth_l1_curve(X, b))
        for line, sign in zip(self.run_beta_lines, (-1, 1, -1, 1), strict=True):
            line.setValue(sign * b)
        self.run_beta_label.setText(marker.beta_text())
        self.run_beta_label.setPos(b + 0.05, -1.4)
        self.run_class_label.setText(f"<b>this run</b> ({marker.source}): RPN objectness = sigmoid with "
                                     f"{marker.rpn_loss}, RoI classifier = softmax with {marker.roi_loss}.")
        self.curves_updated.emit()

    def adopt_marker(self) -> None:
        """Set the α and β sliders to the marked run's settings (β rounded to the slider's 0.01)."""
        m = self.marker
        if m is None:
            return
        self.alpha_slider.setValue(ALPHA_OFF if m.alpha is None else int(round(m.focal_alpha * 100)))
        self.beta_slider.setValue(int(round(m.box_loss_beta * 100)))

    # -- recompute ------------------------------------------------------------------------------
    def _update_focal(self) -> None:
        a = self.alpha()
        self.alpha_label.setText("α = −1 (off)" if a is None else f"α = {a:.2f}")
        for g, item in self.focal_curves.items():
            item.setData(P_T, curves.focal_curve(P_T, g, a))
        self.curves_updated.emit()

    def _update_box(self) -> None:
        b = self.beta()
        self.beta_label.setText("β = 0 (L1)" if b <= 0 else f"β = {b:.2f}")
        self.smooth_curve.setData(X, curves.smooth_l1_curve(X, b))
        self.smooth_grad_curve.setData(X, curves.smooth_l1_grad(X, b))
        self.curves_updated.emit()

    def _update_classes(self) -> None:
        z, y, t = self.logits(), self.present(), self.target()
        for lab, v in zip(self.logit_labels, z, strict=True):
            lab.setText(f"{v:+.1f}")
        ps, pm = curves.sigmoid(z), curves.softmax(z)
        bce = curves.sigmoid_bce(z, y)
        ce = curves.softmax_ce(z, t)
        self.sigmoid_bars.setOpts(height=ps)
        self.softmax_bars.setOpts(height=pm)
        self.bce_grad_bars.setOpts(height=curves.sigmoid_bce_grad(z, y))
        self.ce_grad_bars.setOpts(height=curves.softmax_ce_grad(z, t))
        cell = "style='padding: 0 6px' align='right'"
        rows = ["<tr><th></th><th>z</th><th>present</th><th>sigmoid p</th><th>BCE</th><th>softmax p</th>"
                "<th>CE</th></tr>"]
        for k in range(N_CLASSES):
            ce_k = f"{ce:.3f}" if k == t else "—"
            rows.append(f"<tr><td>class {k}</td><td {cell}>{z[k]:+.1f}</td><td {cell}>{int(y[k])}"
                        f"{' (true)' if k == t else ''}</td><td {cell}>{ps[k]:.3f}</td><td {cell}>{bce[k]:.3f}</td>"
                        f"<td {cell}>{pm[k]:.3f}</td><td {cell}>{ce_k}</td></tr>")
        rows.append(f"<tr><td><b>total</b></td><td></td><td></td><td {cell}>Σ {ps.sum():.3f}</td>"
                    f"<td {cell}><b>{bce.sum():.3f}</b></td><td {cell}>Σ {pm.sum():.3f}</td>"
                    f"<td {cell}><b>{ce:.3f}</b></td></tr>")
        self.class_table.setText("<table cellspacing='0'>" + "".join(rows) + "</table>")
        self.curves_updated.emit()
