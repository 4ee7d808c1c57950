"""Object, clipboard and visibility actions of the labeling controller (mixed into ``LabelingController``).

Ctrl+G / Ctrl+Shift+G group and ungroup the selection; arrow keys nudge it; Ctrl+C / Ctrl+V / Ctrl+D and
"copy from previous image" paste shapes (clipped to the image, pasted objects get new group ids); Ctrl+H and
the per-category checkboxes hide shapes (a display choice: data never changes). Every edit goes through the
controller's ``execute`` / ``update_geometry`` as one undoable command.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.project.geometry import fit_geometry, move_delta, translate
from engine.project.shapes import Annotation, Geometry
from engine.project.store import Store, StoreError
from gui.canvas.annotation_layer import AnnotationLayer
from gui.canvas.items import MaskItem
from gui.labeling.commands import AddAnnotations, CommandRunner, SetGroups, StoreCommand
from gui.labeling.objects_panel import ObjectsPanel

DUPLICATE_OFFSET = 10.0  # px a duplicate lands from its original


class ObjectActions:
    """Uses the controller's layer, runner, objects panel, clipboard and its ``execute``, ``update_geometry``,
    ``status``, ``show_error``, ``has_image``, ``image_size`` and ``update_handles``."""

    layer: AnnotationLayer
    runner: CommandRunner
    objects: ObjectsPanel
    clipboard: list[Annotation]
    _previous_image: int | None
    store: Store | None
    image_id: int | None
    execute: Callable[[Callable[[], StoreCommand | None]], StoreCommand | None]
    update_geometry: Callable[[list[tuple[int, Geometry, Geometry]], str], None]
    status: Callable[[str], None]
    show_error: Callable[[str], None]
    has_image: Callable[[], bool]
    image_size: Callable[[], tuple[int, int]]
    update_handles: Callable[[], None]

    # -- objects ------------------------------------------------------------------------------------
    def group_selected(self) -> None:
        """Ctrl+G: the selected shapes become one object (a new group id)."""
        ids = self.layer.selected_ids()
        store = self.store
        if len(ids) < 2 or store is None:
            self.status("Select two or more shapes to group them")
            return
        self.execute(lambda: SetGroups(self.runner, ids, store.next_group_id(), f"Group {len(ids)} shapes"))

    def ungroup_selected(self) -> None:
        """Ctrl+Shift+G: every selected shape becomes its own object."""
        ids = [i for i in self.layer.selected_ids() if self.layer.items[i].annotation.group_id is not None]
        if not ids:
            self.status("Nothing grouped is selected")
            return
        self.execute(lambda: SetGroups(self.runner, ids, None, f"Ungroup {len(ids)} shapes"))

    def nudge(self, dx: float, dy: float) -> None:
        """Arrow keys: move the selection by (dx, dy) px, kept inside the image; one undoable step."""
        items = self.layer.selected_items()
        if not items or not self.has_image():
            return
        boxes = np.array([i.annotation.bbox() for i in items])
        bounds = np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])
        masks = any(isinstance(i, MaskItem) for i in items)
        dx, dy = move_delta(bounds, dx, dy, *self.image_size(), whole_pixels=masks)
        if (dx, dy) == (0.0, 0.0):
            return
        changes = [(int(i.data(0)), i.annotation.geometry, translate(i.annotation.geometry, dx, dy)) for i in items]
        self.update_geometry(changes, "Nudge")

    # -- clipboard ----------------------------------------------------------------------------------
    def copy_selected(self) -> None:
        items = self.layer.selected_items()
        if not items:
            self.status("Nothing selected to copy")
            return
        self.clipboard = [i.annotation for i in items]
        self.status(f"Copied {len(items)} shape{'s' if len(items) != 1 else ''}")

    def paste(self) -> None:
        if not self.clipboard:
            self.status("Nothing to paste: copy shapes first (Ctrl+C)")
            return
        self._paste(self.clipboard, (0.0, 0.0), "Paste")

    def duplicate(self) -> None:
        """Ctrl+D: copies of the selected shapes, a few pixels away, selected."""
        items = self.layer.selected_items()
        if not items:
            self.status("Nothing selected to duplicate")
            return
        self._paste([i.annotation for i in items], (DUPLICATE_OFFSET, DUPLICATE_OFFSET), "Duplicate")

    def copy_from_previous(self) -> None:
        """Every shape of the image shown before this one, pasted here (labelme's "copy previous")."""
        store, prev = self.store, self._previous_image
        if store is None or prev is None:
            self.status("No previous image to copy from")
            return
        try:
            anns = store.annotations(prev)
        except StoreError as e:
            self.show_error(str(e))
            return
        if not anns:
            self.status("The previous image has no shapes")
            return
        self._paste(anns, (0.0, 0.0), "Copy from previous image")

    def _paste(self, anns: list[Annotation], offset: tuple[float, float], text: str) -> None:
        store, image_id = self.store, self.image_id
        if store is None or image_id is None or not self.has_image():
            return
        w, h = self.image_size()
        known = {c.id for c in store.categories()}

        def build() -> AddAnnotations | None:
            groups: dict[int, int] = {}
            base = store.next_group_id()
            out = []
            boxes = np.array([a.bbox() for a in anns])
            bounds = np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])
            dx, dy = move_delta(bounds, *offset, w, h, whole_pixels=True) if offset != (0.0, 0.0) else offset
            for a in anns:
                if a.category_id not in known:
                    continue
                g = fit_geometry(translate(a.geometry, dx, dy) if (dx, dy) != (0.0, 0.0) else a.geometry, w, h)
                if g is None:
                    continue
                gid = None if a.group_id is None else groups.setdefault(a.group_id, base + len(groups))
                out.append(Annotation(image_id, a.category_id, g, "manual", None, gid, dict(a.attributes)))
            if not out:
                raise StoreError("none of the shapes fits on this image")
            return AddAnnotations(self.runner, out, f"{text} {len(out)} shape{'s' if len(out) != 1 else ''}")

        cmd = self.execute(build)
        if isinstance(cmd, AddAnnotations):
            self.layer.select(cmd.ids)

    # -- visibility ---------------------------------------------------------------------------------
    def toggle_hide_all(self) -> None:
        self.layer.set_visible(not self.layer.visible)
        self.objects.refresh()
        self.update_handles()
        self.status("Annotations shown" if self.layer.visible else "Annotations hidden (Ctrl+H shows them)")

    def set_category_visible(self, category_id: int, on: bool) -> None:
        self.layer.set_category_visible(category_id, on)
        self.objects.refresh()
        self.update_handles()

    def set_names_visible(self, on: bool) -> None:
        self.layer.set_names_visible(on)
