"""THE worker threads of the GUI: one prioritised pool for engine jobs and image work, and GUI-thread GC.

``WorkerPool.submit(key, fn, on_done, on_error, priority=...)`` runs ``fn()`` on a worker thread; the
result goes on a thread-safe queue that a GUI-thread ``QTimer`` (10 ms, running only while work is
outstanding) drains, calling ``on_done(key, value)`` / ``on_error(key, exc)`` there. No signal is ever
emitted from a worker, so the PySide6 worker-signal trap (DESIGN.md) cannot bite.

Priorities (lower runs first): ``CURRENT_IMAGE`` > ``VISIBLE_TILES`` > ``THUMBNAILS`` > ``OTHER``.
Within a priority, pending work is LIFO by default (the tiles or thumbnails on screen *now* first) and
capped per priority (the oldest pending tasks are dropped; ``OTHER`` is never dropped). ``OTHER`` work
(the bridge's job lanes: a training run holds a thread for minutes) may occupy at most
``max_workers - 1`` threads, so images always keep one. Threads start on demand and exit after
``idle_s`` without work. ``shared_pool()`` is the process-wide pool, sized from the CPU count.

Nothing else in ``gui/`` creates threads: the bridge (``gui.bridge``) runs its lanes on this pool.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QObject, QTimer

CURRENT_IMAGE, VISIBLE_TILES, THUMBNAILS, OTHER = 0, 1, 2, 3
PRIORITIES = (CURRENT_IMAGE, VISIBLE_TILES, THUMBNAILS, OTHER)
DEFAULT_CAPS: dict[int, int | None] = {CURRENT_IMAGE: 16, VISIBLE_TILES: 512, THUMBNAILS: 128, OTHER: None}


def default_workers() -> int:
    """Threads of the shared pool: one per core, at least 3 (a training lane, a task lane, images)."""
    return max(3, os.cpu_count() or 1)


@dataclass
class _Task:
    key: Hashable
    fn: Callable[[], object]
    on_done: Callable[[Hashable, object], None] | None
    on_error: Callable[[Hashable, BaseException], None] | None
    priority: int
    cancelled: bool = False


class WorkerPool(QObject):
    """``submit(key, fn, on_done, on_error, priority)``: ``fn()`` runs on a worker; callbacks on the GUI thread.

    Keys are global to the pool: a pending task with the same key is replaced. Users that share the pool
    put their own identity in the key (e.g. ``(id(self), ...)``) and cancel/wait by predicate.
    """

    def __init__(self, parent: QObject | None = None, max_workers: int | None = None,
                 max_pending: int | dict[int, int | None] | None = None, lifo: bool = True,
                 idle_s: float = 5.0) -> None:
        super().__init__(parent)
        self.max_workers = max_workers or default_workers()
        if isinstance(max_pending, int):
            self.caps: dict[int, int | None] = dict.fromkeys(PRIORITIES, max_pending)
        else:
            self.caps = {**DEFAULT_CAPS, **(max_pending or {})}
        self.lifo, self.idle_s = lifo, idle_s
        self._cond = threading.Condition()
        self._pending: dict[int, OrderedDict[Hashable, _Task]] = {p: OrderedDict() for p in PRIORITIES}
        self._running: dict[int, _Task] = {}  # id(task) -> task
        self._threads = 0
        self._idle = 0
        self._results: queue.Queue[tuple[_Task, bool, object]] = queue.Queue()
        self._timer = QTimer(self)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._drain)
        collect_garbage_on_gui_thread()

    # -- GUI thread -----------------------------------------------------------------------------
    def submit(self, key: Hashable, fn: Callable[[], object],
               on_done: Callable[[Hashable, object], None] | None = None,
               on_error: Callable[[Hashable, BaseException], None] | None = None,
               priority: int = OTHER) -> None:
        """Queue ``fn``; a pending task with the same key is replaced (and becomes the newest)."""
        task = _Task(key, fn, on_done, on_error, priority)
        with self._cond:
            for pending in self._pending.values():
                pending.pop(key, None)
            pending = self._pending[priority]
            pending[key] = task
            cap = self.caps.get(priority)
            while cap is not None and len(pending) > cap:
                pending.popitem(last=False)
            if self._count_pending() > self._idle and self._threads < self.max_workers:
                self._threads += 1
                threading.Thread(target=self._work, name="anchorlab-worker", daemon=True).start()
            self._cond.notify_all()
        if not self._timer.isActive() and (on_done is not None or on_error is not None):
            self._timer.start()

    def _count_pending(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def cancel_where(self, pred: Callable[[Hashable], bool]) -> None:
        """Drop pending tasks whose key matches; running ones finish but their result is dropped."""
        with self._cond:
            for pending in self._pending.values():
                for key in [k for k in pending if pred(k)]:
                    del pending[key]
            for task in self._running.values():
                if pred(task.key):
                    task.cancelled = True

    def is_pending(self, key: Hashable) -> bool:
        """Queued or running (and not cancelled)."""
        with self._cond:
            return any(key in p for p in self._pending.values()) or any(
                t.key == key and not t.cancelled for t in self._running.values())

    def busy(self, pred: Callable[[Hashable], bool] | None = None) -> bool:
        """Work (matching ``pred``) queued, running, or with a result not delivered yet."""
        match = pred or (lambda _k: True)
        with self._cond:
            if any(match(k) for p in self._pending.values() for k in p):
                return True
            if any(match(t.key) for t in self._running.values()):
                return True
            return any(match(t.key) for t, _, _ in list(self._results.queue))

    def wait(self, timeout_s: float = 30.0, pred: Callable[[Hashable], bool] | None = None) -> bool:
        """Process work and deliver results until idle (tests, benchmarks); False on timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self._drain()
            QCoreApplication.processEvents()
            if not self.busy(pred):
                return True
            time.sleep(0.002)
        return False

    def _drain(self) -> None:
        while True:
            try:
                task, ok, value = self._results.get_nowait()
            except queue.Empty:
                break
            if task.cancelled:
                continue
            try:
                if ok and task.on_done is not None:
                    task.on_done(task.key, value)
                elif not ok and task.on_error is not None:
                    task.on_error(task.key, value)  # type: ignore[arg-type]
            except RuntimeError as e:  # the receiver's C++ object is gone (window closed)
                if "already deleted" not in str(e):
                    raise
        with self._cond:
            idle = not self._count_pending() and not self._running
        if idle and self._results.empty():
            self._timer.stop()

    # -- worker threads ---------------------------------------------------------------------------
    def _next(self) -> _Task | None:
        """The most urgent runnable task (called with the lock held)."""
        others = sum(1 for t in self._running.values() if t.priority == OTHER)
        for p in PRIORITIES:
            if p == OTHER and self.max_workers > 1 and others >= self.max_workers - 1:
                continue  # keep a thread for images
            if self._pending[p]:
                return self._pending[p].popitem(last=self.lifo if p != OTHER else False)[1]
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                deadline = time.monotonic() + self.idle_s
                while (task := self._next()) is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._idle -= 1
                        self._threads -= 1
                        return
                    self._cond.wait(left)
                self._idle -= 1
                self._running[id(task)] = task
            try:
                value, ok = task.fn(), True
            except Exception as e:  # delivered to on_error on the GUI thread
                value, ok = e, False
            with self._cond:
                self._running.pop(id(task), None)
                if task.on_done is not None or task.on_error is not None:
                    self._results.put((task, ok, value))
                self._cond.notify_all()


