"""Actions, toolbar, menus, docks and the error banner of interactive labeling.

Shortcuts follow labelme where it has them: R/W box, P polygon, B brush, E eraser, V/Esc select,
Del delete, 1-9 category, [ ] brush radius, Ctrl+Z undo, Ctrl+Shift+Z / Ctrl+Y redo. Help >
Keyboard shortcuts lists every action of the window (read from the actions, so it never drifts)
plus the mouse gestures and the keys tools handle themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from gui.labeling import LabelingController

TOOLS = (("select", "Select", ("V",)), ("box", "Box", ("R", "W")), ("polygon", "Polygon", ("P",)),
         ("brush", "Brush", ("B",)), ("eraser", "Eraser", ("E",)))

GESTURES = (
    ("Wheel / Ctrl+Wheel", "Zoom at the cursor"),
    ("Space+drag, middle drag", "Pan"),
    ("Click, Ctrl+click", "Select, add/remove from the selection (Select tool)"),
    ("Drag on empty canvas", "Rubber-band selection (Select tool)"),
    ("Drag a shape / handle / vertex", "Move it / resize the box / move the vertex (Select tool)"),
    ("Double-click a polygon edge", "Insert a vertex (Select tool)"),
    ("Backspace", "Delete the active (orange) vertex (Select tool)"),
    ("Click first vertex, Enter, double-click", "Close the polygon (Polygon tool)"),
    ("Backspace / Esc", "Remove the last vertex / cancel (Polygon tool)"),
    ("Shift+drag", "Start a new mask instance (Brush tool)"),
)


class ErrorBanner(QToolBar):
    """A red bar under the toolbars: shows why an edit was NOT saved until dismissed."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__("Errors", parent)
        self.setObjectName("toolbar_errors")
        self.setMovable(False)
        box = QWidget(self)
        lay = QHBoxLayout(box)
        lay.setContentsMargins(8, 2, 8, 2)
        self.label = QLabel(box)
        self.label.setWordWrap(True)
        self.label.setStyleSheet("color: white;")
        dismiss = QPushButton("Dismiss", box)
        dismiss.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(dismiss)
        self.addWidget(box)
        self.setStyleSheet("QToolBar { background: #b3261e; }")
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def message(self) -> str:
        return self.label.text() if self.isVisible() else ""


