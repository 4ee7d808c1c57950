"""THE ONLY THREAD HOP between the GUI and the engine.

Each *lane* is one long-lived Python thread that runs engine jobs one after another (lane
``train`` owns the model/optimiser/device for training; lane ``tasks`` runs short jobs such as
import, export, X-ray capture, prediction). Jobs report through a sink that only puts events on a
thread-safe queue. A GUI-thread ``QTimer`` (<= 30 Hz) drains the queue and emits them as one
``events_ready(list)`` signal per frame, so panels redraw once per frame however fast the engine
talks. Nothing else in ``gui/`` touches threads.
"""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from engine.events import Event, JobFailed, JobFinished
from engine.jobs import Cancelled, CancelToken, Job


@dataclass
class _Task:
    job_id: str
    job: Job
    config: dict
    cancel: CancelToken = field(default_factory=CancelToken)


class _Lane:
    """One worker thread with a queue of tasks."""

    def __init__(self, name: str, out: queue.Queue) -> None:
        self.name = name
        self.tasks: queue.Queue[_Task | None] = queue.Queue()
        self.out = out
        self.current: _Task | None = None
        self.pending: dict[str, _Task] = {}
        self.thread = threading.Thread(target=self._loop, name=f"anchorlab-{name}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            self.pending.pop(task.job_id, None)
            if task.cancel.cancelled:  # cancelled while queued: still report, so waiters close
                self.out.put(JobFinished({"cancelled": True}, job=task.job_id))
                continue
            self.current = task

            def sink(event: Event, job_id: str = task.job_id) -> None:
                if not event.job:
                    object.__setattr__(event, "job", job_id)
                self.out.put(event)

            try:
                result = task.job(task.config, sink, task.cancel)
                self.out.put(JobFinished(result if isinstance(result, dict) else {}, job=task.job_id))
            except Cancelled:
                self.out.put(JobFinished({"cancelled": True}, job=task.job_id))
            except Exception as e:  # a job's exception never kills the GUI
                self.out.put(JobFailed(f"{type(e).__name__}: {e}", traceback.format_exc(), job=task.job_id))
            finally:
                self.current = None


class EngineBridge(QObject):
    """Runs engine jobs off the GUI thread and re-emits their events on it.

    Signals carry lists of ``engine.events.Event``; ``job_done(job_id, ok)`` fires once per job.
    """

    events_ready = Signal(list)
    job_done = Signal(str, bool)
    busy_changed = Signal(str, bool)  # lane, busy

    def __init__(self, parent: QObject | None = None, hz: float = 30.0) -> None:
        super().__init__(parent)
        self._out: queue.Queue[Event] = queue.Queue()
        self._lanes: dict[str, _Lane] = {}
        self._ids = itertools.count(1)
        self._lane_of: dict[str, str] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / hz)))
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    def submit(self, job: Job, config: dict, lane: str = "tasks") -> str:
        """Queue ``job(config, sink, cancel)`` on ``lane``; returns the job id."""
        job_id = f"{lane}-{next(self._ids)}"
        if lane not in self._lanes:
            self._lanes[lane] = _Lane(lane, self._out)
        task = _Task(job_id, job, config)
        ln = self._lanes[lane]
        ln.pending[job_id] = task
        self._lane_of[job_id] = lane
        ln.tasks.put(task)
        self.busy_changed.emit(lane, True)
        return job_id

    def _task(self, job_id: str) -> _Task | None:
        ln = self._lanes.get(self._lane_of.get(job_id, ""))
        if ln is None:
            return None
        if ln.current is not None and ln.current.job_id == job_id:
            return ln.current
        return ln.pending.get(job_id)

    def cancel(self, job_id: str) -> None:
        if (t := self._task(job_id)) is not None:
            t.cancel.cancel()

    def pause(self, job_id: str) -> None:
        if (t := self._task(job_id)) is not None:
            t.cancel.pause()

    def resume(self, job_id: str) -> None:
        if (t := self._task(job_id)) is not None:
            t.cancel.resume()

    def is_busy(self, lane: str) -> bool:
        ln = self._lanes.get(lane)
        return ln is not None and (ln.current is not None or bool(ln.pending))

    def flush(self) -> None:
        """Deliver queued events now (also called by the timer)."""
        self._on_tick()

    def _on_tick(self) -> None:
        batch: list[Event] = []
        while True:
            try:
                batch.append(self._out.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        self.events_ready.emit(batch)
        for e in batch:
            if isinstance(e, JobFinished | JobFailed):
                self.job_done.emit(e.job, isinstance(e, JobFinished))
                lane = self._lane_of.pop(e.job, "")
                if lane and not self.is_busy(lane):
                    self.busy_changed.emit(lane, False)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel everything and join the lanes (call from closeEvent)."""
        self._timer.stop()
        for ln in self._lanes.values():
            for t in list(ln.pending.values()):
                t.cancel.cancel()
            if ln.current is not None:
                ln.current.cancel.cancel()
            ln.tasks.put(None)
        for ln in self._lanes.values():
            ln.thread.join(timeout_s)
        self._lanes.clear()
