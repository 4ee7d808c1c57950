"""The bridge: a JobHandle per job whose signals come from the GUI-thread drain tick, events copied (never
mutated) with their job id, progress coalesced per frame, global events on the broadcast channel."""

from __future__ import annotations

import threading

import pytest

from engine.events import ArraysReady, Notice, Progress, RunFinished
from engine.jobs import CancelToken, Sink
from gui.bridge import EngineBridge


@pytest.fixture()
def bridge(qtbot):
    b = EngineBridge()
    yield b
    b.shutdown()


def test_handle_signals_arrive_on_the_gui_thread_in_order(qtbot, bridge: EngineBridge) -> None:
    sent: list = []
    gate = threading.Event()

    def job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
        for i in range(5):
            e = Progress(i, 5, "step")
            sent.append(e)
            sink(e)
        sink(Notice("hello"))
        sink(RunFinished(7, "finished", {}, ""))
        sink(ArraysReady("xray", {}, {"live": True}))
        gate.wait(10)
        return {"answer": 42}

    seen: dict[str, list] = {"event": [], "progress": [], "threads": []}
    broadcast: list = []

    def on_event(e: object) -> None:
        seen["event"].append(e)
        seen["threads"].append(threading.current_thread() is threading.main_thread())

    def on_progress(e: object) -> None:
        seen["progress"].append(e)
        seen["threads"].append(threading.current_thread() is threading.main_thread())

    h = bridge.submit(job, {}, lane="tasks")
    h.event.connect(on_event)
    h.progress.connect(on_progress)
    bridge.broadcast.connect(broadcast.extend)
    qtbot.waitUntil(lambda: len(sent) == 5)
    qtbot.waitUntil(lambda: len(seen["event"]) == 8)
    assert bridge.is_busy("tasks")
    with qtbot.waitSignal(h.finished, timeout=10_000) as done:
        gate.set()
    assert done.args == [{"answer": 42}] and h.done and h.ok
    assert all(seen["threads"])
    assert [type(e).__name__ for e in seen["event"]] == ["Progress"] * 5 + ["Notice", "RunFinished", "ArraysReady"]
    assert all(e.job == h.id for e in seen["event"])
    assert all(e.job == "" for e in sent)  # copied with dataclasses.replace, the originals untouched
    assert 1 <= len(seen["progress"]) <= 5 and seen["progress"][-1].done == 4  # the newest per frame
    assert [type(e).__name__ for e in broadcast] == ["RunFinished", "ArraysReady"]
    assert not bridge.is_busy("tasks")


def test_failed_and_cancelled_jobs(qtbot, bridge: EngineBridge) -> None:
    def bad(config: dict, sink: Sink, cancel: CancelToken) -> dict:
        raise ValueError("no such image")

    started = threading.Event()

    def slow(config: dict, sink: Sink, cancel: CancelToken) -> dict:
        started.set()
        while True:
            cancel.check()

    h = bridge.submit(bad, {})
    with qtbot.waitSignal(h.failed, timeout=10_000) as failed:
        pass
    assert failed.args == ["ValueError: no such image"] and "Traceback" in h.detail and h.ok is False
    h1 = bridge.submit(slow, {}, lane="train")
    h2 = bridge.submit(slow, {}, lane="train")  # queued behind h1 on the same lane
    assert started.wait(10)
    h2.cancel()
    h1.cancel()
    with qtbot.waitSignal(h2.finished, timeout=10_000) as second:
        pass
    assert second.args == [{"cancelled": True}] and h1.done
