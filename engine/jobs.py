"""The job protocol: ``run(config, sink, cancel) -> result``.

A job is a plain function. It reads its input from ``config``, reports through ``sink`` (a
callable taking an ``engine.events.Event``), checks ``cancel`` often, and returns a dict. The
same job runs from the CLI (sink prints) and from the GUI (sink = the bridge's queue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from engine.events import Event

Sink = Callable[[Event], None]


class Cancelled(Exception):
    """Raised inside a job by ``CancelToken.check`` when the user stopped it."""


class CancelToken:
    """Cooperative stop and pause flags, shared between the job and whoever controls it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, poll_s: float = 0.05) -> None:
        """Block while paused (returns at once when cancelled)."""
        while not self._running.wait(poll_s):
            pass

    def check(self) -> None:
        """Wait out a pause, then raise Cancelled if stopped."""
        self.wait_if_paused()
        if self._stop.is_set():
            raise Cancelled()


class Job(Protocol):
    def __call__(self, config: dict, sink: Sink, cancel: CancelToken) -> dict: ...


def null_sink(event: Event) -> None:
    """A sink that drops everything."""


class Collector:
    """A sink that keeps every event (for tests and scripts)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


class RateLimiter:
    """True at most every ``interval_s`` seconds (for throttling progress events)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False
