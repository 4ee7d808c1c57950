"""``DockHost``: what a feature may do to the main window — add docks, toolbars, actions and menu entries.

Features get a ``DockHost``, never the window. One helper adds a dock, puts it in the tab group of its
area (the right-hand group keeps the window usable on 768 px screens) and lists it in View.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QScrollArea, QToolBar, QWidget

Area = Qt.DockWidgetArea


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it (tall panels in short docks)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class DockHost:
    """Wraps a QMainWindow: docks, toolbars, menus by name, window-wide actions, a parent for dialogs."""

    def __init__(self, window: QMainWindow) -> None:
        self._window = window
        self._menus: dict[str, QMenu] = {}

    @property
    def widget(self) -> QWidget:
        """Parent for dialogs and top-level helpers."""
        return self._window

    def menu(self, title: str) -> QMenu:
        """The menu-bar menu ``title`` ('&File', '&Edit', '&View', '&Help', ...), created on first use."""
        key = title.replace("&", "").lower()
        if key not in self._menus:
            self._menus[key] = self._window.menuBar().addMenu(title)
        return self._menus[key]

    def action(self, text: str, slot: Callable[[], object],
               keys: tuple[str, ...] | str | QKeySequence | QKeySequence.StandardKey = (),
               menu: str | QMenu | None = None) -> QAction:
        """A window-wide action (its shortcut works wherever the focus is), optionally added to ``menu``."""
        act = QAction(text, self._window)
        if isinstance(keys, tuple):
            act.setShortcuts([QKeySequence(k) for k in keys])
        else:
            act.setShortcut(QKeySequence(keys))
        act.triggered.connect(lambda _checked=False: slot())
        self._window.addAction(act)
        if menu is not None:
            (self.menu(menu) if isinstance(menu, str) else menu).addAction(act)
        return act

    def actions(self) -> list[QAction]:
        return list(self._window.actions())

    def add_dock(self, title: str, widget: QWidget, area: Area = Area.RightDockWidgetArea, tab: bool = True,
                 view_menu: bool = True, hidden: bool = False) -> QDockWidget:
        """Add a dock; with ``tab`` it joins the tab group already in ``area`` (if any). A ``hidden`` dock
        starts closed (View menu opens it in its place): the analysis tools keep the canvas wide."""
        dock = QDockWidget(title, self._window)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        first = next((d for d in self.docks(area) if d is not dock), None) if tab else None
        self._window.addDockWidget(area, dock)
        if first is not None:
            self._window.tabifyDockWidget(first, dock)
        if view_menu:
            self.menu("&View").addAction(dock.toggleViewAction())
        if hidden:
            dock.hide()
        return dock

    def docks(self, area: Area) -> list[QDockWidget]:
        return [d for d in self._window.findChildren(QDockWidget) if self._window.dockWidgetArea(d) == area]

    def resize_dock(self, dock: QDockWidget, size: int, orientation: Qt.Orientation) -> None:
        self._window.resizeDocks([dock], [size], orientation)

    def add_toolbar(self, toolbar: QToolBar, area: Qt.ToolBarArea = Qt.ToolBarArea.TopToolBarArea) -> None:
        self._window.addToolBar(area, toolbar)

    def show_status(self, text: str, timeout_ms: int = 5000) -> None:
        self._window.statusBar().showMessage(text, timeout_ms)
