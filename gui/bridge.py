"""THE one hop between the GUI and the engine: job lanes on the worker pool, and a handle per job.

A *lane* is a serial queue of engine jobs (lane ``train`` runs training; lane ``tasks`` runs short jobs
such as import, export, X-ray capture, prediction). While a lane has work, one task of the shared
``gui.workers`` pool (priority ``OTHER``) drains it, job after job. Jobs report through a sink that only
copies the event with its job id (``dataclasses.replace``) onto a thread-safe queue. A GUI-thread
``QTimer`` (<= 30 Hz) drains that queue and turns it into Qt signals, so every signal here is emitted on
the GUI thread (docs/adr/0002):

- ``submit(...)`` returns a ``JobHandle`` whose signals concern that job only: ``event(Event)`` for each
  event in order, ``progress(Event)`` once per frame with the newest ``Progress``/``StepLosses``,
  then ``finished(dict)`` or ``failed(str)``; ``cancel()``/``pause()``/``resume()`` reach its token.
- ``broadcast(list)``: events that are global by nature (a run finished, a live X-ray snapshot), once
  per frame for whoever cares, whatever job sent them.
- ``job_done(job_id, ok)`` and ``busy_changed(lane, busy)``: lifecycle, for status displays and tests.
"""

from __future__ import annotations

import itertools
import queue
import traceback
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QObject, QTimer, Signal

from engine.events import ArraysReady, Event, JobFailed, JobFinished, Progress, RunFinished, StepLosses
from engine.jobs import Cancelled, CancelToken, Job
from gui.workers import Lane, WorkerPool, shared_pool

PROGRESS_EVENTS = (Progress, StepLosses)


def is_broadcast(e: Event) -> bool:
    """Events every interested view may want, whoever started the job."""
    return isinstance(e, RunFinished) or (isinstance(e, ArraysReady) and bool(e.meta.get("live")))


class JobHandle(QObject):
    """One submitted job. Its signals are emitted on the GUI thread by the bridge's drain tick."""

    event = Signal(object)  # every engine Event of this job, in order (not JobFinished / JobFailed)
    progress = Signal(object)  # the newest Progress or StepLosses of a frame
    finished = Signal(dict)  # the job's result ({"cancelled": True} when stopped)
    failed = Signal(str)  # one line for the user

    def __init__(self, job_id: str, lane: str, cancel: CancelToken) -> None:
        super().__init__()
        self.id, self.lane, self.token = job_id, lane, cancel
        self.done = False
        self.ok: bool | None = None
        self.detail = ""  # the traceback of a failure

    def cancel(self) -> None:
        self.token.cancel()

    def pause(self) -> None:
        self.token.pause()

    def resume(self) -> None:
        self.token.resume()


@dataclass
class _Task:
    job_id: str
    job: Job
    config: dict
    cancel: CancelToken = field(default_factory=CancelToken)


class EngineBridge(QObject):
    """Runs engine jobs off the GUI thread and re-emits their events on it."""

    broadcast = Signal(list)
    job_done = Signal(str, bool)
    busy_changed = Signal(str, bool)  # lane, busy

    def __init__(self, parent: QObject | None = None, hz: float = 30.0, pool: WorkerPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or shared_pool()
        self._out: queue.Queue[Event] = queue.Queue()
        self._lanes: dict[str, Lane] = {}
        self._ids = itertools.count(1)
        self._handles: dict[str, JobHandle] = {}  # jobs whose end is not delivered yet
        self._tasks: dict[str, _Task] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / hz)))
        self._timer.timeout.connect(self._on_tick)
        self._timer.start()

    # -- GUI thread -----------------------------------------------------------------------------
    def submit(self, job: Job, config: dict, lane: str = "tasks") -> JobHandle:
        """Queue ``job(config, sink, cancel)`` on ``lane``; returns its handle."""
        job_id = f"{lane}-{next(self._ids)}"
        task = _Task(job_id, job, config)
        handle = JobHandle(job_id, lane, task.cancel)
        self._handles[job_id] = handle
        self._tasks[job_id] = task
        ln = self._lanes.get(lane)
        if ln is None:
            ln = self._lanes[lane] = Lane(lane, self.pool)
        ln.submit(lambda: self._run(task))
        self.busy_changed.emit(lane, True)
        return handle

    def handle(self, job_id: str) -> JobHandle | None:
        """The handle of a job not finished yet."""
        return self._handles.get(job_id)

    def cancel(self, job_id: str) -> None:
        if (h := self._handles.get(job_id)) is not None:
            h.cancel()

    def is_busy(self, lane: str) -> bool:
        """Jobs of ``lane`` queued, running, or with their end not delivered yet."""
        return any(h.lane == lane for h in self._handles.values())

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
        latest: dict[str, Event] = {}
        for e in batch:
            h = self._handles.get(e.job)
            if h is None:
                continue
            if isinstance(e, JobFinished | JobFailed):
                if (p := latest.pop(e.job, None)) is not None:
                    h.progress.emit(p)
                self._finish(h, e)
                continue
            h.event.emit(e)
            if isinstance(e, PROGRESS_EVENTS):
                latest[e.job] = e
        for job_id, p in latest.items():
            if (h := self._handles.get(job_id)) is not None:
                h.progress.emit(p)
        shared = [e for e in batch if is_broadcast(e)]
        if shared:
            self.broadcast.emit(shared)

    def _finish(self, h: JobHandle, e: JobFinished | JobFailed) -> None:
        self._handles.pop(h.id, None)
        self._tasks.pop(h.id, None)
        h.done, h.ok = True, isinstance(e, JobFinished)
        if isinstance(e, JobFinished):
            h.finished.emit(e.result)
        else:
            h.detail = e.detail
            h.failed.emit(e.message)
        self.job_done.emit(h.id, bool(h.ok))
        if not self.is_busy(h.lane):
            self.busy_changed.emit(h.lane, False)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel everything and wait for the running jobs to stop (call from closeEvent)."""
        self._timer.stop()
        for task in self._tasks.values():
            task.cancel.cancel()
        for ln in self._lanes.values():
            ln.close()
        for ln in self._lanes.values():
            ln.wait_idle(timeout_s)

    # -- worker thread ------------------------------------------------------------------------------
    def _run(self, task: _Task) -> None:
        out = self._out
        if task.cancel.cancelled:  # cancelled while queued: still report, so waiters close
            out.put(JobFinished({"cancelled": True}, job=task.job_id))
            return

        def sink(event: Event, job_id: str = task.job_id) -> None:
            out.put(event if event.job else replace(event, job=job_id))

        try:
            result = task.job(task.config, sink, task.cancel)
            out.put(JobFinished(result if isinstance(result, dict) else {}, job=task.job_id))
        except Cancelled:
            out.put(JobFinished({"cancelled": True}, job=task.job_id))
        except Exception as e:  # a job's exception never kills the GUI
            out.put(JobFailed(f"{type(e).__name__}: {e}", traceback.format_exc(), job=task.job_id))
