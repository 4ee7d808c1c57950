"""BatchNorm statistics over training: one curve per normalisation layer, or a layer × step heat map.

A run and, optionally, a second run to compare (e.g. the same model with BN frozen or GroupNorm): the
second run's curves are dashed in the same colour per layer name; in the heat map its rows sit below the
first run's, on one colour scale. The rows are read from the store by ``jobs.bn_stats_job`` through the
bridge (never on the GUI thread) whenever a run is chosen or ``refresh()`` is called (a run finished).
Statistics: ``in_mean``, ``in_std`` (the layer's input in that step's training forward), ``run_mean``,
``run_var`` (running statistics averaged over channels; none for GroupNorm). docs/internals.md.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from engine.project.records import RunRecord
from gui.bridge import EngineBridge, JobHandle
from gui.internals.arrays import BN_STATS, BNTable, lut, short_names
from gui.internals.jobs import bn_stats_job

STAT_TITLES = {"in_mean": "input mean", "in_std": "input std", "run_mean": "running mean (avg over channels)",
               "run_var": "running variance (avg over channels)"}
NO_RUN = "—"


def run_label(r: RunRecord) -> str:
    cfg = r.config or {}
    every = int(cfg.get("bn_stats_every") or 0)
    norm = cfg.get("norm") or "auto"
    text = f"run {r.id} · {r.name or r.model} · norm {norm}"
    return text + (f" · every {every} steps" if every else " · no BN stats recorded")


class BNStatsView(QWidget):
    """See the module docstring. ``tables[run_id]``: the last ``BNTable`` read; ``curves``: the plot items."""

    loaded = Signal()  # tables arrived and were drawn

    def __init__(self, bridge: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.project: str | None = None
        self.tables: dict[int, BNTable] = {}
        self.handle: JobHandle | None = None
        self.curves: list[pg.PlotDataItem] = []  # the first run's, one per drawn layer
        self.compare_curves: list[pg.PlotDataItem] = []
        self._table = lut("viridis")
        self._heat_rgb: np.ndarray | None = None
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.run_combo = QComboBox(self)
        self.run_combo.setToolTip("A run trained with BN statistics (anchorlab train --bn-stats-every N)")
        self.compare_combo = QComboBox(self)
        self.compare_combo.setToolTip("A second run to compare, e.g. the same model with BN frozen or GroupNorm")
        self.stat_combo = QComboBox(self)
        for s in BN_STATS:
            self.stat_combo.addItem(STAT_TITLES[s], s)
        self.layer_combo = QComboBox(self)
        self.layer_combo.addItem("all layers", None)
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItems(["curves", "heat map (layer × step)"])
        row = QHBoxLayout()
        row.addWidget(self.stat_combo, 1)
        row.addWidget(self.mode_combo)
        form.addRow("Run:", self.run_combo)
        form.addRow("Compare:", self.compare_combo)
        form.addRow("Statistic:", row)
        form.addRow("Layers:", self.layer_combo)
        lay.addLayout(form)
        self.stack = QStackedWidget(self)
        self.plot = pg.PlotWidget(self)
        self.plot.setLabel("bottom", "step")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-4, 4), labelTextSize="7pt", brush=(0, 0, 0, 140))
        self.heat = pg.PlotWidget(self)
        self.heat.setLabel("bottom", "step")
        self.heat_item = pg.ImageItem()
        self.heat.addItem(self.heat_item)
        self.heat.getViewBox().invertY(True)
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.heat)
        self.stack.setMinimumHeight(160)
        lay.addWidget(self.stack, 1)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.run_combo.currentIndexChanged.connect(self._on_runs_changed)
        self.compare_combo.currentIndexChanged.connect(self._on_runs_changed)
        self.stat_combo.currentIndexChanged.connect(self._on_view_changed)
        self.layer_combo.currentIndexChanged.connect(self._on_view_changed)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)

    # -- runs -------------------------------------------------------------------------------------
    def set_runs(self, project: str | None, runs: list[RunRecord]) -> None:
        """The project's runs (``Store.runs()``); keeps the chosen ones when still there, else picks the newest
        run that records BN statistics."""
        self.project = project
        keep, keep_cmp = self.run_id(), self.compare_id()
        for combo in (self.run_combo, self.compare_combo):
            combo.blockSignals(True)
            combo.clear()
        self.compare_combo.addItem(NO_RUN, None)
        for r in reversed(runs):
            self.run_combo.addItem(run_label(r), r.id)
            self.compare_combo.addItem(run_label(r), r.id)
        recorded = [r.id for r in reversed(runs) if int((r.config or {}).get("bn_stats_every") or 0)]
        first = keep if keep is not None and self.run_combo.findData(keep) >= 0 else (recorded[0] if recorded else None)
        self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(first)) if first is not None else 0)
        self.compare_combo.setCurrentIndex(max(0, self.compare_combo.findData(keep_cmp)) if keep_cmp is not None else 0)
        for combo in (self.run_combo, self.compare_combo):
            combo.blockSignals(False)
        self.refresh()

    def run_id(self) -> int | None:
        d = self.run_combo.currentData()
        return None if d is None else int(d)

    def compare_id(self) -> int | None:
        d = self.compare_combo.currentData()
        return None if d is None else int(d)

    def set_compare(self, run_id: int | None) -> None:
        self.compare_combo.setCurrentIndex(max(0, self.compare_combo.findData(run_id)) if run_id is not None else 0)

    def refresh(self) -> JobHandle | None:
        """Read the chosen runs' statistics again (a job on the bridge's 'tasks' lane)."""
        ids = [i for i in (self.run_id(), self.compare_id()) if i is not None]
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
        if self.bridge is None or not self.project or not ids:
            self.tables = {}
            self.handle = None
            self.redraw()
            return None
        self.status.setText("reading statistics…")
        self.handle = h = self.bridge.submit(bn_stats_job, {"project": self.project, "runs": list(dict.fromkeys(ids))},
                                             lane="tasks")
        h.finished.connect(self._on_loaded)
        h.failed.connect(self._on_failed)
        return h

    def _on_loaded(self, result: dict) -> None:
        if self.sender() is not self.handle or result.get("cancelled"):
            return
        self.tables = dict(result.get("tables") or {})
        self._fill_layers()
        self.redraw()
        self.loaded.emit()

    def _on_failed(self, message: str) -> None:
        if self.sender() is self.handle:
            self.status.setText(f"cannot read statistics: {message}")

    def _on_runs_changed(self, _index: int) -> None:
        self.refresh()

    def _on_view_changed(self, _index: int) -> None:
        self.redraw()

    def _on_mode_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.redraw()

    # -- drawing ----------------------------------------------------------------------------------
    def _fill_layers(self) -> None:
        keep = self.layer_combo.currentData()
        names: list[str] = []
        for t in self.tables.values():
            names += [n for n in t.layers if n not in names]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem("all layers", None)
        for n in names:
            self.layer_combo.addItem(n, n)
        self.layer_combo.setCurrentIndex(max(0, self.layer_combo.findData(keep)) if keep is not None else 0)
        self.layer_combo.blockSignals(False)

    def _shown(self, table: BNTable) -> list[int]:
        only = self.layer_combo.currentData()
        return [k for k, n in enumerate(table.layers) if only is None or n == only]

    def redraw(self) -> None:
        stat = str(self.stat_combo.currentData())
        self.plot.setLabel("left", STAT_TITLES[stat])
        self.heat.setLabel("left", "layer")
        a, b = self.tables.get(self.run_id()), self.tables.get(self.compare_id())
        if self.compare_id() == self.run_id():
            b = None
        self._draw_curves(stat, a, b)
        self._draw_heat(stat, a, b)
        if a is None:
            self.status.setText("choose a run" if self.run_id() is None else "")
        elif a.empty:
            self.status.setText(f"run {a.run_id} has no BN statistics: they are recorded by runs trained with "
                                "TrainConfig.bn_stats_every > 0 (anchorlab train --bn-stats-every N)")
        else:
            heat = self.mode_combo.currentIndex() == 1
            text = f"run {a.run_id}: {len(a.layers)} layers, {len(a.steps)} records ({'top' if heat else 'solid'})"
            if b is not None:
                text += (f"; run {b.run_id}: {len(b.layers)} layers ({'bottom' if heat else 'dashed'})"
                         if not b.empty else
                         f"; run {b.run_id} has no BN statistics")
            self.status.setText(text)

    def _draw_curves(self, stat: str, a: BNTable | None, b: BNTable | None) -> None:
        for c in self.curves + self.compare_curves:
            self.plot.removeItem(c)
        self.legend.clear()
        self.curves, self.compare_curves = [], []
        if a is None:
            return
        names = list(a.layers) + [n for n in (b.layers if b else []) if n not in a.layers]
        colors = {n: pg.intColor(k, hues=max(1, len(names)), maxValue=230) for k, n in enumerate(names)}
        short = dict(zip(names, short_names(names)))
        for table, dashed, out in ((a, False, self.curves), (b, True, self.compare_curves)):
            if table is None or table.empty:
                continue
            for k in self._shown(table):
                name = table.layers[k]
                y = table.values[stat][k]
                pen = pg.mkPen(colors[name], width=1, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
                item = pg.PlotDataItem(table.steps, y, pen=pen, connect="finite",
                                       name=None if dashed else short[name])
                item.setToolTip(f"run {table.run_id} · {name}")
                self.plot.addItem(item)
                out.append(item)
        self.plot.enableAutoRange()

    def _draw_heat(self, stat: str, a: BNTable | None, b: BNTable | None) -> None:
        blocks, labels = [], []
        for table in (a, b):
            if table is None or table.empty:
                continue
            tag = f"r{table.run_id} · " if b is not None else ""
            rows = self._shown(table)
            blocks.append((table, rows))
            labels += [f"{tag}{n}" for n in short_names([table.layers[k] for k in rows])]
        if not blocks:
            self.heat_item.clear()
            self._heat_rgb = None
            self.heat.getAxis("left").setTicks(None)
            return
        steps = np.unique(np.concatenate([t.steps for t, _ in blocks]))
        parts = []
        for k, (table, rows) in enumerate(blocks):
            m = np.full((len(rows), len(steps)), np.nan)
            m[:, np.searchsorted(steps, table.steps)] = table.values[stat][rows]
            parts.append(m)
            if k + 1 < len(blocks):
                parts.append(np.full((1, len(steps)), np.nan))  # a gap row between the runs
        grid = np.vstack(parts)
        finite = grid[np.isfinite(grid)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        idx = np.clip((np.nan_to_num(grid, nan=lo) - lo) / (hi - lo if hi > lo else 1.0) * 255 + 0.5, 0, 255)
        rgb = self._table[idx.astype(np.uint8)]
        rgb[~np.isfinite(grid)] = (40, 40, 44)
        self._heat_rgb = np.ascontiguousarray(rgb, np.uint8)
        self.heat_item.setImage(self._heat_rgb, axisOrder="row-major", autoLevels=False, levels=(0, 255))
        x0 = float(steps[0]) - 0.5
        width = float(steps[-1] - steps[0]) + 1.0 if len(steps) > 1 else 1.0
        self.heat_item.setRect(QRectF(x0, 0, width, grid.shape[0]))
        ticks, r = [], 0
        label_iter = iter(labels)
        for k, (_table, rows) in enumerate(blocks):
            for _ in rows:
                ticks.append((r + 0.5, next(label_iter)))
                r += 1
            r += 1 if k + 1 < len(blocks) else 0
        every = max(1, len(ticks) // 16)
        self.heat.getAxis("left").setTicks([ticks[::every]])
        self.heat.setTitle(f"{STAT_TITLES[stat]}: {lo:.3g} (dark) … {hi:.3g} (bright)", size="8pt")
        self.heat.enableAutoRange()

    def heat_image(self) -> QImage | None:
        """The heat map as drawn (tests)."""
        if self._heat_rgb is None:
            return None
        h, w = self._heat_rgb.shape[:2]
        return QImage(self._heat_rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()

