"""Undoable edits of the project store, and the runner that makes them crash-proof.

Every edit is a ``StoreCommand``: ``apply()`` / ``revert()`` change the store inside ONE
transaction and raise on failure (nothing written). ``CommandRunner.execute`` applies a command
first and pushes it on the ``QUndoStack`` only once it is committed, so a failed write never shows
as done; when an undo/redo from the stack (Ctrl+Z, the History view) fails, the runner puts the
stack back at the last index that matches the store. Commands keep deltas, never whole images.
Category commands live in ``gui.labeling.category_commands``; brush strokes in ``gui.labeling.stroke_command``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.project.shapes import Annotation, Geometry
from engine.project.store import Store, StoreError


@dataclass
class Change:
    """What a command touched, so views refresh only that (image ids, annotation ids, flags)."""

    image_ids: set[int] = field(default_factory=set)
    ann_ids: set[int] = field(default_factory=set)
    categories: bool = False
    tags: bool = False


class StoreCommand(QUndoCommand):
    """Base: subclasses implement ``apply``/``revert`` (one transaction each) and ``change``."""

    def __init__(self, runner: CommandRunner, text: str) -> None:
        super().__init__(text)
        if runner.store is None:
            raise StoreError("no project is open")
        self.runner = runner
        self.store: Store = runner.store

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError

    def change(self) -> Change:
        return Change()

    def redo(self) -> None:
        self.runner._step(self, forward=True)

    def undo(self) -> None:
        self.runner._step(self, forward=False)


class CommandRunner(QObject):
    """Owns the QUndoStack. ``changed(Change)`` after every committed step, ``failed(str)`` on a refused one."""

    changed = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store: Store | None = None
        self.stack = QUndoStack(self)
        self._replay = False  # the stack re-runs steps whose store effect is already in place
        self._failure: tuple[int, str] | None = None  # (index consistent with the store, message)
        self.stack.indexChanged.connect(self._on_index_changed)

    @property
    def replaying(self) -> bool:
        """True while the stack re-announces steps (a push, or a resync after a failure)."""
        return self._replay

    def set_store(self, store: Store | None) -> None:
        """A new project: old commands refer to the old store, so the history starts afresh."""
        self.stack.clear()
        self.store = store

    def execute(self, cmd: StoreCommand) -> StoreCommand | None:
        """Commit ``cmd`` to the store, then push it; returns it.

        If the store refuses, emits ``failed`` and returns None: the edit is not on the stack and
        nothing shows it as done.
        """
        try:
            cmd.apply()
        except Exception as e:  # any failure must keep the edit off the stack
            self.failed.emit(f"{cmd.text()} was not saved: {e}")
            return None
        self._replay = True
        try:
            self.stack.push(cmd)  # its redo() only announces the change
        finally:
            self._replay = False
        return cmd

    def undo(self) -> None:
        if self.stack.canUndo():
            self.stack.undo()

    def redo(self) -> None:
        if self.stack.canRedo():
            self.stack.redo()

    # -- called by the stack -------------------------------------------------------------------
    def _step(self, cmd: StoreCommand, forward: bool) -> None:
        if not self._replay:
            if self._failure is not None:
                return  # an earlier step of this batch failed: leave the store alone
            try:
                cmd.apply() if forward else cmd.revert()
            except Exception as e:  # the store rolled back; resync the stack afterwards
                pos = self._position(cmd)
                self._failure = (pos if forward else pos + 1, f"{'Redo' if forward else 'Undo'} {cmd.text()}: {e}")
                return
        self.changed.emit(cmd.change())

    def _position(self, cmd: StoreCommand) -> int:
        for i in range(self.stack.count()):
            if self.stack.command(i) is cmd:
                return i
        return self.stack.index()

    def _on_index_changed(self, _index: int) -> None:
        if self._failure is None:
            return
        good, message = self._failure
        self._failure = None
        self._replay = True  # moving back only re-announces: the store already is at ``good``
        try:
            self.stack.setIndex(good)
        finally:
            self._replay = False
        self.failed.emit(message)


# -- annotation commands ------------------------------------------------------------------------
class AddAnnotations(StoreCommand):
    """Insert annotations; redo re-inserts them with the same ids."""

    def __init__(self, runner: CommandRunner, anns: Iterable[Annotation], text: str = "Add shape") -> None:
        super().__init__(runner, text)
        self.anns = list(anns)
        self.ids: list[int] = []

    def apply(self) -> None:
        with self.store.transaction():
            self.ids = self.store.add_annotations(self.anns)
            if any(a.id is None for a in self.anns):  # first time: keep ids and timestamps for redo
                self.anns = [self.store.annotation(i) for i in self.ids]

    def revert(self) -> None:
        self.store.delete_annotations(self.ids)

    def change(self) -> Change:
        return Change({a.image_id for a in self.anns}, set(self.ids))


class DeleteAnnotations(StoreCommand):
    """Delete annotations; undo restores them with their ids (masks as their RLE, not pixels)."""

    def __init__(self, runner: CommandRunner, ann_ids: Iterable[int], text: str = "Delete") -> None:
        super().__init__(runner, text)
        self.ids = [int(i) for i in ann_ids]
        self.anns: list[Annotation] = []

    def apply(self) -> None:
        self.anns = self.store.delete_annotations(self.ids)

    def revert(self) -> None:
        self.store.add_annotations(self.anns)

    def change(self) -> Change:
        return Change({a.image_id for a in self.anns}, set(self.ids))


class UpdateGeometry(StoreCommand):
    """Replace geometries: ``changes`` = [(ann_id, before, after)] (move, resize, vertex edits)."""

    def __init__(self, runner: CommandRunner, changes: list[tuple[int, Geometry, Geometry]], image_id: int,
                 text: str = "Edit shape") -> None:
        super().__init__(runner, text)
        self.changes = changes
        self.image_id = image_id

    def _write(self, after: bool) -> None:
        with self.store.transaction():
            for ann_id, before, new in self.changes:
                self.store.update_annotation(ann_id, geometry=new if after else before)

    def apply(self) -> None:
        self._write(True)

    def revert(self) -> None:
        self._write(False)

    def change(self) -> Change:
        return Change({self.image_id}, {c[0] for c in self.changes})


class Relabel(StoreCommand):
    """Set the category of annotations; undo restores each one's old category."""

    def __init__(self, runner: CommandRunner, ann_ids: Iterable[int], category_id: int,
                 text: str = "Relabel") -> None:
        super().__init__(runner, text)
        anns = [self.store.annotation(int(i)) for i in ann_ids]
        self.old = {int(a.id): a.category_id for a in anns if a.id is not None}
        self.image_ids = {a.image_id for a in anns}
        self.category_id = category_id

    def _write(self, forward: bool) -> None:
        with self.store.transaction():
            for ann_id, old in self.old.items():
                self.store.update_annotation(ann_id, category_id=self.category_id if forward else old)

    def apply(self) -> None:
        self.store.category(self.category_id)  # clear error if it vanished
        self._write(True)

    def revert(self) -> None:
        self._write(False)

    def change(self) -> Change:
        return Change(set(self.image_ids), set(self.old))


