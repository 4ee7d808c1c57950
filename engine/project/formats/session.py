"""The import session: commits parsed units into a project, ONE transaction per annotation file.

A unit that fails leaves the project unchanged: its rows roll back and the image files it copied
are removed again. The "seen before?" check, the image matching and the inserts of one unit run in
one ``BEGIN IMMEDIATE`` transaction, so two imports of the same files at once (two processes, or
the GUI and the CLI) never duplicate images, annotations or import records: the second one sees
the first one's commit and skips the file.

A file seen before (same content digest, or same path) is skipped unless ``replace``, which deletes
the annotations of the earlier import (provenance ``import:<file>``) and imports the file again,
except on images where one of those annotations was corrected in the app (``edited_at`` set):
those images keep their annotations and get none of the file's shapes; the report counts them
(``kept``) and names the images in a warning.

Images are matched, in this order: the same file already in the project (by its project-relative
path, as ``scan.add_folder_job`` stores it, even for folders outside the project); the same content
(sha1) in the project, hashing images added without a hash lazily (only those with the same width
and height; the hash is then stored); else a new row: a file inside the project folder stays where
it is, any other is copied to ``<project>/images/<source-name>/<its path relative to the dataset's
image root>`` (a numbered suffix avoids clobbering a different file). Never two rows for one file.
Every image must lie inside the dataset folder (or ``--images``): an importer that resolved a path
outside them is refused here, whatever the format.
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from engine.project.dbfile import ProjectLockedError
from engine.project.imageio import ImageReadError, file_hash
from engine.project.shapes import Annotation
from engine.project.store import PALETTE, SPLITS, Category, DiskFullError, Store

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
    warning_text,
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
        self._seen_ann_id, self._group_floor = 0, 1
        if options.split is not None and options.split not in SPLITS:
            raise FormatError(f"unknown split {options.split!r}; expected one of {', '.join(SPLITS)}")

    def warn(self, file: Path | str, message: str) -> None:
        self.report.warnings.append((str(file), message))

    def error(self, file: Path | str, message: str) -> None:
        self.report.errors.append((str(file), message))

    def run(self, files: list[Path], parse: Callable[[Path], Unit | None]) -> ImportReport:
        """Parse and commit each file; errors are reported per file and never stop the others.

        A full disk stops the import (every later file would fail the same way): it raises OSError.
        Library warnings (Pillow, numpy) raised while reading a file become report warnings for it.
        """
        total = len(files)
        for i, f in enumerate(files):
            if self.cancelled():
                self.report.cancelled = True
                break
            self.progress(i, total, f.name)
            with warnings.catch_warnings(record=True) as caught:
                try:
                    unit = parse(f)
                    if unit is not None:
                        self.commit(unit)
                except FormatError as e:
                    self.error(f, str(e))
                except (DiskFullError, ProjectLockedError):  # every later file would fail the same way
                    raise
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                        raise
                    self.error(f, f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
                except Exception as e:  # a bug or I/O failure in one file must not lose the others
                    self.error(f, f"{type(e).__name__}: {e}")
            for w in caught:
                if issubclass(w.category, UserWarning | RuntimeWarning):  # meant for the user: say it plainly
                    self.warn(f, warning_text(w))
                else:  # developer warnings (deprecations) go on as they came
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.progress(total, total, "done")
        return self.report

    def commit(self, unit: Unit) -> None:
        source = unit.file.resolve().as_posix()
        self._check_inside(unit)
        created: list[Path] = []
        try:
            with self.store.transaction():  # BEGIN IMMEDIATE: the check below sees every committed import
                earlier, same = self._earlier_import(source, unit.digest)
                if earlier and not self.options.replace:
                    if not same:
                        why = "imported before and changed since; choose replace to import the new version"
                    else:
                        why = ("already imported" if earlier == source else f"already imported (as {earlier})") \
                            + "; choose replace to import it again"
                    self.report.skipped.append((str(unit.file), why))
                    return
                hashes: dict[str, str] = {}
                placed = [self._place(img, created, hashes, unit.file) for img in unit.images]
                n_img, n_ann, kept = self._write(unit, source, earlier, placed)
        except BaseException:
            for p in created:
                p.unlink(missing_ok=True)
            raise
        self.report.imported.append(str(unit.file))
        self.report.images += n_img
        self.report.annotations += n_ann
        self.report.kept += kept

    def _check_inside(self, unit: Unit) -> None:
        """Refuse a unit whose images lie outside the dataset folder and ``--images`` (any format)."""
        roots = [self.root] + ([self.options.images] if self.options.images else [])
        for img in unit.images:
            if img.path is not None and not any(inside(img.path, r) for r in roots):
                where = " or ".join(str(Path(r).resolve()) for r in roots)
                raise FormatError(f"image {img.path} lies outside the dataset folder {where}; not read")

    def _earlier_import(self, source: str, dig: str) -> tuple[str | None, bool]:
        """(source of an earlier import of this content or path, whether the content is the same)."""
        found = self.store.find_import(dig)
        if found:
            return found, True
        seen = self.store.conn.execute("SELECT 1 FROM imports WHERE source=? LIMIT 1", (source,)).fetchone()
        return (source, False) if seen else (None, False)

    def _write(self, unit: Unit, source: str, earlier: str | None, placed: list[str]) -> tuple[int, int, int]:
        s = self.store
        provenance = f"import:{source}"
        n_img = n_ann = kept = 0
        held: set[int] = set()  # images whose earlier-import annotations were edited in the app
        with s.transaction():
            if earlier:
                old = sorted({f"import:{earlier}", provenance})
                rows = [r for p in old for r in s.conn.execute(
                    "SELECT id, image_id, edited_at FROM annotations WHERE provenance=?", (p,))]
                held = {img for _, img, edited in rows if edited is not None}
                kept = sum(1 for _, img, edited in rows if edited is not None)
                s.delete_annotations([i for i, img, _ in rows if img not in held])
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
                if image_id in held:
                    self.warn(unit.file, f"image {rel}: annotations from the earlier import were corrected in "
                                         "the app; kept them and did not import this file's shapes for it")
                    continue
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
        return n_img, n_ann, kept

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
        """Where the image lives in the project (relative path); copies/writes it there if needed.

        Runs inside the unit's transaction, so what it finds cannot be added by another writer meanwhile.
        """
        s = self.store
        if img.sha1 in hashes:
            return self._same(hashes[img.sha1], img, file)
        if img.path is not None:  # the very file, added before (e.g. by "add folder", without a hash)
            rel = project_path(img.path, s.root)
            row = s.conn.execute("SELECT hash FROM images WHERE path=?", (rel,)).fetchone()
            if row is not None:
                if not row[0]:
                    s.conn.execute("UPDATE images SET hash=? WHERE path=?", (img.sha1, rel))
                hashes[img.sha1] = rel
                return rel
        known = self._by_content(img)
        if known:
            hashes[img.sha1] = known
            return self._same(known, img, file)
        rel = self._copy(img, created) if img.path is None or not inside(img.path, s.root) else \
            img.path.resolve().relative_to(s.root).as_posix()
        hashes[img.sha1] = rel
        return rel

    def _same(self, known: str, img: ParsedImage, file: Path) -> str:
        if Path(known).name != Path(img.name).name:
            self.warn(file, f"image {img.name} has the same content as {known}, already in the project; "
                            "its annotations go to that image")
        return known

    def _by_content(self, img: ParsedImage) -> str | None:
        """A project image with ``img``'s content: by stored hash, else by hashing (once, then stored)
        the unhashed images of the same size."""
        c = self.store.conn
        row = c.execute("SELECT path FROM images WHERE hash=? ORDER BY id DESC LIMIT 1", (img.sha1,)).fetchone()
        if row:
            return row[0]
        cands = c.execute("SELECT id, path FROM images WHERE hash='' AND width=? AND height=? ORDER BY id",
                          (img.width, img.height)).fetchall()
        for image_id, path in cands:
            try:
                digest = file_hash(self.store.root / path)
            except ImageReadError:
                continue  # a missing file is reported elsewhere; it cannot match
            c.execute("UPDATE images SET hash=? WHERE id=?", (digest, image_id))
            if digest == img.sha1:
                return path
        return None

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


def project_path(path: Path, root: Path) -> str:
    """How the store names a file: relative to the project root, '/' separated (as ``scan`` stores it;
    ``..`` for files outside the project folder, absolute on another drive)."""
    try:
        return Path(os.path.relpath(path.resolve(), root)).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "import"
