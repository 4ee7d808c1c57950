"""Numpy ring buffers for live plot data: O(1) amortised append, the newest rows as one array view.

A ``RingBuffer`` keeps at most ``capacity`` rows of ``width`` float64 columns. Storage grows by
doubling up to ``2 * capacity`` rows; once there, the oldest rows are dropped by copying the last
``capacity - 1`` rows to the front every ``capacity`` appends (amortised O(1)), so ``view()`` is
always one contiguous slice and never copies. A ``Series`` is the plot-facing ring: columns
(step, epoch, value, ema) plus a ``version`` counter that tells the redraw timer it changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate

import numpy as np


class RingBuffer:
    """At most ``capacity`` rows of ``width`` float64 values, oldest dropped first."""

    def __init__(self, capacity: int, width: int = 1, initial: int = 256) -> None:
        if capacity < 2:
            raise ValueError(f"ring buffer capacity must be >= 2, got {capacity}")
        self.capacity = int(capacity)
        self.width = int(width)
        self._buf = np.zeros((min(max(initial, 2), 2 * self.capacity), self.width), np.float64)
        self._start = 0
        self._end = 0
        self.total = 0  # rows ever appended, including dropped ones

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, row: Iterable[float] | float) -> None:
        """Add one row (``width`` values, or a scalar when ``width == 1``)."""
        if self._end == len(self._buf):
            self._make_room()
        self._buf[self._end] = row
        self._end += 1
        self.total += 1
        if self._end - self._start > self.capacity:
            self._start += 1

    def extend(self, rows: np.ndarray) -> None:
        """Add many rows: (M, width) or (M,) when ``width == 1``."""
        for r in np.asarray(rows, np.float64).reshape(-1, self.width):
            self.append(r)

    def view(self) -> np.ndarray:
        """(N, width) float64 read-only view of the rows, oldest first; valid until the next append."""
        v = self._buf[self._start:self._end]
        v.flags.writeable = False
        return v

    def column(self, i: int) -> np.ndarray:
        """(N,) float64 copy of column ``i`` (safe to hand to a plot item)."""
        return self._buf[self._start:self._end, i].copy()

    def set_column(self, i: int, values: np.ndarray) -> None:
        """Overwrite column ``i`` of the live rows with ``values`` (N,)."""
        self._buf[self._start:self._end, i] = values

    def last(self) -> np.ndarray:
        """(width,) the newest row; IndexError when empty."""
        if not len(self):
            raise IndexError("ring buffer is empty")
        return self._buf[self._end - 1].copy()

    def clear(self) -> None:
        self._start = self._end = 0
        self.total = 0

    def _make_room(self) -> None:
        n = len(self)
        size = len(self._buf)
        if size < 2 * self.capacity:
            new = np.zeros((min(2 * size, 2 * self.capacity), self.width), np.float64)
            new[:n] = self._buf[self._start:self._end]
            self._buf = new
        else:  # full storage: keep the newest capacity - 1 rows at the front
            keep = min(n, self.capacity - 1)
            self._buf[:keep] = self._buf[self._end - keep:self._end]
            n = keep
        self._start, self._end = 0, n


STEP, EPOCH, VALUE, EMA = 0, 1, 2, 3


class Series:
    """One plotted quantity: rows (step, epoch, value, ema) with EMA smoothing weight ``smoothing``.

    ``ema`` is the exponential moving average ``e_t = w * e_{t-1} + (1 - w) * v_t`` (``e_0 = v_0``),
    updated in O(1) per append; changing ``smoothing`` recomputes it once. Non-finite values are
    stored but skipped by the average. ``version`` increases on every change.
    """

    def __init__(self, capacity: int = 100_000, smoothing: float = 0.0) -> None:
        self.ring = RingBuffer(capacity, 4)
        self.smoothing = float(smoothing)
        self.version = 0
        self._state: float | None = None  # the average after the last finite value

    def __len__(self) -> int:
        return len(self.ring)

    def append(self, step: float, epoch: float, value: float) -> None:
        value = float(value)
        if np.isfinite(value):
            s = self._state
            self._state = value if s is None else self.smoothing * s + (1.0 - self.smoothing) * value
        self.ring.append((step, epoch, value, self._state if np.isfinite(value) else value))
        self.version += 1

    def set_smoothing(self, w: float) -> None:
        """Set the EMA weight (0 = raw, 0.99 = very smooth) and recompute the average."""
        w = float(min(max(w, 0.0), 0.999))
        if w == self.smoothing:
            return
        self.smoothing = w
        if len(self.ring):
            e = ema(self.ring.view()[:, VALUE], w)
            self.ring.set_column(EMA, e)
            finite = e[np.isfinite(e)]
            self._state = float(finite[-1]) if len(finite) else None
        self.version += 1

    def steps(self) -> np.ndarray:
        """(N,) float64 copy of the steps."""
        return self.ring.column(STEP)

    def values(self, smoothed: bool = False) -> np.ndarray:
        """(N,) float64 copy of the raw values or their moving average."""
        return self.ring.column(EMA if smoothed else VALUE)

    def rows(self) -> np.ndarray:
        """(N, 3) float64 copy of (step, epoch, value)."""
        return self.ring.view()[:, :3].copy()


def ema(values: np.ndarray, w: float) -> np.ndarray:
    """(N,) exponential moving average of (N,) ``values`` with weight ``w``; non-finite values are held over."""

    def step(prev: float, v: float) -> float:
        if not np.isfinite(v):
            return prev
        if not np.isfinite(prev):
            return v
        return w * prev + (1.0 - w) * v

    vals = np.asarray(values, np.float64)
    if not len(vals):
        return vals.copy()
    out = np.fromiter(accumulate(vals.tolist(), step), np.float64, len(vals))
    bad = ~np.isfinite(vals)
    out[bad] = vals[bad]  # the smoothed curve shows a gap where the raw one does
    return out
