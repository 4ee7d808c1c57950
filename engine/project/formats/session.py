"""The import session: commits parsed units into a project, ONE transaction per annotation file.

A unit that fails leaves the project unchanged: its rows roll back and the image files it copied
are removed again. A file seen before (same content digest, or same path) is skipped unless
``replace``, which deletes the annotations of the earlier import (provenance ``import:<file>``)
and imports the file again.

Images: a file already inside the project folder stays where it is; any other is copied to
``<project>/images/<source-name>/<its path relative to the dataset's image root>`` (a numbered
suffix avoids clobbering a different file). An image whose content (sha1) is already in the
project is reused (with a warning when the names differ), so several formats of one dataset
attach to the same image rows.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from engine.project.shapes import Annotation
from engine.project.store import PALETTE, SPLITS, Category, Store

from .common import (
    CancelCheck,
    FormatError,
    ImportOptions,
    ImportReport,
    ParsedImage,
    Progress,
    Unit,
    inside,
    never_cancel,
    no_progress,
    sha1_file,
)


class ImportSession:
    """Commits parsed units into one store, one transaction per unit, and keeps the report."""

    def __init__(self, store: Store, fmt: str, root: Path, options: ImportOptions,
                 progress: Progress = no_progress, cancelled: CancelCheck = never_cancel) -> None:
        self.store = store
        self.fmt = fmt
        self.root = root.resolve()  # the dataset folder; its name is the <source-name>
        self.options = options
        self.progress = progress
        self.cancelled = cancelled
        self.report = ImportReport(fmt, str(root))
        self.preferred_ids: dict[str, int] = {}  # category name -> id to use if free (COCO)
        # caches, so that a 100k-file import never scans a table per file
        self._by_hash: dict[str, str] = {h: p for p, h in store.conn.execute(
            "SELECT path, hash FROM images WHERE hash != '' ORDER BY id DESC")}
        self._sources: set[str] = {r[0] for r in store.conn.execute("SELECT source FROM imports")}
        self._seen_ann_id, self._group_floor = 0, 1
        if options.split is not None and options.split not in SPLITS:
            raise FormatError(f"unknown split {options.split!r}; expected one of {', '.join(SPLITS)}")

    def warn(self, file: Path | str, message: str) -> None:
        self.report.warnings.append((str(file), message))

    def error(self, file: Path | str, message: str) -> None:
        self.report.errors.append((str(file), message))

    def run(self, files: list[Path], parse: Callable[[Path], Unit | None]) -> ImportReport:
        """Parse and commit each file; errors are reported per file and never stop the others."""
        total = len(files)
        for i, f in enumerate(files):
            if self.cancelled():
                self.report.cancelled = True
                break
            self.progress(i, total, f.name)
            try:
                unit = parse(f)
                if unit is not None:
                    self.commit(unit)
            except FormatError as e:
                self.error(f, str(e))
            except Exception as e:  # a bug or I/O failure in one file must not lose the others
                self.error(f, f"{type(e).__name__}: {e}")
        self.progress(total, total, "done")
        return self.report

    def commit(self, unit: Unit) -> None:
        source = unit.file.resolve().as_posix()
        earlier, same = self._earlier_import(source, unit.digest)
        if earlier and not self.options.replace:
            if not same:
                why = "imported before and changed since; choose replace to import the new version"
            else:
                why = ("already imported" if earlier == source else f"already imported (as {earlier})") + \
                    "; choose replace to import it again"
            self.report.skipped.append((str(unit.file), why))
            return
        created: list[Path] = []
        hashes: dict[str, str] = {}
        try:
            placed = [self._place(img, created, hashes, unit.file) for img in unit.images]
            n_img, n_ann = self._write(unit, source, earlier, placed)
        except BaseException:
            for p in created:
                p.unlink(missing_ok=True)
            raise
        self._by_hash.update(hashes)
        self._sources.add(source)
        self.report.imported.append(str(unit.file))
        self.report.images += n_img
        self.report.annotations += n_ann

    def _earlier_import(self, source: str, dig: str) -> tuple[str | None, bool]:
        """(source of an earlier import of this content or path, whether the content is the same)."""
        found = self.store.find_import(dig)
        if found:
            return found, True
        return (source, False) if source in self._sources else (None, False)

    def _write(self, unit: Unit, source: str, earlier: str | None, placed: list[str]) -> tuple[int, int]:
        s = self.store
        provenance = f"import:{source}"
        n_img = n_ann = 0
        with s.transaction():
            if earlier:
                old = {f"import:{earlier}", provenance}
                ids = [r[0] for p in old for r in s.conn.execute("SELECT id FROM annotations WHERE provenance=?", (p,))]
                s.delete_annotations(ids)
            cats = {c.name: c.id for c in s.categories()}
            tags = {t.name: t.id for t in s.tags()}
            next_group = self._next_group()
            for name in unit.categories:
                if name not in cats:
                    cats[name] = self._new_category(name, set(cats.values())).id
            for img, rel in zip(unit.images, placed):
                split = self.options.split or img.split or "train"
                rec = s.image_by_path(rel)
                if rec is None:
                    image_id = s.add_image(rel, img.width, img.height, img.sha1, split)
                    n_img += 1
                else:
                    image_id = rec.id
                    if self.options.split and rec.split != self.options.split:
                        s.set_split([image_id], self.options.split)
                sizes = Counter(sh.group for sh in img.shapes if sh.group is not None)
                groups: dict[object, int] = {}
                anns = []
                for sh in img.shapes:
                    if sh.category not in cats:
                        cats[sh.category] = self._new_category(sh.category, set(cats.values())).id
                    gid = None
                    if sh.group is not None and sizes[sh.group] > 1:  # a group of one is just a shape
                        if sh.group not in groups:
                            groups[sh.group] = next_group
                            next_group += 1
                        gid = groups[sh.group]
                    anns.append(Annotation(image_id, cats[sh.category], sh.geometry, provenance, sh.score, gid,
                                           dict(sh.attributes)))
                n_ann += len(s.add_annotations(anns))
                for name, on in img.tags.items():
                    if name not in tags:
                        tags[name] = s.add_tag(name).id
                    if on:
                        s.set_image_tag(image_id, tags[name], True)
            s.record_import(source, unit.digest, self.fmt)
        self._group_floor = next_group
        return n_img, n_ann

    def _next_group(self) -> int:
        """The next free group id; reads only annotations added since the last call (any writer)."""
        top, last = self.store.conn.execute("SELECT MAX(group_id), MAX(id) FROM annotations WHERE id > ?",
                                            (self._seen_ann_id,)).fetchone()
        if last is not None:
            self._seen_ann_id = last
        if top is not None:
            self._group_floor = max(self._group_floor, int(top) + 1)
        return self._group_floor

    def _new_category(self, name: str, used: set[int]) -> Category:
        want = self.preferred_ids.get(name)
        if want is not None and want > 0 and want not in used:
            cat = Category(want, name, PALETTE[len(used) % len(PALETTE)])
            self.store.restore_category(cat)
            return cat
        return self.store.ensure_category(name)

    def _place(self, img: ParsedImage, created: list[Path], hashes: dict[str, str], file: Path) -> str:
        """Where the image lives in the project (relative path); copies/writes it there if needed."""
        s = self.store
        known = hashes.get(img.sha1) or self._by_hash.get(img.sha1)
        if known:
            if Path(known).name != Path(img.name).name:
                self.warn(file, f"image {img.name} has the same content as {known}, already in the project; "
                                "its annotations go to that image")
            return known
        rel = self._copy(img, created) if img.path is None or not inside(img.path, s.root) else \
            img.path.resolve().relative_to(s.root).as_posix()
        hashes[img.sha1] = rel
        return rel

    def _copy(self, img: ParsedImage, created: list[Path]) -> str:
        s = self.store
        dest = s.root / "images" / _safe(self.root.name or "import") / img.name
        stem, suffix, n = dest.stem, dest.suffix, 1
        while dest.exists() or s.image_by_path(dest.relative_to(s.root).as_posix()) is not None:
            if dest.is_file() and sha1_file(dest) == img.sha1:
                return dest.relative_to(s.root).as_posix()
            dest = dest.with_name(f"{stem}_{n}{suffix}")
            n += 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        created.append(dest)
        if img.data is not None:
            dest.write_bytes(img.data)
        else:
            shutil.copyfile(img.path, dest)
        return dest.relative_to(s.root).as_posix()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "import"
