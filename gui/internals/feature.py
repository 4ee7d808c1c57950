"""The Inside-the-CNN feature: ``InternalsDock`` as the hidden "Inside the CNN" dock (``ImageRunDockFeature``)."""

from __future__ import annotations

from gui.bridge import EngineBridge
from gui.canvas.view import CanvasView
from gui.dock_feature import ImageRunDockFeature
from gui.internals.dock import InternalsDock
from gui.session import Session
from gui.widgets.docks import DockHost

TITLE = "Inside the CNN"


class InternalsFeature(ImageRunDockFeature):
    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session, canvas, host, bridge, InternalsDock(session, bridge, host.widget), TITLE)
