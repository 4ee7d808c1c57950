"""Live training plots: losses (train solid, val dashed), mAP and learning rate, two runs overlaid.

Events only append into numpy ring buffers (``gui.training.ring_buffer.Series``); ONE GUI timer
(<= 30 Hz) calls ``setData`` once per curve per frame, and only for curves whose series changed,
so plotting cost does not grow with the engine's event rate. Plot items use pen width 1,
antialiasing off, ``clipToView`` and automatic 'peak' downsampling (DESIGN rule 7).

Redraws are also paced by their cost: after a frame, the next one waits until the plots have used
at most ``max_busy`` (default 2 %) of the GUI thread's time (measured: setData + paint), within
[1/hz, ``max_interval_s``]; on a slow CPU the plots refresh about once a second and training
loses little to them. While the live run is shown, the x axis spans its planned steps, and the
y axes have a fixed width, so a new point does not re-lay out the axes (measured here: GUI-thread
CPU during a tiny CPU run fell from ~3 % to ~2 % of wall time; the grid was dropped for the
same reason, it tripled the paint time).

The x axis of every plot is the optimisation step. Two slots hold runs: ``main`` (the live run
or one picked from the store) and ``compare`` (drawn fainter). Finished runs are read from
``store.metrics(run_id)`` rows ``(step, epoch, split, name, value)``.
"""

from __future__ import annotations

import csv
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.events import EpochSummary, RunFinished, StepLosses
from engine.project.store import Store, StoreError
from gui.training.run_curves import RunData, plot_kind, run_label

COLORS = {"loss": "#f0f0f0", "loss_objectness": "#e6194b", "loss_rpn_box_reg": "#f58231",
          "loss_classifier": "#3cb44b", "loss_box_reg": "#42d4f4", "loss_l1": "#f032e6",
          "map": "#ffe119", "map50": "#3cb44b", "lr": "#42d4f4"}
