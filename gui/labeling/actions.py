"""Actions, toolbar, menus, docks and the error banner of interactive labeling.

Shortcuts follow labelme where it has them: R/W box, P polygon, O point, L line, B brush, E eraser,
V/Esc select, Del delete, 1-9 category, [ ] brush radius, Ctrl+Z undo, Ctrl+Shift+Z / Ctrl+Y redo,
Ctrl+C / Ctrl+V copy and paste, Ctrl+D duplicate, Ctrl+G / Ctrl+Shift+G group and ungroup, Ctrl+H hide
all. View options (names on the canvas, keep the zoom on the next image, labelme's wheel) are saved. Help >
Keyboard shortcuts lists every action of the window (read from the actions, so it never drifts)
plus the mouse gestures and the keys tools handle themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFormLayout,
    QMenu,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from engine.project.store import Category
from gui.canvas.view import CanvasView
from gui.widgets.banner import ErrorBanner
from gui.widgets.docks import DockHost
from gui.widgets.settings import settings


class ActionTarget(Protocol):
    """What the actions call: the labeling controller (not imported: it imports this module)."""

    stack: QUndoStack
    labels: QWidget
    tags: QWidget
    objects: QWidget
    canvas: CanvasView

    def set_tool(self, name: str) -> None: ...
    def undo(self) -> None: ...
    def redo(self) -> None: ...
    def delete_selected(self, from_key: bool = False) -> None: ...
    def select_all(self) -> None: ...
    def escape(self) -> None: ...
    def change_radius(self, factor: float) -> None: ...
    def pick_category(self, index: int) -> None: ...
    def copy_selected(self) -> None: ...
    def paste(self) -> None: ...
    def duplicate(self) -> None: ...
    def copy_from_previous(self) -> None: ...
    def group_selected(self) -> None: ...
    def ungroup_selected(self) -> None: ...
    def toggle_hide_all(self) -> None: ...
    def set_names_visible(self, on: bool) -> None: ...
    def relabel_selected(self, category_id: int) -> None: ...


TOOLS = (("select", "Select", ("V",)), ("box", "Box", ("R", "W")), ("polygon", "Polygon", ("P",)),
         ("point", "Point", ("O",)), ("line", "Line", ("L",)), ("brush", "Brush", ("B",)),
         ("eraser", "Eraser", ("E",)))

GESTURES = (
    ("Wheel / Ctrl+Wheel", "Zoom at the cursor (View > Wheel scrolls: wheel scrolls, Ctrl+Wheel zooms)"),
    ("Click a shape / Alt+click", "Select its whole object / only that part (Select tool)"),
    ("Arrow keys, Shift+arrow keys", "Nudge the selection by 1 px / 10 px (Select tool)"),
    ("Right-click", "Context menu: copy, paste, duplicate, delete, group, label as…"),
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


class LabelingUi:
    """Builds the labeling actions, toolbar, banner and docks through the dock host; ``tool_actions[name]``."""

    def __init__(self, ctl: ActionTarget, host: DockHost) -> None:
        self.ctl, self.host = ctl, host
        w = host.widget
        self.tool_actions: dict[str, QAction] = {}
        self.toolbar = QToolBar("Tools", w)
        self.toolbar.setObjectName("toolbar_tools")
        host.add_toolbar(self.toolbar, Qt.ToolBarArea.LeftToolBarArea)  # vertical, as in labelme
        group = QActionGroup(w)
        for name, text, keys in TOOLS:
            act = self._action(f"{text} tool", partial(ctl.set_tool, name), keys)
            act.setCheckable(True)
            act.setIconText(text)
            group.addAction(act)
            self.toolbar.addAction(act)
            self.tool_actions[name] = act
        self.banner = ErrorBanner(w)
        host.add_toolbar(self.banner, Qt.ToolBarArea.TopToolBarArea)
        self._build_edit_menu()
        self._build_view_menu()
        self._build_docks()
        host.menu("&Help").addAction(self._action("&Keyboard shortcuts", self.show_shortcuts, ("F1",)))

    def _action(self, text: str, slot: Callable[[], object], keys: tuple[str, ...] = ()) -> QAction:
        return self.host.action(text, slot, keys)

    def _build_edit_menu(self) -> None:
        ctl = self.ctl
        menu = self.host.menu("&Edit")
        self.undo_action = self._action("&Undo", ctl.undo, ("Ctrl+Z",))
        self.redo_action = self._action("&Redo", ctl.redo, ("Ctrl+Shift+Z", "Ctrl+Y"))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        ctl.stack.canUndoChanged.connect(self.undo_action.setEnabled)
        ctl.stack.canRedoChanged.connect(self.redo_action.setEnabled)
        ctl.stack.undoTextChanged.connect(self._on_undo_text)
        ctl.stack.redoTextChanged.connect(self._on_redo_text)
        menu.addAction(self.undo_action)
        menu.addAction(self.redo_action)
        menu.addSeparator()
        self.copy_action = self._action("&Copy shapes", ctl.copy_selected, ("Ctrl+C",))
        self.paste_action = self._action("&Paste shapes", ctl.paste, ("Ctrl+V",))
        self.duplicate_action = self._action("D&uplicate shapes", ctl.duplicate, ("Ctrl+D",))
        self.previous_action = self._action("Copy shapes from &previous image", ctl.copy_from_previous,
                                            ("Ctrl+Shift+V",))
        self.delete_action = self._action("&Delete selected shapes", partial(ctl.delete_selected, True), ("Del",))
        self.group_action = self._action("&Group into one object", ctl.group_selected, ("Ctrl+G",))
        self.ungroup_action = self._action("U&ngroup", ctl.ungroup_selected, ("Ctrl+Shift+G",))
        for act in (self.copy_action, self.paste_action, self.duplicate_action, self.previous_action,
                    self.delete_action, self.group_action, self.ungroup_action):
            menu.addAction(act)
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

    def _build_view_menu(self) -> None:
        ctl, menu = self.ctl, self.host.menu("&View")
        menu.addSeparator()
        self.hide_action = self._action("&Hide / show annotations", ctl.toggle_hide_all, ("Ctrl+H",))
        menu.addAction(self.hide_action)
        self.names_action = self._toggle(menu, "Category &names on the canvas", "view/names", False,
                                         ctl.set_names_visible)
        self.keep_zoom_action = self._toggle(menu, "&Keep zoom on the next image", "view/keep_zoom", False,
                                             self._set_keep_zoom)
        self.wheel_action = self._toggle(menu, "&Wheel scrolls, Ctrl+wheel zooms (labelme)", "view/wheel_scrolls",
                                         False, self._set_wheel_scrolls)
        menu.addAction(self._action("&Brightness / contrast…", self.show_levels))

    def _toggle(self, menu: QMenu, text: str, key: str, default: bool, apply: Callable[[bool], None]) -> QAction:
        act = QAction(text, self.host.widget)
        act.setCheckable(True)
        value = settings().value(key, default)
        on = value if isinstance(value, bool) else str(value).lower() == "true"
        act.setChecked(on)
        apply(on)
        act.toggled.connect(partial(self._on_toggled, key, apply))
        menu.addAction(act)
        return act

    @staticmethod
    def _on_toggled(key: str, apply: Callable[[bool], None], on: bool) -> None:
        apply(on)
        s = settings()
        s.setValue(key, on)
        s.sync()

    def _set_keep_zoom(self, on: bool) -> None:
        self.ctl.canvas.keep_view = on

    def _set_wheel_scrolls(self, on: bool) -> None:
        self.ctl.canvas.wheel_scrolls = on

    def show_levels(self) -> QDialog:
        """Brightness / contrast of the displayed image (display only; the data never changes)."""
        canvas = self.ctl.canvas
        dlg = QDialog(self.host.widget)
        dlg.setWindowTitle("Brightness / contrast")
        dlg.setObjectName("levels_dialog")
        b0, c0 = canvas.levels()
        self.brightness = QSlider(Qt.Orientation.Horizontal, dlg)
        self.brightness.setRange(-100, 100)
        self.brightness.setValue(round(b0 * 100))
        self.contrast = QSlider(Qt.Orientation.Horizontal, dlg)
        self.contrast.setRange(10, 300)
        self.contrast.setValue(round(c0 * 100))
        for sl in (self.brightness, self.contrast):
            sl.valueChanged.connect(self._on_levels)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Reset | QDialogButtonBox.StandardButton.Close, dlg)
        buttons.rejected.connect(dlg.reject)
        buttons.button(QDialogButtonBox.StandardButton.Reset).clicked.connect(self._on_levels_reset)
        form = QFormLayout(dlg)
        form.addRow("Brightness", self.brightness)
        form.addRow("Contrast", self.contrast)
        form.addRow(buttons)
        dlg.open()
        self.levels_dialog = dlg
        return dlg

    def _on_levels(self) -> None:
        self.ctl.canvas.set_levels(self.brightness.value() / 100.0, self.contrast.value() / 100.0)

    def _on_levels_reset(self) -> None:
        self.brightness.setValue(0)
        self.contrast.setValue(100)

    def context_menu(self, categories: list[Category]) -> QMenu:
        """The canvas's right-click menu (the same actions as the Edit menu, so the shortcuts show)."""
        menu = QMenu(self.host.widget)
        menu.setObjectName("canvas_context_menu")
        for act in (self.copy_action, self.paste_action, self.duplicate_action, self.delete_action):
            menu.addAction(act)
        menu.addSeparator()
        menu.addAction(self.group_action)
        menu.addAction(self.ungroup_action)
        label = menu.addMenu("&Label as")
        for cat in categories:
            act = label.addAction(cat.name)
            act.triggered.connect(partial(self._on_label_as, cat.id))
        menu.addSeparator()
        menu.addAction(self.hide_action)
        menu.addAction(self.previous_action)
        return menu

    def _on_label_as(self, category_id: int, _checked: bool = False) -> None:
        self.ctl.relabel_selected(category_id)

    def _on_undo_text(self, text: str) -> None:
        self.undo_action.setText(f"&Undo {text}".strip())

    def _on_redo_text(self, text: str) -> None:
        self.redo_action.setText(f"&Redo {text}".strip())

    def _build_docks(self) -> None:
        ctl, host = self.ctl, self.host
        self.undo_view = QUndoView(ctl.stack)
        self.undo_view.setEmptyLabel("<project opened>")
        # one tab group on the right (joining a panel already there) keeps the window usable on 768 px screens
        self.labels_dock: QDockWidget = host.add_dock("Labels", ctl.labels)
        self.objects_dock = host.add_dock("Objects", ctl.objects)
        self.tags_dock = host.add_dock("Tags", ctl.tags)
        self.history_dock = host.add_dock("History", self.undo_view)
        self.labels_dock.raise_()
        self.edit_menu.addAction(self._action("&History", self.show_history))

    def show_history(self) -> None:
        self.history_dock.show()
        self.history_dock.raise_()

    def show_error(self, message: str) -> None:
        """Visible at once: the banner stays until dismissed, the status bar repeats it."""
        self.banner.show_message(f"{message}\nThe canvas shows what is saved; every edit saved before is intact.")
        self.host.show_status(f"NOT SAVED: {message}", 0)

    # -- help -----------------------------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str]]:
        rows = []
        for act in self.host.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if keys:
                rows.append((keys, act.text().replace("&", "")))
        return rows + list(GESTURES)

    def show_shortcuts(self) -> QDialog:
        dlg = QDialog(self.host.widget)
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
