"""A terminal progress bar that is also a job sink."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.events import Event, JobFailed, Notice, Progress, StepLosses


class ProgressBar:
    """Sink printing ``[#####.....] 50% 12/24 message`` on one line (stderr), notices on their own."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, min_interval_s: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, done: int, total: int, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and done < total and now - self._last < self.min_interval_s:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        elapsed = now - self._start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        self.stream.write(f"\r[{bar:<{self.width}}] {frac:4.0%} {done}/{total} eta {eta:5.0f}s {message[:60]:<60}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.update(event.done, event.total, event.message)
        elif isinstance(event, StepLosses):
            self.update(event.step, max(event.step, int(event.step + event.eta_s * event.images_per_s)),
                        f"epoch {event.epoch} loss {event.losses.get('loss', float('nan')):.3f}")
        elif isinstance(event, Notice):
            self.stream.write(f"\n{event.level}: {event.message}\n")
        elif isinstance(event, JobFailed):
            self.stream.write(f"\nerror: {event.message}\n")