class ToggleTag(StoreCommand):
    """Turn one image-level tag on or off."""

    def __init__(self, runner: CommandRunner, image_id: int, tag_id: int, on: bool, name: str = "") -> None:
        super().__init__(runner, f"{'Tag' if on else 'Untag'} {name}".strip())
        self.image_id, self.tag_id, self.on = image_id, tag_id, on

    def apply(self) -> None:
        self.store.set_image_tag(self.image_id, self.tag_id, self.on)

    def revert(self) -> None:
        self.store.set_image_tag(self.image_id, self.tag_id, not self.on)

    def change(self) -> Change:
        return Change({self.image_id}, tags=True)


class SetGroups(StoreCommand):
    """Group (one new group id) or ungroup (None) annotations; undo restores each one's old group id."""

    def __init__(self, runner: CommandRunner, ann_ids: Iterable[int], group_id: int | None, text: str) -> None:
        super().__init__(runner, text)
        anns = [self.store.annotation(int(i)) for i in ann_ids]
        self.old = {int(a.id): a.group_id for a in anns if a.id is not None}
        self.image_ids = {a.image_id for a in anns}
        self.group_id = group_id

    def apply(self) -> None:
        self.store.set_groups({i: self.group_id for i in self.old})

    def revert(self) -> None:
        self.store.set_groups(dict(self.old))

    def change(self) -> Change:
        return Change(set(self.image_ids), set(self.old))


class RenameTag(StoreCommand):
    def __init__(self, runner: CommandRunner, tag_id: int, name: str) -> None:
        old = next((t for t in runner.store.tags() if t.id == tag_id), None) if runner.store else None
        if old is None:
            raise StoreError(f"no tag with id {tag_id}")
        super().__init__(runner, f"Rename tag {old.name}")
        self.tag_id, self.old, self.new = tag_id, old.name, name.strip()

    def apply(self) -> None:
        self.store.rename_tag(self.tag_id, self.new)

    def revert(self) -> None:
        self.store.rename_tag(self.tag_id, self.old)

    def change(self) -> Change:
        return Change(tags=True)


class DeleteTag(StoreCommand):
    """Delete a tag from the project (and every image); undo restores it on the same images."""

    def __init__(self, runner: CommandRunner, tag_id: int, name: str = "") -> None:
        super().__init__(runner, f"Delete tag {name}".strip())
        self.tag_id = tag_id
        self.tag = None
        self.image_ids: list[int] = []

    def apply(self) -> None:
        self.tag, self.image_ids = self.store.delete_tag(self.tag_id)

    def revert(self) -> None:
        assert self.tag is not None
        self.store.restore_tag(self.tag, self.image_ids)

    def change(self) -> Change:
        return Change(set(self.image_ids), tags=True)
