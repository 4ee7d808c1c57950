"""The "Tag suggestions" dock: a tagger checkpoint's scores for the current image, and Shift+T to accept.

``TagSuggestionsFeature(session, host, bridge)`` lists the project's tagger checkpoints; once one is
chosen, every image shown is scored by ``jobs.tag_scores_job`` on the bridge's ``tasks`` lane (results
cached per checkpoint and image, here and in the job's ``TagScorer``). The scores reach the Tags panel
through ``Session.show_tag_scores`` and this dock's table. "Accept suggested tags" (Shift+T, Edit menu,
listed in Help > Keyboard shortcuts) switches on every tag scoring at least its tuned threshold that the
image does not have yet: one ``AcceptSuggestedTags`` on the shared undo stack.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.events import Event, RunFinished
from engine.project.store import Store
from gui.bridge import EngineBridge, JobHandle
from gui.session import Session
from gui.tagging.commands import AcceptSuggestedTags
from gui.tagging.jobs import TagScorer, tag_scores_job
from gui.widgets.docks import Area, DockHost, scrolled

ACCEPT_KEY = "Shift+T"
TASKS_LANE = "tasks"
ABOVE = QColor("#2e9e4f")


def tagger_checkpoints(store: Store) -> list[tuple[str, str]]:
    """(label, checkpoint path) of every existing tagger checkpoint of the project, newest run first."""
    out = []
    for r in reversed(store.runs()):
        if r.model != "tagger":
            continue
        ckpts = dict(r.summary.get("checkpoints") or {})
        if r.checkpoint and "best" not in ckpts:
            ckpts["best"] = r.checkpoint
        for kind in ("best", "last"):
            path = ckpts.get(kind)
            if path and Path(path).is_file():
                out.append((f"run {r.id} · {r.name or r.model} · {kind}.pt", str(path)))
    return out


class TagSuggestionsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checkpoint = QComboBox(self)
        self.checkpoint.setToolTip("a tagger checkpoint of this project: its scores for the current image "
                                   "show next to each tag")
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["Tag", "Score", "Threshold"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.info = QLabel("choose a tagger checkpoint", self)
        self.info.setWordWrap(True)
        self.accept_button = QPushButton(f"Accept suggested tags ({ACCEPT_KEY})", self)
        self.accept_button.setToolTip("switch on every tag scoring at least its threshold (tuned on val); undo "
                                      "with Ctrl+Z")
        top = QHBoxLayout()
        top.addWidget(QLabel("Tagger:", self))
        top.addWidget(self.checkpoint, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.accept_button)

    def show_scores(self, rows: list[tuple[str, float, float, bool]]) -> None:
        """(tag name, score, threshold, on the image) rows; scores at or above the threshold in green."""
        self.table.setRowCount(len(rows))
        for r, (name, score, thr, on) in enumerate(rows):
            items = [QTableWidgetItem(name + ("  ✓" if on else "")), QTableWidgetItem(f"{score:.3f}"),
                     QTableWidgetItem(f"{thr:.3f}")]
            for c, it in enumerate(items):
                if score >= thr:
                    it.setForeground(ABOVE)
                if c:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, it)
        self.table.resizeColumnsToContents()


class TagSuggestionsFeature(QObject):
    def __init__(self, session: Session, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.host, self.bridge = session, host, bridge
        self.panel = TagSuggestionsPanel()
        self.dock = host.add_dock("Tag suggestions", scrolled(self.panel), Area.RightDockWidgetArea, hidden=True)
        self.accept_action = host.action("Accept suggested &tags", self.accept, (ACCEPT_KEY,), menu="&Edit")
        self.panel.accept_button.clicked.connect(self.accept)
        self.panel.checkpoint.currentIndexChanged.connect(self._on_checkpoint_changed)
        self.scorers: dict[str, TagScorer] = {}
        self.results: dict[tuple[str, int], dict] = {}  # (checkpoint, image id) -> job result
        self.handle: JobHandle | None = None
        self._pending: tuple[str, int] | None = None
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_changed.connect(self._on_image_changed)
        session.tags_changed.connect(self._on_tags_changed)
        bridge.broadcast.connect(self._on_broadcast)
        if session.store is not None:
            self._on_project_opened(session.store)

    # -- state --------------------------------------------------------------------------------
    @property
    def checkpoint(self) -> str | None:
        data = self.panel.checkpoint.currentData()
        return str(data) if data else None

    def current(self) -> dict | None:
        """The job result for the chosen checkpoint and the current image (None until it is in)."""
        ckpt, image_id = self.checkpoint, self.session.image_id
        if ckpt is None or image_id is None:
            return None
        return self.results.get((ckpt, int(image_id)))

    def refresh_checkpoints(self) -> None:
        store = self.session.store
        box = self.panel.checkpoint
        keep = box.currentData()
        box.blockSignals(True)
        box.clear()
        box.addItem("(none)", None)
        for label, path in tagger_checkpoints(store) if store is not None else []:
            box.addItem(label, path)
        box.setCurrentIndex(max(0, box.findData(keep)))
        box.blockSignals(False)
        if box.count() == 1:
            self.panel.info.setText("no tagger checkpoint in this project yet: train one with model 'tagger'")

    def select_checkpoint(self, path: str) -> None:
        box = self.panel.checkpoint
        i = box.findData(str(path))
        if i < 0:
            self.refresh_checkpoints()
            i = box.findData(str(path))
        box.setCurrentIndex(max(0, i))

    # -- session --------------------------------------------------------------------------------
    def _on_project_opened(self, _store: Store) -> None:
        self.results.clear()
        self.scorers.clear()
        self.refresh_checkpoints()
        self._show()

    def _on_project_closed(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle, self._pending = None, None
        self.results.clear()
        self.scorers.clear()
        self.panel.checkpoint.blockSignals(True)
        self.panel.checkpoint.clear()
        self.panel.checkpoint.blockSignals(False)
        self.panel.show_scores([])

    def _on_image_changed(self, _image_id: int | None) -> None:
        self._show()
        self._request()

    def _on_tags_changed(self, _image_ids: set[int]) -> None:
        self._show()

    def _on_checkpoint_changed(self, _index: int) -> None:
        self._show()
        self._request()

    def _on_broadcast(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.refresh_checkpoints()

    # -- scores ---------------------------------------------------------------------------------
    def _request(self) -> None:
        ckpt, image_id, store = self.checkpoint, self.session.image_id, self.session.store
        if ckpt is None or image_id is None or store is None or (ckpt, int(image_id)) in self.results:
            return
        key = (ckpt, int(image_id))
        if self._pending == key:
            return
        if self.handle is not None:
            self.handle.cancel()
        scorer = self.scorers.setdefault(ckpt, TagScorer(ckpt))
        self._pending = key
        self.panel.info.setText("scoring…")
        self.handle = h = self.bridge.submit(tag_scores_job, {"project": str(store.root), "image_id": key[1],
                                                              "scorer": scorer}, TASKS_LANE)
        h.finished.connect(self._on_scores)
        h.failed.connect(self._on_failed)

    def _on_scores(self, result: dict) -> None:
        if self.sender() is self.handle:
            self.handle, self._pending = None, None
        if result.get("cancelled") or "scores" not in result:
            return
        self.results[(str(result["checkpoint"]), int(result["image_id"]))] = result
        self._show()

    def _on_failed(self, message: str) -> None:
        if self.sender() is self.handle:
            self.handle, self._pending = None, None
        self.panel.info.setText(f"cannot score: {message}")
        self.session.show_status(f"Tag suggestions: {message}")

    def suggested(self) -> dict[int, float]:
        """Tags of the current image scoring at least their threshold that it does not have yet."""
        res, store = self.current(), self.session.store
        if res is None or store is None or self.session.image_id is None:
            return {}
        on = store.image_tags(int(self.session.image_id))
        return {t: s for t, s in res["scores"].items() if s >= res["thresholds"].get(t, 0.5) and t not in on}

    def _show(self) -> None:
        """The current image's scores in the table and, through the session, in the Tags panel."""
        res, store, image_id = self.current(), self.session.store, self.session.image_id
        if res is None or store is None or image_id is None:
            self.session.show_tag_scores(image_id, {})
            self.panel.show_scores([])
            self.panel.accept_button.setEnabled(False)
            if self.checkpoint is None and store is not None and self.panel.checkpoint.count() > 1:
                self.panel.info.setText("choose a tagger checkpoint")
            return
        names = {t.id: t.name for t in store.tags()}
        on = store.image_tags(int(image_id))
        scores = {t: (s, res["thresholds"].get(t, 0.5)) for t, s in res["scores"].items() if t in names}
        self.session.show_tag_scores(image_id, scores)
        rows = sorted(((names[t], s, thr, t in on) for t, (s, thr) in scores.items()), key=lambda r: -r[1])
        self.panel.show_scores(rows)
        n = len(self.suggested())
        self.panel.accept_button.setEnabled(n > 0)
        self.panel.info.setText(f"{n} tag{'s' if n != 1 else ''} to add at the tuned thresholds ({res['provenance']})"
                                if n else f"nothing to add: every tag at or above its threshold is on "
                                          f"({res['provenance']})")

    # -- accept ---------------------------------------------------------------------------------
    def accept(self) -> bool:
        """Switch on the suggested tags of the current image (one undoable step); False if nothing to do."""
        res, store, image_id = self.current(), self.session.store, self.session.image_id
        if store is None or image_id is None:
            return False
        if res is None:
            self.session.show_status("Tag suggestions: choose a tagger checkpoint and wait for its scores"
                                     if self.checkpoint is None or self.handle is None else
                                     "Tag suggestions: the scores of this image are not in yet")
            return False
        tags = self.suggested()
        if not tags:
            self.session.show_status("Tag suggestions: no tag above its threshold to add")
            return False
        names = {t.id: t.name for t in store.tags()}
        cmd = AcceptSuggestedTags(self.session, int(image_id), str(res["provenance"]), tags, names)
        if not cmd.push():
            self.session.show_status(f"NOT SAVED: {cmd.text()}: {cmd.error}", 0)
            return False
        self.session.show_status(f"{cmd.text()} (Ctrl+Z undoes)")
        return True
