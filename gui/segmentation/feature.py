"""The Segmentation feature: ``SegmentationDock`` as the hidden "Segmentation" dock (``ImageRunDockFeature``)."""

from __future__ import annotations

from gui.bridge import EngineBridge
from gui.canvas.view import CanvasView
from gui.dock_feature import ImageRunDockFeature
from gui.segmentation.dock import SegmentationDock
from gui.session import Session
from gui.widgets.docks import DockHost

TITLE = "Segmentation"


class SegmentationFeature(ImageRunDockFeature):
    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session, canvas, host, bridge, SegmentationDock(session, bridge, host.widget), TITLE)
