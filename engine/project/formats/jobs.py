"""Import and export as jobs (``engine.jobs`` protocol): the same code runs from the CLI and the GUI.

``import_job`` config: ``format`` (coco | voc | yolo | labelme | masks), ``path``, ``project``, and
optional ``split``, ``images`` (extra image folder), ``replace`` (re-import files seen before),
``names`` (class names, a list or a classes file). ``export_job`` config: ``format`` (also
``masks``), ``out``, ``project``, optional ``split``, ``remap`` (COCO ids 1..K), ``task`` (YOLO
detect | segment), ``include_suggested`` (also pending model suggestions; default: accepted
annotations only). Both emit ``Progress`` events, stop between files when cancelled, and return
a dict: the report's fields (``ok`` false when any file failed, ``summary``) for the existing GUI
code, and ``report``: the typed ``ImportReport`` / ``ExportReport`` itself (read this one in new
code). A refused input (no such folder, an output folder that is not empty) raises ``FormatError``
with the reason. An export that fails (disk full) removes what it wrote, so a retry can use the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from engine.events import Notice, Progress
from engine.jobs import CancelToken, RateLimiter, Sink
from engine.project.store import SPLITS, Store

from .coco import export_coco, import_coco
from .common import ExportReport, FormatError, ImportOptions
from .common import Progress as Progress_
from .exporting import INCOMPLETE, clear_out, export_view
from .labelme import export_labelme, import_labelme
from .masks import export_masks, import_class_maps, read_names
from .voc import export_voc, import_voc
from .yolo import export_yolo, import_yolo

IMPORTERS = {"coco": import_coco, "voc": import_voc, "yolo": import_yolo, "labelme": import_labelme,
             "masks": import_class_maps}
EXPORT_FORMATS = ("coco", "voc", "yolo", "labelme", "masks")


def _progress(sink: Sink, cancel: CancelToken) -> Progress_:
    limiter = RateLimiter(0.05)

    def progress(done: int, total: int, message: str) -> None:
        cancel.wait_if_paused()
        if done >= total or limiter.ready():
            sink(Progress(done, total, message))

    return progress


def _names(value: object) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    p = Path(str(value))
    if p.is_file():
        return read_names(p)
    return [v.strip() for v in str(value).split(",") if v.strip()]


IMPORT_BUSY_TIMEOUT_S = 2.0  # another program's write lock: wait this long, then stop with one message


def import_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    fmt = config.get("format")
    if fmt not in IMPORTERS:
        raise FormatError(f"unknown import format {fmt!r}: expected one of {', '.join(IMPORTERS)}")
    options = ImportOptions(split=config.get("split") or None,
                            images=Path(config["images"]) if config.get("images") else None,
                            replace=bool(config.get("replace", False)), names=_names(config.get("names")))
    if options.images is not None and not options.images.is_dir():
        raise FormatError(f"images folder not found: {options.images}")
    with Store(config["project"], busy_timeout=IMPORT_BUSY_TIMEOUT_S) as store:  # a locked project: fail fast
        report = IMPORTERS[fmt](store, Path(config["path"]), options, _progress(sink, cancel),
                                lambda: cancel.cancelled)
    if report.errors:
        sink(Notice(f"{len(report.errors)} file(s) could not be imported", "warning"))
    return {**report.to_dict(), "ok": report.ok, "summary": report.summary(), "report": report}


def export_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    fmt = config.get("format")
    if fmt not in EXPORT_FORMATS:
        raise FormatError(f"unknown export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    progress, cancelled = _progress(sink, cancel), (lambda: cancel.cancelled)
    out, split = Path(config["out"]), config.get("split") or None
    if split is not None and split not in SPLITS:
        raise FormatError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    existed = out.exists()
    try:
        with Store(config["project"]) as store:
            view = export_view(store, bool(config.get("include_suggested", False)))
            report = _export(fmt, view, out, split, config, progress, cancelled)
    except BaseException:
        if out.is_dir() and (out / INCOMPLETE).is_file():  # ours and unfinished: leave nothing half-written
            if existed:
                clear_out(out)
            else:
                shutil.rmtree(out)
        raise
    return {**report.to_dict(), "ok": report.ok, "summary": report.summary(), "report": report}


def _export(fmt: str, store: Store, out: Path, split: str | None, config: dict, progress: Progress_,
            cancelled: Callable[[], bool]) -> ExportReport:
    if fmt == "coco":
        report = export_coco(store, out, split, bool(config.get("remap")), progress, cancelled)
    elif fmt == "voc":
        report = export_voc(store, out, split, progress, cancelled)
    elif fmt == "yolo":
        report = export_yolo(store, out, split, config.get("task") or None, progress, cancelled)
    elif fmt == "labelme":
        report = export_labelme(store, out, split, progress, cancelled)
    else:
        report = export_masks(store, out, split, progress, cancelled)
    return report
