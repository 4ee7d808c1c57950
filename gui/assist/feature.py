"""The Assist feature: a trained run proposes shapes (or tags) for the image on screen; the labeler accepts,
edits or rejects them (issue 19).

``AssistFeature(session, canvas, host, bridge)`` adds the "Assist" dock (bottom, opened from the Assist
menu), one overlay layer (``SuggestionLayer``: dashed boxes/masks with score chips) and the review keys
(``ReviewKeys``). Picking a run makes its checkpoint the assistant (``engine.assist.suggest.Assistant``, LRU
cache of ``CACHE_SIZE`` predictions); when an image opens, its stored pending suggestions show at once and
``suggest_job`` (lane ``assist``, never the GUI thread) adds the model's, then ``prefetch_job`` predicts the
next ``PREFETCH`` images (in the uncertainty order when one is shown). Unload drops the model and the cache
on the lane. Suggestions are computed and shown, and the keys review them, while the dock is open. The
review actions are in ``review_actions``, Pre-label… and Sort by uncertainty in ``batch``.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QListWidgetItem

from engine.assist.suggest import Assistant
from engine.events import Event, RunFinished
from engine.project.store import Store, StoreError, Suggestion
from gui.assist.batch import DEVICE, LANE, BatchActions
from gui.assist.jobs import prefetch_job, suggest_job, unload_job
from gui.assist.keys import ReviewKeys
from gui.assist.overlay import SuggestionLayer
from gui.assist.panel import NO_RUN, AssistPanel
from gui.assist.review_actions import ReviewActions
from gui.bridge import EngineBridge, JobHandle
from gui.canvas.view import CanvasView
from gui.session import Session
from gui.widgets.docks import Area, DockHost, scrolled

TITLE = "Assist"
CACHE_SIZE = 16  # predictions kept by the assistant (the engine bounds it; unload empties it)
PREFETCH = 3  # images predicted ahead
DOCK_HEIGHT = 230
DOCK_WIDTH_SHARE = 0.65  # of the window, beside Plots


class AssistFeature(QObject, ReviewActions, BatchActions):
    suggestions_shown = Signal(object)  # image id (or None): the overlay and list show its pending suggestions
    job_done = Signal(str)  # "suggest" | "prefetch" | "rank" | "prelabel" | "unload" (for tests and status)

    def __init__(self, session: Session, canvas: CanvasView, host: DockHost, bridge: EngineBridge) -> None:
        super().__init__(session)
        self.session, self.canvas, self.host, self.bridge = session, canvas, host, bridge
        self.panel = AssistPanel(host.widget)
        # bottom area beside Plots, hidden until Assist > Assist dock (or View) opens it: the right-hand tab group
        # is full (its tab bar sets the width the canvas loses), a wide and short panel fits below the canvas,
        # and hidden and untabbed it changes neither the window's minimum size nor its tab bars (as Evaluation)
        self.dock = host.add_dock(TITLE, scrolled(self.panel), Area.BottomDockWidgetArea, tab=False)
        self.dock.hide()
        self._sized = False
        self.layer = SuggestionLayer()
        self.layer.setVisible(False)  # while the dock is closed
        canvas.scene().addItem(self.layer)
        self.keys = ReviewKeys(canvas, self)
        self._own_stack = QUndoStack(self)  # used only when no feature shares a stack through the session
        self.assistant: Assistant | None = None
        self.run_id: int | None = None
        self.provenance: str | None = None
        self.pending: list[Suggestion] = []  # shown, best score first
        self.current: int | None = None  # suggestion id Enter accepts and Del rejects
        self.order: list[int] | None = None  # image ids by uncertainty (Sort by uncertainty)
        self._image_ids: list[int] = []
        self._names: dict[int, str] = {}
        self._colors: dict[int, str] = {}
        self._tag_names: dict[int, str] = {}
        self.jobs: dict[str, JobHandle] = {}
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(300)
        self._stats_timer.timeout.connect(self.refresh_stats)
        self._build_menu()
        self._connect_panel()
        canvas.clicked.connect(self._on_canvas_clicked)
        session.project_opened.connect(self._on_project_opened)
        session.project_closed.connect(self._on_project_closed)
        session.image_changed.connect(self._on_image_changed)
        session.store_changed.connect(self._on_store_changed)
        session.annotations_changed.connect(self._on_annotations_changed)
        bridge.broadcast.connect(self._on_broadcast)
        if session.store is not None:
            self._on_project_opened(session.store)

    # -- assembly -----------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        host = self.host
        menu = host.menu("&Assist")
        self.dock.toggleViewAction().setText("Assist &dock")
        self.dock.toggleViewAction().triggered.connect(self._on_dock_toggled)
        self.dock.toggleViewAction().toggled.connect(self._on_dock_shown)
        menu.addAction(self.dock.toggleViewAction())
        # the keys work on the canvas (ReviewKeys), not as window shortcuts: "\t" only shows them in the menu
        host.action("&Accept suggestion\tEnter", self.accept_current, menu=menu)
        host.action("Accept all &above the threshold\tShift+Enter", self.accept_above, menu=menu)
        host.action("&Reject suggestion\tDel", self.reject_current, menu=menu)
        menu.addSeparator()
        host.action("&Pre-label images…", self.show_prelabel_dialog, menu=menu)
        host.action("Sort by &uncertainty", self.rank, menu=menu)
        host.action("&Unload assistant", self.unload, menu=menu)

    def _connect_panel(self) -> None:
        p = self.panel
        p.runs.currentIndexChanged.connect(self._on_run_chosen)
        p.unload_button.clicked.connect(self.unload)
        p.min_score.valueChanged.connect(self._on_min_score)
        p.list.itemClicked.connect(self._on_item_clicked)
        p.list.itemDoubleClicked.connect(self._on_item_double_clicked)
        p.accept_button.clicked.connect(self.accept_current)
        p.accept_above_button.clicked.connect(self.accept_above)
        p.reject_button.clicked.connect(self.reject_current)
        p.reject_all_button.clicked.connect(self.reject_all)
        p.prelabel_button.clicked.connect(self.show_prelabel_dialog)
        p.cancel_button.clicked.connect(self._on_cancel_batch)
        p.rank_button.clicked.connect(self.rank)
        p.ranked.itemClicked.connect(self._on_ranked_clicked)

    def show(self) -> None:
        """Open the Assist dock."""
        self.dock.show()
        self.dock.raise_()
        self._on_dock_toggled(True)

    def _on_dock_shown(self, shown: bool) -> None:
        """Suggestions show (and the review keys work) while the Assist dock is open."""
        self.layer.setVisible(shown)
        if shown:
            self.refresh()
            self.request_suggestions()

    def _on_dock_toggled(self, checked: bool) -> None:
        """The first time the user opens it: most of the bottom width (Plots keeps the rest)."""
        if checked and not self._sized:
            self._sized = True
            QTimer.singleShot(0, self._size_dock)  # once laid out (resizing a hidden dock does nothing)

    def _size_dock(self) -> None:
        width = self.host.widget.width()
        self.host.resize_dock(self.dock, DOCK_HEIGHT, Qt.Orientation.Vertical)
        self.host.resize_dock(self.dock, int(width * DOCK_WIDTH_SHARE), Qt.Orientation.Horizontal)
        beside = [d for d in self.host.docks(Area.BottomDockWidgetArea) if d is not self.dock and d.isVisible()]
        for d in beside:
            self.host.resize_dock(d, int(width * (1 - DOCK_WIDTH_SHARE) / len(beside)), Qt.Orientation.Horizontal)

    @property
    def stack(self) -> QUndoStack:
        """Where review commands go: the session's shared history (labeling's), else this feature's own."""
        return self.session.undo_stack or self._own_stack

    # -- session ---------------------------------------------------------------------------------------
    def _on_project_opened(self, store: Store) -> None:
        self._drop_assistant()
        self._own_stack.clear()
        self.order = None
        self.panel.ranked.clear()
        self._read_project(store)
        self.refresh_runs()
        self.refresh()
        self.refresh_stats()

    def _read_project(self, store: Store) -> None:
        cats = store.categories()
        self._names = {c.id: c.name for c in cats}
        self._colors = {c.id: c.color for c in cats}
        self._tag_names = {t.id: t.name for t in store.tags()}
        self._image_ids = [im.id for im in store.images()]
        keep = self.panel.accept_as.currentData()
        self.panel.accept_as.clear()
        self.panel.accept_as.addItem("the model's category", None)
        for c in cats:
            self.panel.accept_as.addItem(c.name, c.id)
        self.panel.accept_as.setCurrentIndex(max(0, self.panel.accept_as.findData(keep)) if keep is not None else 0)

    def _on_project_closed(self) -> None:
        self._drop_assistant(unload=False)  # the window may be closing (lanes shut): the model goes with its last job
        self._own_stack.clear()
        self.pending, self.current, self.order = [], None, None
        self.layer.clear()
        self.panel.list.clear()
        self.panel.ranked.clear()

    def _on_store_changed(self) -> None:
        store = self.session.store
        if store is not None:
            self._read_project(store)
            self.refresh_runs()
            self.refresh()
            self.refresh_stats()

    def _on_image_changed(self, image_id: int | None) -> None:
        for name in ("suggest", "prefetch"):
            if (h := self.jobs.get(name)) is not None:
                h.cancel()
        self.current = None
        self.refresh()
        self.request_suggestions()

    def _on_annotations_changed(self, _image_ids: set[int]) -> None:
        self._stats_timer.start()  # an accepted shape edited later counts as edited

    def _on_broadcast(self, events: list[Event]) -> None:
        if any(isinstance(e, RunFinished) for e in events):
            self.refresh_runs()

    # -- the assistant ---------------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        """Runs with a checkpoint, newest first; keeps the choice when it is still there."""
        store, combo = self.session.store, self.panel.runs
        keep = self.run_id
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(NO_RUN, None)
        for r in reversed(store.runs() if store is not None else []):
            if r.checkpoint:
                combo.addItem(f"run {r.id} · {r.name or r.model} · {r.status}", r.id)
        idx = combo.findData(keep) if keep is not None else 0
        combo.setCurrentIndex(max(0, idx))
        combo.blockSignals(False)
        if keep is not None and idx < 0:
            self._drop_assistant()
            self.refresh()
        self._show_state()

    def checkpoint_of(self, run_id: int) -> str:
        store = self.session.store
        assert store is not None
        return str(store.run_checkpoint(int(run_id)))

    def set_run(self, run_id: int | None) -> None:
        """Make ``run_id``'s checkpoint the assistant (None: no assistant); the model loads on first use."""
        idx = self.panel.runs.findData(run_id) if run_id is not None else 0
        if idx < 0:
            raise StoreError(f"run {run_id} has no checkpoint to assist with")
        if self.panel.runs.currentIndex() != idx:
            self.panel.runs.setCurrentIndex(idx)  # -> _on_run_chosen
        elif run_id != self.run_id:
            self._on_run_chosen(idx)

    def _on_run_chosen(self, index: int) -> None:
        run_id = self.panel.runs.itemData(index)
        self._drop_assistant()
        if run_id is not None and self.session.store is not None:
            try:
                self.assistant = Assistant(self.checkpoint_of(run_id), DEVICE, cache_size=CACHE_SIZE)
            except StoreError as e:
                self.session.show_status(str(e))
                return
            self.run_id = int(run_id)
            self.provenance = f"model:{self.run_id}"
        self.order = None
        self.panel.ranked.clear()
        self.refresh()
        self.request_suggestions()
        self._show_state()

    def _drop_assistant(self, unload: bool = True) -> None:
        """Forget the assistant; with ``unload`` its model and cache are freed on the lane, behind whatever
        runs there (the GUI thread never waits for the model)."""
        for name in ("suggest", "prefetch", "rank"):
            if (h := self.jobs.pop(name, None)) is not None:
                h.cancel()
        if self.assistant is not None and unload:
            h = self.bridge.submit(unload_job, {"assistant": self.assistant}, LANE)
            self._track("unload", h)
        self.assistant, self.run_id, self.provenance = None, None, None

    def unload(self) -> None:
        """Unload: no assistant (the model and its cache go); stored suggestions stay reviewable."""
        if self.assistant is None:
            self.session.show_status("No assistant is loaded")
            return
        self.panel.runs.setCurrentIndex(0)  # -> _on_run_chosen(NO_RUN) -> _drop_assistant
        self.session.show_status("Assistant unloaded")

    def _show_state(self, text: str | None = None) -> None:
        if text is None:
            text = (f"Assisting with run {self.run_id} (model loads on first use)" if self.assistant is not None
                    else "Pick a run to get suggestions; stored suggestions (Pre-label…) can be reviewed anyway")
        self.panel.state.setText(text)

    # -- jobs --------------------------------------------------------------------------------------------
    def _track(self, name: str, handle: JobHandle) -> JobHandle:
        self.jobs[name] = handle
        handle.finished.connect(self._on_job_finished)
        handle.failed.connect(self._on_job_failed)
        handle.setObjectName(name)
        return handle

    def _job_name(self) -> str:
        h = self.sender()
        return h.objectName() if isinstance(h, JobHandle) else ""

    def request_suggestions(self) -> JobHandle | None:
        """Compute (or read from the cache) the current image's suggestions on the engine lane."""
        store, image_id, a = self.session.store, self.session.image_id, self.assistant
        if store is None or image_id is None or a is None or not self.layer.isVisible():
            return None  # nothing to do, or the dock is closed (no model call for nobody)
        self._show_state(f"Computing suggestions with run {self.run_id}…")
        cfg = {"project": str(store.root), "assistant": a, "image_id": int(image_id),
               "threshold": float(self.panel.min_score.value())}
        return self._track("suggest", self.bridge.submit(suggest_job, cfg, LANE))

    def _prefetch(self, image_id: int) -> None:
        store, a = self.session.store, self.assistant
        ids = self.next_ids(image_id)
        if store is None or a is None or not ids:
            return
        self._track("prefetch", self.bridge.submit(prefetch_job, {"project": str(store.root), "assistant": a,
                                                                  "image_ids": ids}, LANE))

    def next_ids(self, image_id: int) -> list[int]:
        """The ``PREFETCH`` images after ``image_id`` (the uncertainty order when shown, else the project's)."""
        seq = self.order if self.order and image_id in self.order else self._image_ids
        try:
            k = seq.index(image_id)
        except ValueError:
            return []
        return list(seq[k + 1: k + 1 + PREFETCH])

    def _on_job_finished(self, result: dict) -> None:
        name = self._job_name()
        handle = self.sender()
        if self.jobs.get(name) is handle:
            del self.jobs[name]
        if result.get("cancelled"):
            self._end_batch(name, "cancelled")
            self.job_done.emit(name)
            return
        if name == "suggest":
            image_id = int(result["image_id"])
            if image_id == self.session.image_id and self.assistant is not None:
                self.provenance = str(result["provenance"])
                self.refresh()
                self.refresh_stats()
                self._prefetch(image_id)
        elif name == "rank":
            self._show_ranked([(int(i), float(u)) for i, u in result["order"]])
            self._end_batch(name, f"{len(result['order'])} images ranked")
        elif name == "prelabel":
            self._on_prelabelled(result)
        self.job_done.emit(name)

    def _on_job_failed(self, message: str) -> None:
        name = self._job_name()
        handle = self.sender()
        if self.jobs.get(name) is handle:
            del self.jobs[name]
        self.session.show_status(f"Assist {name} failed: {message}", 0)
        self._show_state(f"{name} failed: {message}")
        self._end_batch(name, "failed")
        self.job_done.emit(name)

    # -- what is shown ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the image's pending suggestions (of the assistant's run, else of every run) and show them."""
        store, image_id = self.session.store, self.session.image_id
        shown: list[Suggestion] = []
        if store is not None and image_id is not None and self.canvas.image_size()[0] > 0:
            try:
                rows = store.suggestions(image_id, provenance=self.provenance)
            except StoreError:
                rows = []
            low = float(self.panel.min_score.value())
            shown = [s for s in rows if s.score is None or s.score >= low]
            shown.sort(key=lambda s: (-(s.score if s.score is not None else 1.0), s.id or 0))
        self.pending = shown
        ids = [s.id for s in shown]
        if self.current not in ids:
            self.current = ids[0] if ids else None
        self.layer.set_suggestions(shown, self._colors, self._names, self.current)
        self._fill_list()
        if self.assistant is not None and "suggest" not in self.jobs:
            n = len(shown)
            self._show_state(f"Run {self.run_id}: {n} suggestion{'s' if n != 1 else ''} on this image")
        self.suggestions_shown.emit(image_id)

    def _label(self, s: Suggestion) -> str:
        score = "" if s.score is None else f" {s.score:.2f}"
        if s.geometry is None:
            return f"tag {self._tag_names.get(int(s.tag_id or 0), s.tag_id)}{score}"
        return f"{self._names.get(int(s.category_id or 0), s.category_id)}{score} ({s.kind}, {s.provenance})"

    def _fill_list(self) -> None:
        lst = self.panel.list
        lst.blockSignals(True)
        lst.clear()
        for s in self.pending:
            item = QListWidgetItem(self._label(s))
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            lst.addItem(item)
            if s.id == self.current:
                lst.setCurrentItem(item)
        lst.blockSignals(False)

    def set_current(self, suggestion_id: int | None) -> None:
        if suggestion_id is not None and suggestion_id not in [s.id for s in self.pending]:
            return
        self.current = suggestion_id
        self.layer.set_current(suggestion_id)
        for k in range(self.panel.list.count()):
            item = self.panel.list.item(k)
            if item.data(Qt.ItemDataRole.UserRole) == suggestion_id:
                self.panel.list.setCurrentItem(item)

    def _on_min_score(self, _value: float) -> None:
        self.refresh()
        self.request_suggestions()  # the cached prediction answers at once: no new model call

    def _on_canvas_clicked(self, x: float, y: float, _modifiers: int) -> None:
        sid = self.layer.at(x, y)
        if sid is not None:
            self.set_current(sid)

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self.set_current(item.data(Qt.ItemDataRole.UserRole))

    def _on_item_double_clicked(self, item: QListWidgetItem) -> None:
        self.accept_ids([int(item.data(Qt.ItemDataRole.UserRole))])

    # -- for tests and scripts ---------------------------------------------------------------------------------
    def chip_center(self, suggestion_id: int) -> QPointF | None:
        """Viewport position of a suggestion's score chip (where a click accepts it)."""
        t = self.canvas.viewportTransform()
        for e in self.layer.entries:
            if e.id == suggestion_id:
                return self.layer._chip(e, t).center()
        return None
