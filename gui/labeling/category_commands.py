"""Undoable category edits: add, rename/recolor, merge two, delete (with its annotations).

Category ids are stable: undo of a delete or merge re-inserts the category with its old id.
"""

from __future__ import annotations

from engine.project.shapes import Annotation
from engine.project.store import Category
from gui.labeling.commands import Change, CommandRunner, StoreCommand


class AddCategory(StoreCommand):
    def __init__(self, runner: CommandRunner, name: str, color: str | None = None) -> None:
        super().__init__(runner, f"Add category {name}")
        self.name, self.color = name, color
        self.cat: Category | None = None

    def apply(self) -> None:
        if self.cat is None:
            self.cat = self.store.add_category(self.name, self.color)
        else:
            self.store.restore_category(self.cat)

    def revert(self) -> None:
        assert self.cat is not None
        self.store.delete_category(self.cat.id)  # its annotations were undone before this

    def change(self) -> Change:
        return Change(categories=True)


class UpdateCategory(StoreCommand):
    """Rename and/or recolor one category."""

    def __init__(self, runner: CommandRunner, category_id: int, name: str | None = None,
                 color: str | None = None) -> None:
        super().__init__(runner, "")
        self.old = self.store.category(category_id)
        self.setText(f"{'Rename' if name is not None else 'Recolor'} category {self.old.name}")
        self.category_id, self.name, self.color = category_id, name, color

    def apply(self) -> None:
        with self.store.transaction():
            self.store.category(self.category_id)
            if self.name is not None and any(c.name == self.name.strip() and c.id != self.category_id
                                             for c in self.store.categories()):
                raise ValueError(f"a category called {self.name.strip()!r} already exists")
            if self.name is not None and not self.name.strip():
                raise ValueError("category name must not be empty")
            self.store.update_category(self.category_id, self.name, self.color)

    def revert(self) -> None:
        assert self.old is not None
        self.store.update_category(self.category_id, self.old.name, self.old.color)

    def change(self) -> Change:
        return Change(categories=True)


class MergeCategories(StoreCommand):
    """Move every annotation of ``source`` to ``target`` and drop ``source``."""

    def __init__(self, runner: CommandRunner, source_id: int, target_id: int) -> None:
        super().__init__(runner, "")
        if source_id == target_id:
            raise ValueError("cannot merge a category into itself")
        self.source = self.store.category(source_id)
        self.target = self.store.category(target_id)
        self.setText(f"Merge {self.source.name} into {self.target.name}")
        self.moved: list[int] = []

    def apply(self) -> None:
        with self.store.transaction():
            self.store.category(self.target.id)
            self.moved = self.store.merge_categories(self.source.id, self.target.id)

    def revert(self) -> None:
        with self.store.transaction():
            self.store.restore_category(self.source)
            for ann_id in self.moved:
                self.store.update_annotation(ann_id, category_id=self.source.id)

    def change(self) -> Change:
        return Change(set(), set(self.moved), categories=True)  # counts per image do not change


class DeleteCategory(StoreCommand):
    """Delete a category and all its annotations; undo restores both with their ids."""

    def __init__(self, runner: CommandRunner, category_id: int) -> None:
        super().__init__(runner, "")
        self.cat = self.store.category(category_id)
        self.setText(f"Delete category {self.cat.name}")
        self.anns: list[Annotation] = []

    def apply(self) -> None:
        self.anns = self.store.delete_category(self.cat.id)

    def revert(self) -> None:
        with self.store.transaction():
            self.store.restore_category(self.cat)
            self.store.add_annotations(self.anns)

    def change(self) -> Change:
        return Change({a.image_id for a in self.anns}, {int(a.id) for a in self.anns if a.id is not None},
                      categories=True)