class LabelingUi:
    """Builds the labeling actions into the controller's window; ``tool_actions[name]``."""

    def __init__(self, ctl: LabelingController) -> None:
        self.ctl = ctl
        w = ctl.window
        self.tool_actions: dict[str, QAction] = {}
        self.toolbar = QToolBar("Tools", w)
        self.toolbar.setObjectName("toolbar_tools")
        w.addToolBar(Qt.ToolBarArea.LeftToolBarArea, self.toolbar)  # vertical, as in labelme
        group = QActionGroup(w)
        for name, text, keys in TOOLS:
            act = self._action(f"{text} tool", partial(ctl.set_tool, name), keys)
            act.setCheckable(True)
            act.setIconText(text)
            group.addAction(act)
            self.toolbar.addAction(act)
            self.tool_actions[name] = act
        self.banner = ErrorBanner(w)
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.banner)
        self._build_edit_menu()
        self._build_docks()
        help_menu = getattr(w, "help_menu", None) or w.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard shortcuts", self.show_shortcuts, ("F1",)))

    def _action(self, text: str, slot: Callable[[], object], keys: tuple[str, ...] = ()) -> QAction:
        act = QAction(text, self.ctl.window)
        act.setShortcuts([QKeySequence(k) for k in keys])
        act.triggered.connect(lambda _checked=False: slot())
        self.ctl.window.addAction(act)
        return act

    def _build_edit_menu(self) -> None:
        ctl, w = self.ctl, self.ctl.window
        menu = getattr(w, "edit_menu", None) or w.menuBar().addMenu("&Edit")
        self.undo_action = self._action("&Undo", ctl.undo, ("Ctrl+Z",))
        self.redo_action = self._action("&Redo", ctl.redo, ("Ctrl+Shift+Z", "Ctrl+Y"))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        ctl.stack.canUndoChanged.connect(self.undo_action.setEnabled)
        ctl.stack.canRedoChanged.connect(self.redo_action.setEnabled)
        ctl.stack.undoTextChanged.connect(lambda t: self.undo_action.setText(f"&Undo {t}".strip()))
        ctl.stack.redoTextChanged.connect(lambda t: self.redo_action.setText(f"&Redo {t}".strip()))
        menu.addAction(self.undo_action)
        menu.addAction(self.redo_action)
        menu.addSeparator()
        menu.addAction(self._action("&Delete selected shapes", ctl.delete_selected, ("Del",)))
        menu.addAction(self._action("Select &all shapes", ctl.select_all, ("Ctrl+A",)))
        menu.addAction(self._action("Cancel / select tool", ctl.escape, ("Esc",)))
        menu.addSeparator()
        brush = menu.addMenu("&Brush")
        brush.addAction(self._action("Smaller brush", lambda: ctl.change_radius(1 / 1.25), ("[",)))
        brush.addAction(self._action("Larger brush", lambda: ctl.change_radius(1.25), ("]",)))
        labels = menu.addMenu("&Label with category")
        for i in range(9):
            labels.addAction(self._action(f"Category {i + 1}", partial(ctl.pick_category, i), (str(i + 1),)))
        menu.addSeparator()
        self.edit_menu = menu

    def _build_docks(self) -> None:
        ctl, w = self.ctl, self.ctl.window
        self.undo_view = QUndoView(ctl.stack)
        self.undo_view.setEmptyLabel("<project opened>")
        self.labels_dock = self._dock("Labels", ctl.labels, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tags_dock = self._dock("Tags", ctl.tags, Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", self.undo_view, Qt.DockWidgetArea.RightDockWidgetArea)
        # one tab group on the right (joining a panel already there) keeps the window usable on 768 px screens
        mine = (self.labels_dock, self.tags_dock, self.history_dock)
        others = [d for d in w.findChildren(QDockWidget) if d not in mine and
                  w.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        chain = [*others[:1], *mine]
        for first, second in zip(chain, chain[1:]):
            w.tabifyDockWidget(first, second)
        self.labels_dock.raise_()
        self.edit_menu.addAction(self._action("&History", self.show_history))
        view_menu = getattr(w, "view_menu", None)
        if view_menu is not None:
            for dock in (self.labels_dock, self.tags_dock, self.history_dock):
                view_menu.addAction(dock.toggleViewAction())

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.ctl.window)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.ctl.window.addDockWidget(area, dock)
        return dock

    def show_history(self) -> None:
        self.history_dock.show()
        self.history_dock.raise_()

    def show_error(self, message: str) -> None:
        """Visible at once: the banner stays until dismissed, the status bar repeats it."""
        self.banner.show_message(f"{message}\nThe canvas shows what is saved; every edit saved before is intact.")
        self.ctl.window.statusBar().showMessage(f"NOT SAVED: {message}")

    # -- help -----------------------------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str]]:
        rows = []
        for act in self.ctl.window.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if keys:
                rows.append((keys, act.text().replace("&", "")))
        return rows + list(GESTURES)

    def show_shortcuts(self) -> QDialog:
        dlg = QDialog(self.ctl.window)
        dlg.setWindowTitle("Keyboard shortcuts")
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2, dlg)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        for r, (keys, text) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
        buttons.rejected.connect(dlg.reject)
        lay = QVBoxLayout(dlg)
        lay.addWidget(table)
        lay.addWidget(buttons)
        dlg.resize(560, 620)
        dlg.setObjectName("shortcuts_dialog")
        dlg.open()
        self.shortcuts_dialog = dlg
        return dlg
