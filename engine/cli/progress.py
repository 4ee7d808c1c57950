"""A terminal progress bar that is also a job sink.

A bar leaves its line open while it runs (``\\r`` redraws). Anything else printed to the same stream
(a notice, an ``error:`` line, the result JSON on stdout in a terminal) must start on a new line:
``end_line`` closes a bar's open line, and ``end_all_lines`` closes every bar still open (the CLI
calls it before printing an error).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.events import Event, JobFailed, Notice, Progress, StepLosses

_OPEN: set[ProgressBar] = set()  # bars with an open line (strong refs: a failed job drops its bar)


class ProgressBar:
    """Sink printing ``[#####.....] 50% 12/24 message`` on one line (stderr), notices on their own."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, min_interval_s: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._start = time.monotonic()
        self.open = False  # a bar is drawn and its line not ended yet

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
        self.open = True
        _OPEN.add(self)
        if done >= total:
            self.end_line()
        self.stream.flush()

    def end_line(self) -> None:
        """End the bar's line if one is open (idempotent)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False
        _OPEN.discard(self)

    def _say(self, line: str) -> None:
        self.end_line()
        self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.update(event.done, event.total, event.message)
        elif isinstance(event, StepLosses):
            self.update(event.step, max(event.step, int(event.step + event.eta_s * event.images_per_s)),
                        f"epoch {event.epoch} loss {event.losses.get('loss', float('nan')):.3f}")
        elif isinstance(event, Notice):
            self._say(f"{event.level}: {event.message}")
        elif isinstance(event, JobFailed):
            self._say(f"error: {event.message}")


def end_all_lines() -> None:
    """End the open line of every bar (before an ``error:`` line, or any other output)."""
    for bar in list(_OPEN):
        bar.end_line()