class Lane:
    """A serial queue of callables run one after another on ``pool`` (priority ``OTHER``).

    While it has work, ONE pool task drains it; ``busy()`` is true from ``submit`` until the last callable
    returned, and ``wait_idle`` blocks until then (shutdown). The callables report by their own means
    (the bridge's event queue); nothing is delivered back through the pool.
    """

    def __init__(self, name: str, pool: WorkerPool) -> None:
        self.name, self.pool = name, pool
        self._lock = threading.Lock()
        self._todo: list[Callable[[], None]] = []
        self._active = False
        self._idle = threading.Event()
        self._idle.set()
        self.closed = False

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._todo.append(fn)
            start = not self._active and not self.closed
            if start:
                self._active = True
                self._idle.clear()
        if start:
            self.pool.submit(("lane", id(self)), self._drain, priority=OTHER)

    def busy(self) -> bool:
        with self._lock:
            return self._active or bool(self._todo)

    def close(self) -> None:
        """Start nothing new (what is queued still runs: cancelled jobs only report and return)."""
        with self._lock:
            self.closed = True

    def wait_idle(self, timeout_s: float) -> bool:
        return self._idle.wait(timeout_s)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._todo:
                    self._active = False
                    self._idle.set()
                    return
                fn = self._todo.pop(0)
            fn()


_shared: WorkerPool | None = None


def shared_pool() -> WorkerPool:
    """The process-wide pool (created on first use, owned by the QCoreApplication)."""
    global _shared
    app = QCoreApplication.instance()
    if _shared is None or _shared.parent() is not app:
        _shared = WorkerPool(app)
    return _shared


_gc_timer: QTimer | None = None


def collect_garbage_on_gui_thread(interval_ms: int = 500) -> None:
    """Run Python's cyclic garbage collector only on the GUI thread (idempotent; needs a QCoreApplication).

    The collector runs in whichever thread happens to allocate. When that is a worker and the garbage holds
    a Qt object that Python owns (a closed top-level widget caught in a reference cycle), Qt deletes it off
    the GUI thread and the process segfaults (seen here: a worker decoding a thumbnail collected a closed
    panel). So automatic collection is switched off and a GUI-thread timer collects instead, generation by
    generation with the usual thresholds (pyqtgraph's ``GarbageCollector`` does the same).
    """
    global _gc_timer
    app = QCoreApplication.instance()
    if _gc_timer is not None or app is None:
        return
    _gc_timer = QTimer(app)
    _gc_timer.setInterval(interval_ms)
    _gc_timer.timeout.connect(_collect_garbage)
    gc.disable()
    _gc_timer.start()


def _collect_garbage() -> None:
    t0, t1, t2 = gc.get_threshold()
    c0, c1, c2 = gc.get_count()
    if c0 > t0:
        gc.collect(2 if c2 > t2 else 1 if c1 > t1 else 0)
