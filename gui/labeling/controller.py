"""Interactive labeling: the controller that ties tools, commands, panels and the canvas together.

``LabelingController(session, canvas, host)`` is all the main window creates: it owns the annotation
layer on the canvas, the undo stack (``CommandRunner``), the tools the canvas delegates to, the Labels /
Tags / History docks, and the actions (built in ``gui.labeling.actions``). It follows the session (project
opened, image changed, store changed by an import) and never sees the window. Every edit goes
``tool -> command -> store commit -> refresh from the store``, so the canvas never shows an edit the store
does not hold; a refused write shows a banner and the canvas is rebuilt from the store.

Objects (shapes sharing a group id) are selected, moved, deleted, copied and relabelled as one; Ctrl+G /
Ctrl+Shift+G group and ungroup. The clipboard holds shapes (not pixels of the image); pasting onto another
image clips them to it and gives the pasted objects new group ids. Hiding (all, or per category) is a
display choice and never changes data. Del acts only when the canvas or the Objects list has the focus.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QPoint, QPointF
from PySide6.QtWidgets import QApplication

from engine.project.shapes import Annotation, Geometry
from engine.project.store import Category, Store, StoreError
from gui.canvas.annotation_layer import AnnotationLayer, object_key
from gui.canvas.image_loader import ImageLoader
from gui.canvas.items import AnnotationItem, HandleOverlay, MaskItem
from gui.canvas.view import CanvasView
from gui.labeling.actions import LabelingUi
from gui.labeling.commands import (
    AddAnnotations,
    Change,
    CommandRunner,
    DeleteAnnotations,
    Relabel,
    StoreCommand,
    UpdateGeometry,
)
from gui.labeling.labels_panel import LabelsPanel
from gui.labeling.object_actions import ObjectActions
from gui.labeling.objects_panel import ObjectsPanel
from gui.labeling.select_tool import SelectTool
from gui.labeling.stroke_command import PaintStroke, stroke_command
from gui.labeling.tags_panel import TagsPanel
from gui.labeling.tools import BoxTool, BrushTool, LineTool, PointTool, PolygonTool, Tool
from gui.session import Session
from gui.widgets.docks import DockHost

BULK_FETCH = 50  # above this many changed annotations, re-read the whole image in one query
MIN_RADIUS, MAX_RADIUS = 1.0, 500.0


class LabelingController(QObject, ObjectActions):
    """Implements ``gui.labeling.host.LabelingHost`` for the tools and panels."""

    def __init__(self, session: Session, canvas: CanvasView, host: DockHost) -> None:
        super().__init__(session)
        self.session, self.canvas, self.host = session, canvas, host
        self.layer = AnnotationLayer(canvas.scene())
        self.runner = CommandRunner(self)
        self.stack = self.runner.stack
        self.category_id: int | None = None
        self.brush_radius = 8.0
        self._sizes: dict[int, tuple[int, int]] = {}
        self._last_image: int | None = None  # image of the last announced change (undo jumps there)
        self.overlay = HandleOverlay()
        self.canvas.scene().addItem(self.overlay)
        self.select_tool = SelectTool(self)
        self.tools: dict[str, Tool] = {"select": self.select_tool, "box": BoxTool(self),
                                       "polygon": PolygonTool(self), "point": PointTool(self),
                                       "line": LineTool(self), "brush": BrushTool(self),
                                       "eraser": BrushTool(self, erase=True)}
        self.tool: Tool = self.select_tool
        self.clipboard: list[Annotation] = []
        self._previous_image: int | None = None  # the image shown before this one ("copy from previous")
        self._shown_image: int | None = None
        self.labels = LabelsPanel(self)
        self.tags = TagsPanel(self)
        self.objects = ObjectsPanel(self)
        self.ui = LabelingUi(self, host)
        self.runner.changed.connect(self._on_changed)
        self.runner.failed.connect(self._on_failed)
        self.stack.indexChanged.connect(self._on_index_changed)
        self.canvas.scene().selectionChanged.connect(self._on_selection_changed)
        self.canvas.zoom_changed.connect(self._on_zoom_changed)
        self.canvas.context_menu.connect(self._on_context_menu)
        ImageLoader.of(canvas).image_failed.connect(self._on_image_failed)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_changed.connect(self._on_image_changed)
        session.store_changed.connect(self._on_store_changed)
        session.tags_changed.connect(self._on_tags_changed)  # e.g. accepted tag suggestions
        session.tag_scores.connect(self.tags.set_scores)  # a tagger's scores next to the tags
        self.set_tool("select")
        if session.store is not None:
            self._on_project_opened(session.store)

    # -- state ----------------------------------------------------------------------------------
    @property
    def store(self) -> Store | None:
        return self.session.store

    @property
    def image_id(self) -> int | None:
        return self.session.image_id

    def has_image(self) -> bool:
        """An image of the open project is on the canvas (tools do nothing otherwise)."""
        if self.store is None or self.image_id is None or self.canvas.image_size()[0] <= 0:
            return False
        try:
            self.image_size()
        except StoreError:
            return False
        return True

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the current image as stored (the frame masks and clamping use)."""
        assert self.store is not None and self.image_id is not None
        if self.image_id not in self._sizes:
            rec = self.store.image(self.image_id)
            self._sizes[self.image_id] = (rec.width, rec.height)
        return self._sizes[self.image_id]

    def category(self) -> Category | None:
        if self.store is None or self.category_id is None:
            return None
        try:
            return self.store.category(self.category_id)
        except StoreError:
            return None

    def _on_project_opened(self, store: Store) -> None:
        """A (new) project: the history starts afresh."""
        self.tool.cancel()
        self.runner.set_store(store)
        self._sizes.clear()
        self.layer.clear()
        self.clipboard.clear()
        self._previous_image = self._shown_image = None
        self.layer.hidden_categories.clear()
        cats = store.categories()
        self.category_id = cats[0].id if cats else None
        self.labels.refresh()
        self.tags.refresh()
        self.update_handles()

    def _on_project_closed(self) -> None:
        self.tool.cancel()
        self.runner.set_store(None)
        self.layer.clear()

    def _on_store_changed(self) -> None:
        """The store changed outside the undo stack (an import): re-read categories, tags and shapes."""
        self.refresh_panels()
        self.reload()

    def _on_tags_changed(self, image_ids: set[int]) -> None:
        if not image_ids or self.image_id in image_ids:
            self.tags.refresh()

    def refresh_panels(self) -> None:
        """Re-read categories and tags after the store changed outside the undo stack (an import job)."""
        if self.store is not None:
            self.layer.set_categories(self.store.categories())
        self.labels.refresh()
        self.tags.refresh()

    # -- tools --------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        self.tool.deactivate()
        self.tool = self.tools[name]
        self.canvas.tool = self.tool
        self.tool.activate()
        self.ui.tool_actions[name].setChecked(True)
        self.update_handles()

    def escape(self) -> None:
        """Esc: cancel a half-drawn shape, else go back to the select tool, else clear the selection."""
        if self.tool.cancel():
            return
        if self.tool is not self.select_tool:
            self.set_tool("select")
        else:
            self.layer.clear_selection()

    def change_radius(self, factor: float) -> None:
        r = self.brush_radius
        r = r * factor if abs(r * factor - r) >= 1 else r + (1 if factor > 1 else -1)
        self.brush_radius = float(min(MAX_RADIUS, max(MIN_RADIUS, round(r))))
        for name in ("brush", "eraser"):
            tool = self.tools[name]
            if isinstance(tool, BrushTool):
                tool.update_ring()
        self.status(f"Brush radius {self.brush_radius:g} px")

    def primary_item(self) -> AnnotationItem | None:
        """The part whose handles show: the one selected shape, or the editable part of the one selected object."""
        sel = self.layer.selected_items() if self.tool is self.select_tool else []
        if len(sel) == 1:
            return sel[0]
        if len(sel) > 1 and len({object_key(i.annotation) for i in sel}) == 1:
            editable = [i for i in sel if len(i.handle_points())]
            if len(editable) == 1:
                return editable[0]
        return None

    def update_handles(self) -> None:
        item = self.primary_item()
        if item is not None:
            self.overlay.set_points(item.handle_points(), self.select_tool.active_index(item))
        else:
            self.overlay.set_points(np.zeros((0, 2)))

    def mask_target(self, pos: QPointF, erase: bool) -> int | None:
        """The mask a brush/eraser stroke at ``pos`` goes into: the selected one, else (eraser) the one under it."""
        masks = [i for i in self.layer.selected_items() if isinstance(i, MaskItem)]
        if len(masks) == 1:
            return int(masks[0].data(0))
        if erase:
            item = self.layer.item_at(pos)
            if isinstance(item, MaskItem):
                return int(item.data(0))
            for it in self.canvas.scene().items(pos):
                if isinstance(it, MaskItem) and self.layer.items.get(int(it.data(0))) is it:
                    return int(it.data(0))
        return None

    # -- edits (tools and panels call these) -------------------------------------------------
    def execute(self, build: Callable[[], StoreCommand | None]) -> StoreCommand | None:
        """Build a command (reads may fail) and commit it; None if refused or if it would change nothing."""
        try:
            cmd = build()
        except Exception as e:  # a refused edit is reported, never half-applied
            self.runner.failed.emit(f"Edit refused: {e}")
            return None
        return None if cmd is None else self.runner.execute(cmd)

    def require_category(self) -> int:
        if self.category() is None:
            raise StoreError("no category to label with: add one in the Labels panel")
        assert self.category_id is not None
        return self.category_id

    def add_shape(self, geometry: Geometry, text: str) -> None:
        image_id = self.image_id
        assert image_id is not None
        cmd = self.execute(lambda: AddAnnotations(
            self.runner, [Annotation(image_id, self.require_category(), geometry)], text))
        if isinstance(cmd, AddAnnotations):
            self.layer.select(cmd.ids)

    def update_geometry(self, changes: list[tuple[int, Geometry, Geometry]], text: str) -> None:
        image_id = self.image_id
        assert image_id is not None
        self.execute(lambda: UpdateGeometry(self.runner, changes, image_id, text))

    def paint(self, points: np.ndarray, erase: bool, target_id: int | None) -> None:
        """One brush/eraser stroke ((N, 2) image pixels) into ``target_id`` (None: a new mask)."""
        store, image_id = self.store, self.image_id
        assert store is not None and image_id is not None
        w, h = self.image_size()

        def build() -> PaintStroke | None:
            target = store.annotation(target_id) if target_id is not None else None
            cat = None if target is not None else self.require_category()
            return stroke_command(self.runner, image_id, (h, w), points, self.brush_radius, erase, target, cat)

        cmd = self.execute(build)
        if isinstance(cmd, PaintStroke) and cmd.ann_id is not None and cmd.exists_after:
            self.layer.select([cmd.ann_id])

    def _shapes_have_focus(self) -> bool:
        """Del and the arrow keys act on shapes only when the canvas (or the Objects list) has the focus."""
        w = QApplication.focusWidget()
        if w is None or QApplication.activePopupWidget() is not None:  # none, or our right-click menu
            return True
        allowed = (self.canvas, self.canvas.viewport(), self.objects.tree, self.objects.tree.viewport())
        return any(w is a for a in allowed)

    def delete_selected(self, from_key: bool = False) -> None:
        if from_key and not self._shapes_have_focus():
            return  # e.g. the image list has the focus: Del is not for the canvas's shapes
        ids = self.layer.selected_ids()
        if not ids:
            self.status("Nothing selected to delete")
            return
        self.execute(lambda: DeleteAnnotations(self.runner, ids, "Delete" if len(ids) == 1 else f"Delete {len(ids)}"))

    def select_all(self) -> None:
        self.layer.select(list(self.layer.items))

    def pick_category(self, index: int) -> None:
        """Keys 1-9: the ``index``-th category labels new shapes and relabels the selection."""
        cats = self.store.categories() if self.store else []
        if index >= len(cats):
            self.status(f"No category {index + 1}")
            return
        self.set_category(cats[index].id)
        ids = self.layer.selected_ids()
        if ids:
            self.relabel(ids, cats[index].id)

    def set_category(self, category_id: int) -> None:
        self.category_id = category_id
        self.labels.show_current(category_id)
        cat = self.category()
        self.status(f"Label: {cat.name}" if cat else "")

    def relabel_selected(self, category_id: int) -> None:
        ids = self.layer.selected_ids()
        if ids:
            self.relabel(ids, category_id)

    def relabel(self, ann_ids: list[int], category_id: int) -> None:
        """Relabel annotations and the other members of their objects (same ``group_id``)."""
        groups = {self.layer.items[i].annotation.group_id for i in ann_ids if i in self.layer.items} - {None}
        ids = set(ann_ids) | {k for k, it in self.layer.items.items() if it.annotation.group_id in groups}
        todo = sorted(k for k in ids if k not in self.layer.items or
                      self.layer.items[k].annotation.category_id != category_id)
        if todo:
            self.execute(lambda: Relabel(self.runner, todo, category_id))

    # -- context menu -------------------------------------------------------------------------------
    def _on_context_menu(self, global_pos: QPoint, pos: QPointF) -> None:
        if self.tool is not self.select_tool and self.tool.cancel():
            return
        item = self.layer.item_at(pos)
        if item is not None and not item.isSelected():
            self.layer.select(self.layer.object_ids(int(item.data(0))))
        self.context_menu = menu = self.ui.context_menu(self.store.categories() if self.store else [])
        menu.popup(global_pos)

    def undo(self) -> None:
        self.tool.cancel()
        self.runner.undo()

    def redo(self) -> None:
        self.tool.cancel()
        self.runner.redo()

    # -- feedback -----------------------------------------------------------------------------
    def status(self, text: str) -> None:
        self.host.show_status(text, 5000)

    def show_error(self, message: str) -> None:
        self.ui.show_error(message)

    def reload_annotations(self) -> None:
        """Show the current image's annotations from the store (and let the image list count them)."""
        store, image_id = self.store, self.image_id
        if store is None or image_id is None:
            return
        self.layer.show(store.annotations(image_id), store.categories())
        self.objects.refresh()
        self.session.notify_annotations({image_id})

    def reload(self) -> None:
        """Rebuild the current image's items from the store, keeping the selection that still exists."""
        selected = self.layer.selected_ids()
        self.reload_annotations()
        self.layer.select([i for i in selected if i in self.layer.items])
        self.update_handles()

    def _on_failed(self, message: str) -> None:
        self.tool.cancel()
        self.show_error(message)
        self.reload()
        self.labels.refresh()
        self.tags.refresh()

    def _on_changed(self, change: Change) -> None:
        store, image_id = self.store, self.image_id
        if store is None:
            return
        if not self.runner.replaying and not change.categories and len(change.image_ids) == 1:
            self._last_image = next(iter(change.image_ids))  # an undo/redo: show its image afterwards
        if change.categories:
            self.layer.set_categories(store.categories())
            self.reload()
            self.labels.refresh()
        elif image_id is not None and image_id in change.image_ids and change.ann_ids:
            self._sync(store, image_id, change.ann_ids)
        if change.ann_ids:
            self.labels.refresh_counts()
            self._refresh_counts(change.image_ids - {image_id})
        if change.tags:
            self.tags.refresh()
            self.session.notify_tags(change.image_ids)

    def _sync(self, store: Store, image_id: int, ann_ids: set[int]) -> None:
        if len(ann_ids) > BULK_FETCH:
            rows = {int(a.id): a for a in store.annotations(image_id) if a.id in ann_ids}
            fresh: dict[int, Annotation | None] = {i: rows.get(i) for i in ann_ids}
        else:
            fresh = {}
            for i in ann_ids:
                try:
                    a = store.annotation(i)
                    fresh[i] = a if a.image_id == image_id else None
                except StoreError:
                    fresh[i] = None
        self.layer.sync(fresh)
        self.objects.refresh()
        self._refresh_counts({image_id})
        self.update_handles()

    def _refresh_counts(self, image_ids: set[int]) -> None:
        """The image list counts objects (shapes sharing a group are one), like on load."""
        self.session.notify_annotations(image_ids)

    def _on_index_changed(self, _index: int) -> None:
        """After an undo/redo on another image, show that image so the user sees what changed."""
        target, self._last_image = self._last_image, None
        if target is not None and target != self.image_id:
            self.session.request_image(target)

    def _on_selection_changed(self) -> None:
        if self.layer.in_batch:
            return
        self.layer.update_selected_look()
        self.objects.show_selection()
        sel = self.layer.selected_items()
        av = self.select_tool.active_vertex
        if av is not None and not (len(sel) == 1 and int(sel[0].data(0)) == av[0]):
            self.select_tool.active_vertex = None
        self.update_handles()

    def _on_zoom_changed(self, zoom: float) -> None:
        self.overlay.set_zoom(zoom)

    def _on_image_failed(self, image_id: int, _message: str) -> None:
        """The image cannot be shown: nothing of it is drawn, and nothing can be drawn on it."""
        self.tool.cancel()
        self.layer.clear()
        self.objects.refresh()
        self.update_handles()

    def _on_image_changed(self, image_id: int | None) -> None:
        self.tool.cancel()
        self.select_tool.active_vertex = None
        if self._shown_image is not None and self._shown_image != image_id:
            self._previous_image = self._shown_image
        self._shown_image = image_id
        self.layer.clear()
        if image_id is not None and self.canvas.image_size()[0] > 0:  # not when the file is unreadable
            self.reload_annotations()
        else:
            self.objects.refresh()
        self.update_handles()
        self.tags.refresh()
