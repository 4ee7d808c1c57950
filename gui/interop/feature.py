"""File > Import annotations… / Export annotations…: the menu entries; after an import the session
announces that the store changed, so every feature re-reads it."""

from __future__ import annotations

from PySide6.QtCore import QObject

from gui.bridge import EngineBridge
from gui.interop.dialog import InteropRunner, run_interop
from gui.session import Session
from gui.widgets.docks import DockHost


class InteropFeature(QObject):
    def __init__(self, session: Session, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.host, self.bridge = session, host, bridge
        self.runner: InteropRunner | None = None
        host.action("&Import annotations…", lambda: self.start("import"), "Ctrl+I", menu="&File")
        host.action("&Export annotations…", lambda: self.start("export"), "Ctrl+E", menu="&File")

    def start(self, kind: str) -> InteropRunner | None:
        if self.session.store is None:
            return None
        self.runner = run_interop(self.host.widget, self.bridge, self.session.store.root, kind)
        if kind == "import":
            self.runner.finished.connect(self._on_import_finished)
        return self.runner

    def _on_import_finished(self, result: dict) -> None:
        if self.session.store is not None and result:
            self.session.notify_store_changed()
