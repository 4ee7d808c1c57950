"""Finding images: on disk (add a folder to a project, as a job) and in the store (per-image summaries).

``add_folder_job`` reads only image headers (``pyramid.oriented_size``: EXIF-oriented width, height),
never pixels, and adds images in batches, one transaction each, so a cancelled scan keeps the batches
already committed and never half a batch. ``image_summaries`` answers, in a handful of queries, what the
image list needs for every image (object counts, categories present, tags), so the list never queries
per row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.events import Notice, Progress
from engine.jobs import CancelToken, RateLimiter, Sink
from engine.project.imageio import IMAGE_SUFFIXES, ImageReadError, file_hash
from engine.project.pyramid import oriented_size
from engine.project.shapes import Annotation
from engine.project.store import SPLITS, Store, StoreError


def find_images(folder: str | Path, recursive: bool = True, cancel: CancelToken | None = None) -> list[Path]:
    """Image files under ``folder`` (by suffix), sorted by path; hidden entries are skipped."""
    return [Path(p) for p in _find(str(folder), recursive, cancel)]


def _find(folder: str, recursive: bool, cancel: CancelToken | None) -> list[str]:
    """Like ``find_images`` with plain strings (10k files: pathlib would cost more than the scan)."""
    out: list[str] = []
    stack = [folder]
    while stack:
        if cancel is not None:
            cancel.check()
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        if recursive:
                            stack.append(e.path)
                    elif os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES:
                        out.append(e.path)
        except OSError:
            if d == folder:
                raise
    return sorted(out, key=lambda p: p.split(os.sep))


def _prefix(folder: Path, root: Path) -> str:
    """How paths under ``folder`` are stored: relative to the project root, '/' separated, ending in '/'
    (absolute when the folder is on another drive)."""
    try:
        rel = Path(os.path.relpath(folder, root)).as_posix()
    except ValueError:
        rel = folder.as_posix()
    return "" if rel == "." else rel.rstrip("/") + "/"


def add_folder_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Add every image under ``config['folder']`` to the project at ``config['project']``.

    Config: ``project`` (folder), ``folder``, ``recursive`` (True), ``split`` ('train'), ``batch`` (500),
    ``hash`` (False: hashing reads every byte). Images already in the project (same relative path) are
    skipped; unreadable files are skipped and named in a Notice. Emits Progress; returns
    ``{"added", "skipped", "unreadable", "image_ids", "report": AddFolderReport}``.
    """
    folder = Path(config["folder"]).resolve()
    split = config.get("split", "train")
    if split not in SPLITS:
        raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    batch_size = max(1, int(config.get("batch", 500)))
    files = _find(str(folder), bool(config.get("recursive", True)), cancel)
    skip = len(str(folder)) + 1
    sink(Progress(0, len(files), f"found {len(files)} images in {folder}"))
    with Store(config["project"]) as store:
        prefix = _prefix(folder, store.root)
        known = {r[0] for r in store.conn.execute("SELECT path FROM images")}
        ids: list[int] = []
        bad: list[str] = []
        skipped = 0
        batch: list[tuple[str, int, int, str, str]] = []
        limiter = RateLimiter(0.1)
        for i, f in enumerate(files):
            cancel.check()
            rel = prefix + f[skip:].replace(os.sep, "/")
            if rel in known:
                skipped += 1
            else:
                try:
                    w, h = oriented_size(f)
                    digest = file_hash(f) if config.get("hash") else ""
                    batch.append((rel, w, h, digest, split))
                    known.add(rel)
                except ImageReadError as e:
                    bad.append(str(e))
            if len(batch) >= batch_size:
                skipped += _insert_new(store, batch, ids)
                batch = []
            if limiter.ready():
                sink(Progress(i + 1, len(files), os.path.basename(f)))
        if batch:
            skipped += _insert_new(store, batch, ids)
    sink(Progress(len(files), len(files), f"added {len(ids)} images"))
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        sink(Notice(f"skipped {len(bad)} unreadable files: " + "; ".join(bad[:5]) + more, "warning"))
    report = AddFolderReport(str(folder), len(ids), skipped, len(bad), ids, bad)
    return {**report.to_dict(), "report": report}


