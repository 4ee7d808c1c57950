"""Batch actions of the Assist feature: Pre-label… (``prelabel_job`` over a split / the unlabeled images /
all, manual labels skipped unless replacing them is ticked) and Sort by uncertainty (``rank_job``: the
unlabeled images, most uncertain first, listed in the dock; a click opens one), with the dock's progress bar
and Cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidgetItem, QMessageBox

from engine.assist.prelabel import prelabel_job
from engine.assist.suggest import Assistant
from engine.events import Event, Progress
from gui.assist.jobs import rank_job
from gui.assist.panel import AssistPanel
from gui.assist.prelabel_dialog import PrelabelDialog, scope_config
from gui.bridge import EngineBridge, JobHandle
from gui.session import Session
from gui.widgets.docks import DockHost

LANE = "assist"  # suggestions, prefetch, ranking, unload: one at a time, off the training and task lanes
DEVICE = "auto"


class BatchActions:
    """Mixed into ``AssistFeature`` (which has ``refresh``, ``refresh_stats``, ``_track`` and
    ``checkpoint_of``); uses its assistant, job table and panel."""

    session: Session
    panel: AssistPanel
    host: DockHost
    bridge: EngineBridge
    assistant: Assistant | None
    run_id: int | None
    order: list[int] | None
    jobs: dict[str, JobHandle]

    def show_prelabel_dialog(self) -> None:
        if self.run_id is None:
            QMessageBox.information(self.host.widget, "Pre-label", "Pick a run in the Assist dock first.")
            return
        dlg = PrelabelDialog(self.panel.runs.currentText(), float(self.panel.min_score.value()), self.host.widget)
        self.prelabel_dialog = dlg
        dlg.accepted.connect(self._on_prelabel_dialog_accepted)
        dlg.open()

    def _on_prelabel_dialog_accepted(self) -> None:
        scope, threshold, overwrite = self.prelabel_dialog.values()
        self.prelabel(scope, threshold, overwrite)

    def prelabel(self, scope: str = "unlabeled", threshold: float = 0.5, overwrite: bool = False) -> JobHandle | None:
        """Run ``prelabel_job`` for ``scope`` ('unlabeled' | 'split:<name>' | 'all') in the background."""
        store = self.session.store
        if store is None or self.run_id is None:
            self.session.show_status("Pick a run in the Assist dock first")
            return None
        if "prelabel" in self.jobs:
            self.session.show_status("Pre-labelling is already running")
            return None
        cfg = {"project": str(store.root), "checkpoint": self.checkpoint_of(self.run_id), "threshold": threshold,
               "overwrite_manual": bool(overwrite), "device": DEVICE, **scope_config(scope)}
        h = self._track("prelabel", self.bridge.submit(prelabel_job, cfg, "tasks"))
        self._start_batch(h, "Pre-labelling…")
        return h

    def _on_prelabelled(self, result: dict) -> None:
        text = (f"Pre-labelled {result['images']} images: {result['suggestions']} suggestions, "
                f"{result['skipped_manual']} skipped (already labelled)")
        if result.get("replaced"):
            text += f", {result['replaced']} labels replaced"
            self.session.notify_store_changed()  # labels were deleted outside the undo stack
        self._end_batch("prelabel", text)
        self.refresh()
        self.refresh_stats()

    def rank(self) -> JobHandle | None:
        """Rank the unlabeled images by the assistant's uncertainty (most uncertain first), in the dock."""
        store, a = self.session.store, self.assistant
        if store is None or a is None:
            self.session.show_status("Pick a run in the Assist dock first")
            return None
        if (h := self.jobs.get("rank")) is not None:
            h.cancel()
        h = self._track("rank", self.bridge.submit(rank_job, {"project": str(store.root), "assistant": a}, LANE))
        self._start_batch(h, "Ranking by uncertainty…")
        return h

    def _show_ranked(self, order: list[tuple[int, float]]) -> None:
        store = self.session.store
        self.order = [i for i, _ in order]
        paths = {im.id: im.path for im in store.images()} if store is not None else {}
        lst = self.panel.ranked
        lst.clear()
        for image_id, u in order:
            item = QListWidgetItem(f"{u:.2f}  {Path(paths.get(image_id, str(image_id))).name}")
            item.setData(Qt.ItemDataRole.UserRole, image_id)
            item.setToolTip(f"image {image_id}: uncertainty {u:.3f}")
            lst.addItem(item)

    def _on_ranked_clicked(self, item: QListWidgetItem) -> None:
        self.session.request_image(int(item.data(Qt.ItemDataRole.UserRole)))

    def _start_batch(self, handle: JobHandle, text: str) -> None:
        p = self.panel
        p.progress.setRange(0, 0)  # busy until the first Progress
        p.progress.setFormat(text)
        p.cancel_button.setEnabled(True)
        handle.progress.connect(self._on_batch_progress)

    def _on_batch_progress(self, e: Event) -> None:
        if isinstance(e, Progress) and e.total > 0:
            self.panel.progress.setRange(0, e.total)
            self.panel.progress.setValue(e.done)
            self.panel.progress.setFormat(f"%v / %m {e.message}".strip())

    def _end_batch(self, name: str, text: str) -> None:
        if name not in ("prelabel", "rank"):
            return
        p = self.panel
        p.progress.setRange(0, 1)
        p.progress.setValue(1 if text not in ("cancelled", "failed") else 0)
        p.progress.setFormat(text)
        p.cancel_button.setEnabled(any(n in self.jobs for n in ("prelabel", "rank")))
        self.session.show_status(text)

    def _on_cancel_batch(self) -> None:
        for name in ("prelabel", "rank"):
            if (h := self.jobs.get(name)) is not None:
                h.cancel()
