"""Guard against the PySide6 6.12.0 refcount bugs (docs/adr/0004): 50k emits / void calls must not kill Python."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    moved = Signal(float, float)

    def __init__(self):
        super().__init__()
        self.count = 0
        self.moved.connect(self.on_moved)

    def on_moved(self, x, y):
        self.count += 1

app = QCoreApplication([])
e = Emitter()
before = sys.getrefcount(True)
for _ in range(50_000):
    e.moved.emit(1.0, 2.0)
assert e.count == 50_000
none_before = sys.getrefcount(None)
for _ in range(50_000):
    e.setObjectName("x")  # a void Qt method: 6.12.0 also dropped a reference to None here
print(max(abs(sys.getrefcount(True) - before), abs(sys.getrefcount(None) - none_before)))
"""


def test_signal_emits_do_not_leak_references_to_true() -> None:
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120,
                       env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, f"PySide6 crashed while emitting signals: {r.stderr[-500:]}"
    assert abs(int(r.stdout.strip())) < 100