@dataclass(frozen=True)
class AddFolderReport:
    """What ``add_folder_job`` did; the job returns ``to_dict()`` plus ``"report"``: this object."""

    folder: str
    added: int
    skipped: int  # already in the project (same relative path), also when another writer added them meanwhile
    unreadable: int
    image_ids: list[int]
    problems: list[str]  # one "path: reason" per unreadable file

    def to_dict(self) -> dict:
        return {"added": self.added, "skipped": self.skipped, "unreadable": self.unreadable,
                "image_ids": list(self.image_ids)}


def _insert_new(store: Store, batch: list[tuple[str, int, int, str, str]], ids: list[int]) -> int:
    """Insert the rows whose path is not in the project yet, checked and inserted in one BEGIN IMMEDIATE
    transaction (another process adding the same folder at once cannot make duplicates); returns how many
    were already there."""
    with store.transaction() as c:
        fresh = [r for r in batch if c.execute("SELECT 1 FROM images WHERE path=?", (r[0],)).fetchone() is None]
        ids += store.add_images(fresh)
    return len(batch) - len(fresh)


# -- what the image list shows ----------------------------------------------------------------
@dataclass(frozen=True)
class ImageSummaries:
    """Every image of a project, in id order, with what the list filters on."""

    ids: np.ndarray  # (N,) int64, ascending
    paths: list[str]  # relative to the project, '/' separated
    widths: np.ndarray  # (N,) int32, oriented pixels
    heights: np.ndarray  # (N,) int32
    splits: list[str]
    objects: np.ndarray  # (N,) int32: distinct group ids + ungrouped annotations
    categories: dict[int, np.ndarray]  # category id -> (M,) int64 ids of images with such an annotation
    tags: dict[int, np.ndarray]  # tag id -> (M,) int64 ids of images carrying the tag


def _grouped(pairs: Iterable[tuple[int, int]]) -> dict[int, np.ndarray]:
    a = np.asarray(list(pairs), dtype=np.int64).reshape(-1, 2)
    if not len(a):
        return {}
    a = a[np.lexsort((a[:, 1], a[:, 0]))]
    keys, starts = np.unique(a[:, 0], return_index=True)
    return {int(k): v for k, v in zip(keys, np.split(a[:, 1], starts[1:]), strict=True)}


def image_summaries(store: Store) -> ImageSummaries:
    """Four aggregate queries, whatever the number of images (100k images: well under a second)."""
    c = store.conn
    rows = c.execute("SELECT id, path, width, height, split FROM images ORDER BY id").fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    ids = np.array(cols[0], np.int64)
    objects = np.zeros(len(rows), np.int32)
    counts = c.execute("SELECT image_id, COUNT(DISTINCT group_id) + SUM(group_id IS NULL) "
                       "FROM annotations GROUP BY image_id").fetchall()
    if counts:
        cnt = np.asarray(counts, dtype=np.int64)
        pos = np.searchsorted(ids, cnt[:, 0])
        ok = pos < len(ids)
        ok[ok] = ids[pos[ok]] == cnt[ok, 0]
        objects[pos[ok]] = cnt[ok, 1]
    cats = _grouped(c.execute("SELECT DISTINCT category_id, image_id FROM annotations"))
    tags = _grouped(c.execute("SELECT tag_id, image_id FROM image_tags"))
    return ImageSummaries(ids, list(cols[1]), np.array(cols[2], np.int32), np.array(cols[3], np.int32),
                          list(cols[4]), objects, cats, tags)


def object_count(anns: Iterable[Annotation]) -> int:
    """Objects among annotations: one per distinct group id, plus each ungrouped annotation."""
    groups, loose = set(), 0
    for a in anns:
        if a.group_id is None:
            loose += 1
        else:
            groups.add(a.group_id)
    return len(groups) + loose


def image_summary(store: Store, image_id: int) -> tuple[int, set[int], set[int]]:
    """(objects, category ids, tag ids) of one image (three small queries)."""
    c = store.conn
    n = c.execute("SELECT COUNT(DISTINCT group_id) + COALESCE(SUM(group_id IS NULL), 0) FROM annotations "
                  "WHERE image_id=?", (image_id,)).fetchone()[0]
    cats = {r[0] for r in c.execute("SELECT DISTINCT category_id FROM annotations WHERE image_id=?", (image_id,))}
    return int(n or 0), cats, store.image_tags(image_id)
