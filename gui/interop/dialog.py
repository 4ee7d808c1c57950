"""File > Import… / Export…: a format picker dialog, the job on the bridge's task lane, a progress dialog
and a summary (imported, skipped, errors with reasons).

``run_interop(parent, bridge, project_root, "import" | "export")`` opens the dialog and returns the
``InteropRunner``; its ``finished(dict)`` signal carries the job's result (``{}`` if it failed) so the
window can reload its views. Everything here is non-blocking (``open()``, never ``exec()``); the job's
``JobHandle`` signals are connected to bound methods of this QObject (see DESIGN: PySide6 worker-signal trap).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from engine.events import Event, Progress
from engine.project.formats.jobs import export_job, import_job
from engine.project.store import SPLITS
from gui.bridge import EngineBridge, JobHandle

IMPORT_FORMATS = (("COCO instances JSON", "coco"), ("Pascal VOC", "voc"), ("YOLO (Ultralytics)", "yolo"),
                  ("labelme JSON", "labelme"), ("Mask PNG class maps", "masks"))
EXPORT_FORMATS = IMPORT_FORMATS[:4] + (("Mask PNGs (class + instance maps)", "masks"),)


def _path_row(edit: QLineEdit, *buttons: QPushButton) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    for b in buttons:
        lay.addWidget(b)
    return row


class _InteropDialog(QDialog):
    """Shared parts: a format combo, a split combo and OK/Cancel (OK needs a path)."""

    def __init__(self, parent: QWidget | None, title: str, formats: tuple, first_split: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QFormLayout(self)
        self.format_combo = QComboBox()
        for label, key in formats:
            self.format_combo.addItem(label, key)
        self.form.addRow("Format", self.format_combo)
        self.split_combo = QComboBox()
        self.split_combo.addItem(first_split, None)
        for s in SPLITS:
            self.split_combo.addItem(s, s)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def set_format(self, key: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(key))

    def set_split(self, split: str | None) -> None:
        self.split_combo.setCurrentIndex(self.split_combo.findData(split))

    def _finish(self, path_edit: QLineEdit) -> None:
        self.form.addRow(self.buttons)
        self._path_edit = path_edit
        path_edit.textChanged.connect(self._on_path_changed)
        self._on_path_changed(path_edit.text())

    def _on_path_changed(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(text.strip()))


class ImportDialog(_InteropDialog):
    """Pick a format, a file or folder, optionally an images folder, class names, a split and replace."""

    def __init__(self, parent: QWidget | None, project_root: str | Path) -> None:
        super().__init__(parent, "Import annotations", IMPORT_FORMATS, "(from the files, else train)")
        self.project_root = Path(project_root)
        self.path_edit = QLineEdit()
        file_btn, folder_btn = QPushButton("File…"), QPushButton("Folder…")
        file_btn.clicked.connect(self._on_pick_file)
        folder_btn.clicked.connect(self._on_pick_folder)
        self.form.addRow("Import from", _path_row(self.path_edit, file_btn, folder_btn))
        self.images_edit = QLineEdit()
        self.images_edit.setPlaceholderText("optional: where the images are, if not next to the labels")
        images_btn = QPushButton("Folder…")
        images_btn.clicked.connect(self._on_pick_images)
        self.form.addRow("Images", _path_row(self.images_edit, images_btn))
        self.names_edit = QLineEdit()
        self.names_edit.setPlaceholderText("optional: a,b,c or a classes file (YOLO without data.yaml)")
        self.form.addRow("Class names", self.names_edit)
        self.form.addRow("Assign split", self.split_combo)
        self.replace_check = QCheckBox("Re-import files imported before (replaces their annotations)")
        self.form.addRow(self.replace_check)
        self._finish(self.path_edit)

    def config(self) -> dict:
        return {"format": self.format_combo.currentData(), "path": self.path_edit.text().strip(),
                "project": str(self.project_root), "split": self.split_combo.currentData(),
                "images": self.images_edit.text().strip() or None, "replace": self.replace_check.isChecked(),
                "names": self.names_edit.text().strip() or None}

    def _on_pick_file(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Annotation file", str(self.project_root.parent),
                                           "Annotations (*.json *.xml *.yaml *.yml *.txt *.png);;All files (*)")
        if f:
            self.path_edit.setText(f)

    def _on_pick_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Dataset folder", str(self.project_root.parent))
        if d:
            self.path_edit.setText(d)

    def _on_pick_images(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Images folder", self.path_edit.text() or str(self.project_root))
        if d:
            self.images_edit.setText(d)


class ExportDialog(_InteropDialog):
    """Pick a format, a new or empty output folder, a split, COCO id remapping and the YOLO task."""

    def __init__(self, parent: QWidget | None, project_root: str | Path) -> None:
        super().__init__(parent, "Export annotations", EXPORT_FORMATS, "(all splits)")
        self.project_root = Path(project_root)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("a new or empty folder")
        out_btn = QPushButton("Folder…")
        out_btn.clicked.connect(self._on_pick_out)
        self.form.addRow("Export to", _path_row(self.out_edit, out_btn))
        self.form.addRow("Split", self.split_combo)
        self.remap_check = QCheckBox("COCO: number categories 1..K (else keep the project's ids)")
        self.form.addRow(self.remap_check)
        self.task_combo = QComboBox()
        for label, key in (("auto (segment if there are polygons or masks)", None), ("detect (boxes)", "detect"),
                           ("segment (polygons)", "segment")):
            self.task_combo.addItem(label, key)
        self.form.addRow("YOLO rows", self.task_combo)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self._on_format_changed()
        self._finish(self.out_edit)

    def config(self) -> dict:
        return {"format": self.format_combo.currentData(), "out": self.out_edit.text().strip(),
                "project": str(self.project_root), "split": self.split_combo.currentData(),
                "remap": self.remap_check.isChecked(), "task": self.task_combo.currentData()}

    def _on_format_changed(self, *_: object) -> None:
        fmt = self.format_combo.currentData()
        self.remap_check.setEnabled(fmt == "coco")
        self.task_combo.setEnabled(fmt == "yolo")

    def _on_pick_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export folder", str(self.project_root.parent))
        if d:
            self.out_edit.setText(d)


class InteropRunner(QObject):
    """Owns the dialog, the job, its progress dialog and the summary box of one import or export."""

    finished = Signal(dict)  # the job's result ({} if it failed or was not started)
    _live: set[InteropRunner] = set()  # runners without a Qt parent stay alive until their summary closes

    def __init__(self, parent: QWidget | None, bridge: EngineBridge, project_root: str | Path, kind: str) -> None:
        super().__init__(parent)
        if kind not in ("import", "export"):
            raise ValueError(f"kind must be 'import' or 'export', got {kind!r}")
        self.parent_widget, self.bridge, self.kind = parent, bridge, kind
        self.dialog: ImportDialog | ExportDialog = (ImportDialog if kind == "import" else ExportDialog)(
            parent, project_root)
        self.dialog.accepted.connect(self._on_accepted)
        self.dialog.rejected.connect(self._on_rejected)
        self.progress: QProgressDialog | None = None
        self.summary: QMessageBox | None = None
        self.job_id = ""
        self.handle: JobHandle | None = None
        self.result: dict = {}
        self.failure = ""

    def start(self) -> None:
        InteropRunner._live.add(self)
        self.dialog.open()

    def run(self, config: dict) -> str:
        """Submit the job for ``config`` (what the dialog returns) and show progress."""
        job = import_job if self.kind == "import" else export_job
        self.handle = h = self.bridge.submit(job, config, lane="tasks")
        self.job_id = h.id
        h.progress.connect(self._on_progress)
        h.finished.connect(self._on_finished)
        h.failed.connect(self._on_failed)
        verb = "Importing" if self.kind == "import" else "Exporting"
        self.progress = QProgressDialog(f"{verb} {config['format']}…", "Cancel", 0, 0, self.parent_widget)
        self.progress.setWindowTitle(f"{self.kind.capitalize()} annotations")
        self.progress.setMinimumDuration(0)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        self.progress.canceled.connect(self._on_cancel)
        self.progress.show()
        return self.job_id

    def _on_accepted(self) -> None:
        self.run(self.dialog.config())

    def _on_rejected(self) -> None:
        self.finished.emit({})
        self._release()

    def _release(self) -> None:
        InteropRunner._live.discard(self)
        self.deleteLater()

    def _on_cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def _on_progress(self, e: Event) -> None:
        if isinstance(e, Progress) and self.progress is not None:
            self.progress.setMaximum(max(e.total, 1))
            self.progress.setValue(min(e.done, max(e.total, 1)))
            self.progress.setLabelText(e.message or "…")

    def _on_finished(self, result: dict) -> None:
        self.result = result
        self._on_done(True)

    def _on_failed(self, message: str) -> None:
        self.failure = message
        self._on_done(False)

    def _on_done(self, ok: bool) -> None:
        if self.progress is not None:
            self.progress.canceled.disconnect(self._on_cancel)
            self.progress.close()
        title = f"{self.kind.capitalize()} annotations"
        if not ok:
            box = QMessageBox(QMessageBox.Icon.Critical, title, f"The {self.kind} failed: {self.failure}",
                              QMessageBox.StandardButton.Ok, self.parent_widget)
        else:
            icon = QMessageBox.Icon.Information if self.result.get("ok", True) else QMessageBox.Icon.Warning
            box = QMessageBox(icon, title, summary_text(self.kind, self.result), QMessageBox.StandardButton.Ok,
                              self.parent_widget)
            if self.result.get("summary"):
                box.setDetailedText(self.result["summary"])
        self.summary = box
        box.finished.connect(self._on_summary_closed)
        box.open()
        self.finished.emit(self.result if ok else {})

    def _on_summary_closed(self, *_: object) -> None:
        self._release()


def summary_text(kind: str, result: dict, limit: int = 8) -> str:
    """A few lines for the summary box: counts, then the first errors (file: reason)."""
    if result.get("cancelled") and "errors" not in result:
        return f"The {kind} was cancelled before it started."
    errors = result.get("errors", [])
    if kind == "import":
        lines = [f"Imported {len(result.get('imported', []))} file(s): {result.get('images', 0)} images, "
                 f"{result.get('annotations', 0)} annotations.",
                 f"Skipped {len(result.get('skipped', []))} file(s) imported before."]
    else:
        lines = [f"Exported {result.get('images', 0)} images and {result.get('annotations', 0)} objects "
                 f"to {result.get('out', '')}."]
    lines.append(f"{len(errors)} error(s), {len(result.get('warnings', []))} warning(s).")
    if result.get("cancelled"):
        lines.append("Cancelled: the files done so far are kept.")
    lines += [f"• {Path(f).name}: {why}" for f, why in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"… and {len(errors) - limit} more (see details)")
    return "\n".join(lines)


def run_interop(parent: QWidget | None, bridge: EngineBridge, project_root: str | Path, kind: str) -> InteropRunner:
    """File > Import… (``kind="import"``) or Export… (``"export"``): open the dialog; the rest runs by itself."""
    runner = InteropRunner(parent, bridge, project_root, kind)
    runner.start()
    return runner