EXTRA_COLORS = ("#bfef45", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#9a6324")
SLOTS = ("main", "compare")
class PlotView(pg.GraphicsLayoutWidget):
    """The plots' canvas; remembers how long its last paint took (``paint_s``)."""

    paint_s = 0.0

    def paintEvent(self, event: object) -> None:  # noqa: N802
        t0 = time.perf_counter()
        super().paintEvent(event)
        self.paint_s = time.perf_counter() - t0


class PlotsPanel(QWidget):
    """Loss / mAP / LR plots fed by training events or loaded from the store."""

    def __init__(self, parent: QWidget | None = None, hz: float = 20.0, capacity: int = 100_000,
                 max_busy: float = 0.02, max_interval_s: float = 1.0) -> None:
        super().__init__(parent)
        self.max_busy = max_busy
        self.max_interval_s = max_interval_s
        self._next_at = 0.0
        self.store: Store | None = None
        self.capacity = capacity
        self.live: RunData | None = None
        self.data: dict[str, RunData | None] = dict.fromkeys(SLOTS)
        self._items: dict[str, dict[tuple[str, str], tuple[pg.PlotDataItem, int]]] = {s: {} for s in SLOTS}
        self._markers: dict[str, list[pg.InfiniteLine]] = {s: [] for s in SLOTS}
        self._marker_state: dict[str, tuple] = dict.fromkeys(SLOTS, ())
        self._dirty = False
        self.redraws = 0  # setData calls so far (tests and the overhead bench read it)
        self._timer = QTimer(self)
        self._timer.setInterval(max(34, int(1000 / hz)))  # never faster than ~30 Hz
        self._timer.timeout.connect(self._on_tick)  # runs only while something waits to be drawn
        self._build()

    # -- assembly -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.glw = PlotView(self)
        # side by side: the Plots dock is wide and short
        self.loss_plot = self.glw.addPlot(row=0, col=0, title="losses · train solid, val dashed · x: step")
        self.map_plot = self.glw.addPlot(row=0, col=1, title="validation metric")
        self.lr_plot = self.glw.addPlot(row=0, col=2, title="learning rate")
        self.stat_plot = self.glw.addPlot(row=0, col=3, title="imbalance · easy-negative loss share, RoI fg")
        for col, stretch in enumerate((3, 1, 1, 1)):
            self.glw.ci.layout.setColumnStretchFactor(col, stretch)
        for p in (self.loss_plot, self.map_plot, self.lr_plot, self.stat_plot):  # no grid: it tripled paint time
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            p.getAxis("left").setWidth(44)  # fixed: tick labels changing width would re-layout every frame
        self.lr_plot.getAxis("left").setWidth(60)  # learning rates like 0.0025 need the room
        self.map_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        self.stat_plot.setXLink(self.loss_plot)
        self.stat_plot.setYRange(0.0, 1.0)
        self.stat_plot.enableAutoRange(y=False)
        self.stat_plot.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(0, 0, 0, 170))
        self.map_plot.setYRange(0.0, 1.0)
        self.map_plot.enableAutoRange(y=False)
        self.loss_plot.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(0, 0, 0, 170))
        self.map_plot.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(0, 0, 0, 170))

        self.run_combo = QComboBox(self)
        self.compare_combo = QComboBox(self)
        self.run_combo.setToolTip("Run shown in full colour (the live run while training)")
        self.compare_combo.setToolTip("A second run drawn fainter, for comparison")
        self.run_combo.activated.connect(self._on_run_picked)
        self.compare_combo.activated.connect(self._on_compare_picked)
        self.smoothing = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("EMA smoothing of the training losses (0 = raw)")
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.smoothing_label = QLabel(self)
        self.log_y = QCheckBox("log y", self)
        self.log_y.toggled.connect(self._on_log_y)
        png = QPushButton("PNG…", self)
        png.setToolTip("Export the plots as a PNG image")
        png.clicked.connect(self._on_export_png)
        csv_btn = QPushButton("CSV…", self)
        csv_btn.setToolTip("Export the shown runs' metrics as CSV")
        csv_btn.clicked.connect(self._on_export_csv)

        top = QHBoxLayout()
        top.addWidget(QLabel("Run", self))
        top.addWidget(self.run_combo, 2)
        top.addWidget(QLabel("compare", self))
        top.addWidget(self.compare_combo, 2)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("smoothing", self))
        bottom.addWidget(self.smoothing, 1)
        bottom.addWidget(self.smoothing_label)
        bottom.addWidget(self.log_y)
        bottom.addWidget(png)
        bottom.addWidget(csv_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        lay.addLayout(bottom)
        self._on_smoothing(self.smoothing.value())

    # -- project and runs ---------------------------------------------------------------------
    def set_store(self, store: Store | None) -> None:
        """Show the runs of another project (the live run, if any, is forgotten)."""
        self.store = store
        self.live = None
        for slot in SLOTS:
            self._show(slot, None)
        self.refresh_runs()
        if self.run_combo.count() > 1:  # open on the newest run, like TensorBoard
            self.run_combo.setCurrentIndex(1)
            self.show_run(self.run_combo.itemData(1))

    def refresh_runs(self) -> None:
        """Re-read the run list from the store, keeping the selections."""
        runs = self.store.runs() if self.store is not None else []
        for combo, slot in ((self.run_combo, "main"), (self.compare_combo, "compare")):
            data = self.data[slot]
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("—", None)
            for r in reversed(runs):
                combo.addItem(run_label(r), r.id)
            i = combo.findData(data.run_id) if data is not None else 0
            combo.setCurrentIndex(max(i, 0))
            combo.blockSignals(False)

    def show_run(self, run_id: int | None, slot: str = "main") -> None:
        """Show a run in ``slot``: the live buffers for the live run, else its rows from the store."""
        if run_id is None:
            self._show(slot, None)
            return
        if self.live is not None and self.live.run_id == run_id:
            self._show(slot, self.live)
            return
        if self.store is None:
            return
        try:
            run = self.store.run(int(run_id))
        except StoreError:
            return
        data = RunData.from_store(self.store, run)
        data.set_smoothing(self._weight())
        self._show(slot, data)

    def _on_run_picked(self, index: int) -> None:
        self.show_run(self.run_combo.itemData(index), "main")

    def _on_compare_picked(self, index: int) -> None:
        self.show_run(self.compare_combo.itemData(index), "compare")

    # -- live events --------------------------------------------------------------------------
    def start_run(self, run_id: int, label: str = "", total_steps: int = 0) -> None:
        """A run started: new live buffers, shown in the main slot (x axis: 0..total_steps if > 0).

        A continued (resumed) run starts from the points it already has in the store."""
        self.live = RunData(run_id, label or f"#{run_id}", self.capacity, self._weight())
        self.live.total_steps = int(total_steps)
        for step, epoch, split, name, value in self.store.metrics(run_id) if self.store is not None else []:
            self.live.add(split, name, step, epoch, value)
        self._show("main", self.live)
        self.refresh_runs()

    def add_step(self, e: StepLosses) -> None:
        live = self._live_for(e.run_id)
        for name, value in e.losses.items():
            live.add("train", name, e.step, e.epoch, value)
        live.add("train", "lr", e.step, e.epoch, e.lr)
        self._mark_dirty()

    def add_epoch(self, e: EpochSummary) -> None:
        live = self._live_for(e.run_id)
        for name, value in e.val_losses.items():
            live.add("val", name, e.step, e.epoch, value)
        for name, value in e.metrics.items():
            live.add("val", name, e.step, e.epoch, value)
        if e.is_best:
            live.best_step = float(e.step)
        if e.early_stop:
            live.early_stop_step = float(e.step)
        self._mark_dirty()

    def finish_run(self, e: RunFinished) -> None:
        if self.live is not None and self.live.run_id == e.run_id:
            self.live.status = e.status
        self.redraw()
        self.refresh_runs()

    def _live_for(self, run_id: int) -> RunData:
        if self.live is None or self.live.run_id != run_id:
            self.start_run(run_id)
        assert self.live is not None
        return self.live

    # -- drawing ------------------------------------------------------------------------------
    def _show(self, slot: str, data: RunData | None) -> None:
        for key, (item, _) in self._items[slot].items():
            self._plot_for(key[1]).removeItem(item)
        self._items[slot].clear()
        self._clear_markers(slot)
        self._marker_state[slot] = ()
        self.data[slot] = data
        self._fit_x()
        self._dirty = True
        self.redraw()

    def _fit_x(self) -> None:
        """Live run in the main slot with known length: fix x to its planned steps; else autorange."""
        main, other = self.data["main"], self.data["compare"]
        if main is None or main is not self.live or main.total_steps <= 0:
            self.loss_plot.enableAutoRange(x=True)
            return
        end = float(main.total_steps)
        if other is not None:
            end = max([end, *(float(s.steps()[-1]) for s in other.series.values() if len(s))])
        self.loss_plot.setXRange(0.0, end, padding=0.02)

    def _plot_for(self, name: str) -> pg.PlotItem:
        kind = plot_kind(name)
        return {"loss": self.loss_plot, "metric": self.map_plot, "stat": self.stat_plot}.get(kind, self.lr_plot)

    def _new_item(self, slot: str, split: str, name: str) -> pg.PlotDataItem:
        color = pg.mkColor(COLORS.get(name) or EXTRA_COLORS[zlib.crc32(name.encode()) % len(EXTRA_COLORS)])
        if slot == "compare":
            color.setAlpha(110)
        val = split == "val" and plot_kind(name) == "loss"
        pen = pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine if val else Qt.PenStyle.SolidLine)
        legend = slot == "main" and (split == "train" or plot_kind(name) == "metric") and name != "lr"
        name_shown = name.removeprefix("stat_")
        kw: dict = {"pen": pen, "antialias": False, "name": name_shown if legend else None}
        if split == "val":  # a point per epoch: mark it, or a single epoch would not show at all
            kw.update(symbol="o" if slot == "main" else "t", symbolSize=5, symbolBrush=color, symbolPen=None)
        item = pg.PlotDataItem(**kw)
        item.setClipToView(True)
        item.setDownsampling(auto=True, method="peak")
        self._plot_for(name).addItem(item)
        return item

    def _mark_dirty(self) -> None:
        self._dirty = True
        if not self._timer.isActive() and self.isVisible():
            self._timer.start()

    def showEvent(self, event: object) -> None:  # noqa: N802
        super().showEvent(event)
        if self._dirty:
            self._timer.start()

    def _on_tick(self) -> None:
        """The timer: redraw when something changed and the cost budget allows; idle otherwise."""
        if not self._dirty or not self.isVisible():
            self._timer.stop()
            return
        if time.perf_counter() >= self._next_at:
            t0 = time.perf_counter()
            if self.redraw():
                cost = time.perf_counter() - t0 + self.glw.paint_s
                wait = min(max(cost / self.max_busy, self._timer.interval() / 1000), self.max_interval_s)
                self._next_at = t0 + wait

    def redraw(self) -> bool:
        """setData once for each curve whose series changed since the last frame; False if nothing to do."""
        if not self._dirty or not self.isVisible():
            return False
        self._dirty = False
        for slot in SLOTS:
            data = self.data[slot]
            if data is None:
                continue
            items = self._items[slot]
            for key, series in data.series.items():
                split, name = key
                if plot_kind(name) is None:
                    continue
                item, drawn = items.get(key) or (self._new_item(slot, split, name), -1)
                if drawn != series.version:
                    smoothed = split == "train" and plot_kind(name) == "loss"
                    item.setData(series.steps(), series.values(smoothed))
                    self.redraws += 1
                items[key] = (item, series.version)
            self._update_markers(slot, data)
        return True

    def _update_markers(self, slot: str, data: RunData) -> None:
        state = (data.early_stop_step, data.best_step if data.early_stop_step is not None else None)
        if state == self._marker_state[slot]:
            return
        self._clear_markers(slot)
        self._marker_state[slot] = state
        stop, best = state
        alpha = 255 if slot == "main" else 110
        for step, text, color in ((stop, "early stop", (255, 80, 80, alpha)), (best, "best", (120, 220, 120, alpha))):
            if step is None:
                continue
            for plot in (self.loss_plot, self.map_plot):
                line = pg.InfiniteLine(pos=step, angle=90, movable=False,
                                       pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DotLine),
                                       label=text if plot is self.loss_plot else None,
                                       labelOpts={"position": 0.9, "color": color})
                plot.addItem(line, ignoreBounds=True)
                self._markers[slot].append(line)

    def _clear_markers(self, slot: str) -> None:
        for line in self._markers[slot]:
            for plot in (self.loss_plot, self.map_plot):
                if line in plot.items:
                    plot.removeItem(line)
        self._markers[slot].clear()

    def curve(self, split: str, name: str, slot: str = "main") -> pg.PlotDataItem | None:
        """The plot item of one series (None until it has been drawn)."""
        entry = self._items[slot].get((split, name))
        return entry[0] if entry else None

    def early_stop_markers(self, slot: str = "main") -> list[pg.InfiniteLine]:
        return list(self._markers[slot])

    # -- controls -----------------------------------------------------------------------------
    def _weight(self) -> float:
        return self.smoothing.value() / 100.0

    def _on_smoothing(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        for data in {id(d): d for d in (*self.data.values(), self.live) if d is not None}.values():
            data.set_smoothing(value / 100.0)
        self._mark_dirty()

    def _on_log_y(self, on: bool) -> None:
        self.loss_plot.setLogMode(x=False, y=on)

    # -- export -------------------------------------------------------------------------------
    def export_png(self, path: str | Path, width: int = 1200) -> Path:
        """Write the three plots as one PNG image ``width`` pixels wide."""
        self._dirty = True
        self.redraw()
        exporter = ImageExporter(self.glw.ci)
        exporter.parameters()["width"] = int(width)
        exporter.export(str(path))
        return Path(path)

    def export_csv(self, path: str | Path) -> int:
        """Write the shown runs' points as CSV (run_id, split, name, step, epoch, value); returns the row count."""
        n = 0
        seen: set[int] = set()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run_id", "split", "name", "step", "epoch", "value"])
            for data in self.data.values():
                if data is None or data.run_id in seen:
                    continue
                seen.add(data.run_id)
                for run_id, split, name, step, epoch, value in data.rows():
                    w.writerow([run_id, split, name, int(step), int(epoch), repr(float(value))])
                    n += 1
        return n

    def _on_export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "plots.png", "PNG image (*.png)")
        if path:
            self._report(self.export_png, path)

    def _on_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            self._report(self.export_csv, path)

    def _report(self, fn: Callable[[str], object], path: str) -> None:
        try:
            fn(path)
        except OSError as e:
            QMessageBox.warning(self, "Export failed", f"Cannot write {path}: {e}")
