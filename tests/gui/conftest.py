"""GUI test fixtures."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _gc_on_gui_thread() -> Iterator[None]:
    """No automatic GC during a GUI test: a worker thread must never free Qt objects (docs/adr/0004).

    Garbage is collected on the main thread when the test ends.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()
