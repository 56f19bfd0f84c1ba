"""The main window: the assembly of the workbench state, its flows and their widgets.

The workbench state (``app.workbench.Workbench``) owns what the window shows: session, corpus,
plan, the active backend's info, where it runs. Model work goes to ``EngineController`` (one
worker thread owns the model, ``ui.engines`` holds the local and hosted ones), and ingestion,
page rendering and file writes go to pools; the GUI thread only turns results into widgets.

This module lays the window out, builds the flows and connects them; each flow gets the state,
its controller and the widgets it works on, never the window: reading and counting sources in
``ui/sources_glue.py``, the local model in ``ui/local_model_glue.py``, asking and streaming in
``ui/ask_flow.py``, the local/hosted switch and consent in ``ui/hosted_glue.py``, session
persistence in ``ui/session_glue.py``, settings in ``ui/settings_glue.py``, the ways out of "does
not fit" in ``ui/ways_out.py``, the citation viewer in ``ui/citation_opener.py``. The state's
operations report what they changed (``Change``), and ``on_state_changed`` redraws only those
views. The window's own methods named after the flows only hand over to them (the public API
that menus, tests and benchmarks use).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.citations import Citation
from longdesk.app.paths import Paths
from longdesk.app.sessions import Session, SessionStore
from longdesk.app.settings import Settings, load_settings
from longdesk.app.workbench import Change, Workbench
from longdesk.engine.backends.base import BackendInfo, Failed
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import ThinkingMode, Where
from longdesk.ui.activity import ActivityBar
from longdesk.ui.ask_flow import AskBar, AskFlow
from longdesk.ui.batch_dialog import BatchDialog, open_batch_dialog
from longdesk.ui.citation_opener import CitationOpener
from longdesk.ui.dialogs import confirm_link
from longdesk.ui.engines import Engines
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.menus import MenuSlots, build_menus
from longdesk.ui.session_glue import SessionGlue
from longdesk.ui.sessions_panel import SessionsPanel
from longdesk.ui.settings_glue import SettingsGlue
from longdesk.ui.sources_glue import SourcesGlue
from longdesk.ui.theme import ThemeMode, apply_theme
from longdesk.ui.ways_out import WaysOut, WaysOutGlue
from longdesk.ui.welcome import WelcomePage
from longdesk.ui.widgets.budget_meter import BudgetMeter
from longdesk.ui.widgets.conversation import ConversationView
from longdesk.ui.widgets.model_bar import ModelBar
from longdesk.ui.widgets.source_viewer import SourceViewer
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.engine_worker import BackendFactory, EngineController, local_backend
from longdesk.ui.workers.pool import TaskRunner

STATE_FILE = "window.ini"

# Which views redraw for which changes (besides the conversation, see ``on_state_changed``).
_PAGE_CHANGES = (
    Change.SESSION
    | Change.SOURCES
    | Change.CORPUS
    | Change.PLAN
    | Change.TURNS
    | Change.PENDING
    | Change.META
)
_BUDGET_CHANGES = (
    Change.SESSION | Change.SOURCES | Change.CORPUS | Change.PLAN | Change.BACKEND | Change.WHERE
    | Change.TURNS | Change.PENDING | Change.SETTINGS | Change.THINKING
)  # fmt: skip
_TURN_CHANGES = Change.TURNS | Change.STREAM | Change.LOCATED


class MainWindow(QMainWindow):
    """Longdesk's main window.

    Signals:
        model_ready(object): the ModelEntry of the model about to be loaded (header checked).
        model_loaded(object): BackendInfo once the model is loaded on the worker.
        corpus_planned(object): the ContextPlan of the current sources.
        answer_finished(object): the TurnRecord of a finished (or stopped, or failed) answer.
        session_saved(object): the Session as written.
        sessions_listed(object): the Listing shown in the sessions panel.
        viewer_shown(object): the Citation now shown in the source viewer.
    """

    model_ready = Signal(object)
    model_loaded = Signal(object)
    corpus_planned = Signal(object)
    answer_finished = Signal(object)
    session_saved = Signal(object)
    sessions_listed = Signal(object)
    viewer_shown = Signal(object)

    def __init__(
        self,
        paths: Paths | None = None,
        *,
        backend_factory: BackendFactory = local_backend,
        restore_last_session: bool = True,
    ) -> None:
        super().__init__()
        self.paths = paths or Paths.default()
        settings, self._settings_warning = load_settings(self.paths.config)
        self.workbench = Workbench(settings)
        self.store = SessionStore(self.paths.data / "sessions")
        self.state = QSettings(str(self.paths.config / STATE_FILE), QSettings.Format.IniFormat)
        self.runner = TaskRunner(parent=self)
        save_pool = QThreadPool(self)
        save_pool.setMaxThreadCount(1)  # saves of one session never overtake each other
        self.save_runner = TaskRunner(save_pool, self)
        ids = itertools.count(1)  # one numbering for the requests of both workers
        self.engine = EngineController(backend_factory, self, ids=ids)
        self.engines = Engines(self.workbench, self.engine, ids)
        self._restore_last = restore_last_session
        self.theme_applied = False
        self.theme = ThemeMode(str(self.state.value("theme", ThemeMode.SYSTEM.value)))

        self.setWindowTitle("Longdesk")
        self.resize(_first_size())
        self.setAcceptDrops(True)
        self._build()
        self._build_flows()
        self._build_menus()
        self._connect()
        self._restore_window_state()
        self.workbench.subscribe(self.on_state_changed)
        self.refresh_all()
        if self._settings_warning:
            self.statusBar().showMessage(self._settings_warning, 10_000)

    # ================================================================== the state, read-only
    # For tests and benchmarks; every change goes through the Workbench's operations.
    @property
    def session(self) -> Session:
        return self.workbench.session

    @property
    def corpus(self) -> Corpus | None:
        return self.workbench.corpus

    @property
    def plan(self) -> ContextPlan | None:
        return self.workbench.plan

    @property
    def info(self) -> BackendInfo | None:
        return self.workbench.info

    @property
    def where(self) -> Where:
        return self.workbench.where

    @property
    def settings(self) -> Settings:
        return self.workbench.settings

    # ================================================================== layout
    def _build(self) -> None:
        """The widgets; the flows that work on them are built next (``_build_flows``)."""
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.model_bar = ModelBar(central)
        outer.addWidget(self.model_bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, central)
        self.splitter.setObjectName("mainSplitter")
        self.left_tabs = QTabWidget(self.splitter)
        self.sources = SourcesPanel()
        self.sessions_panel = SessionsPanel()
        self.left_tabs.addTab(self.sources, "Sources")
        self.left_tabs.addTab(self.sessions_panel, "Sessions")

        self.center = QStackedWidget(self.splitter)
        self.welcome = WelcomePage()
        self.center.addWidget(self.welcome)
        work = QWidget()
        work_layout = QVBoxLayout(work)
        work_layout.setContentsMargins(0, 0, 0, 0)
        work_layout.setSpacing(0)
        self.find_bar = QLineEdit(work)
        self.find_bar.setPlaceholderText("Find in the conversation (Enter)")
        self.find_bar.setClearButtonEnabled(True)
        self.find_bar.returnPressed.connect(self.on_find_bar_return_pressed)
        self.find_bar.setVisible(False)
        state = self.workbench
        self.conversation = ConversationView(lambda: (state.corpus, state.session.refs()), work)
        self.conversation.citation_clicked.connect(self.show_citation)
        self.conversation.link_requested.connect(self.on_link_requested)
        work_layout.addWidget(self.find_bar)
        work_layout.addWidget(self.conversation, 1)
        ask_bar = QWidget(work)
        ask_bar.setObjectName("askBar")
        ask_layout = QVBoxLayout(ask_bar)
        ask_layout.setContentsMargins(16, 8, 16, 10)
        self.budget = BudgetMeter(ask_bar)
        ask_layout.addWidget(self.budget)
        self.ways_out = WaysOut(ask_bar)  # one-click ways out of "does not fit" (ui/ways_out.py)
        ask_layout.addWidget(self.ways_out)
        row = QHBoxLayout()
        self.question = QPlainTextEdit(ask_bar)
        self.question.setObjectName("questionBox")
        self.question.setPlaceholderText("Ask about the sources… (Ctrl+Enter)")
        self.question.setFixedHeight(64)
        buttons = QVBoxLayout()
        self.ask_button = QPushButton("Ask", ask_bar)
        self.ask_button.setObjectName("askButton")
        self.stop_button = QPushButton("Stop", ask_bar)
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setVisible(False)
        self.thread_button = QPushButton("New thread", ask_bar)
        self.thread_button.setToolTip("Start a new conversation on the same sources (Ctrl+Shift+N)")
        buttons.addWidget(self.ask_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.thread_button)
        row.addWidget(self.question, 1)
        row.addLayout(buttons)
        ask_layout.addLayout(row)
        self.ask_hint = QLabel("", ask_bar)
        self.ask_hint.setObjectName("sourcesSummary")
        ask_layout.addWidget(self.ask_hint)
        work_layout.addWidget(ask_bar)
        self.center.addWidget(work)
        self.work_page = work

        self.viewer = SourceViewer(self.splitter)
        self.viewer.closed.connect(lambda: self.viewer.setVisible(False))
        self.viewer.setVisible(False)
        self.citation_opener = CitationOpener(self.viewer, self.runner, self)
        self.citation_opener.shown.connect(self.viewer_shown)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 1)
        self.splitter.setSizes([500, 760, 520])
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.activity = ActivityBar(self)
        self.statusBar().addPermanentWidget(self.activity)
        self.statusBar().showMessage("Starting…")
        self.recent_menu = QMenu("Open recent", self)

    def _build_flows(self) -> None:
        """Each flow gets the state, its controller and the widgets it works on."""
        state, status, activity = self.workbench, self.statusBar(), self.activity
        self.local = LocalModelGlue(
            state, self.engine, self.runner, self.paths, self.model_bar, self.welcome, status, activity, self
        )
        self.hosted = HostedGlue(
            state, self.engines, self.local, self.paths, self.model_bar, self.sources, status, self
        )
        self.sources_glue = SourcesGlue(
            state, self.engines, self.hosted, self.runner, self.paths, self.sources, status, activity, self
        )
        bar = AskBar(
            self.question, self.ask_button, self.stop_button, self.thread_button, self.ask_hint, self.budget
        )
        self.asking = AskFlow(
            state,
            self.engines,
            self.hosted,
            self.local,
            self.sources_glue,
            bar,
            self.conversation,
            self.sources,
            status,
            activity,
            self,
        )
        self.sessions_glue = SessionGlue(
            state,
            self.store,
            self.runner,
            self.save_runner,
            self.state,
            self.asking,
            self.sources_glue,
            self.local,
            self.sessions_panel,
            self.recent_menu,
            self.sources,
            self.viewer,
            status,
            self,
        )
        self.settings_glue = SettingsGlue(
            state,
            self.paths,
            self.runner,
            self.save_runner,
            self.local,
            self.hosted,
            self.sources_glue,
            status,
            self,
        )
        self.ways_out_glue = WaysOutGlue(
            state,
            self.ways_out,
            self.question,
            self.sources,
            self.local,
            self.hosted,
            self.settings_glue,
            self.runner,
            self.paths,
            self,
        )

    def _build_menus(self) -> None:
        slots = MenuSlots(
            new_session=self.new_session,
            new_thread=self.new_thread,
            add_files=self.sources_glue.on_add_files,
            add_folder=self.sources_glue.on_add_folder,
            choose_model=self.local.on_choose_model,
            export=self.on_export,
            run_question_list=self.open_batch_dialog,
            settings=self.settings_glue.on_settings,
            quit=self.close,
            find=self.on_find,
            ask=self.ask,
            stop=self.stop,
            regenerate_last=lambda: self.regenerate(len(self.workbench.session.turns) - 1),
            about=self.settings_glue.on_about,
            set_theme=self.set_theme,
        )
        self.theme_actions = build_menus(self, slots, self.recent_menu, self.theme)

    def _connect(self) -> None:
        """The signals between the widgets, the flows and the engines (the window is their assembly)."""
        local, hosted, sources, asking, sessions = (
            self.local,
            self.hosted,
            self.sources_glue,
            self.asking,
            self.sessions_glue,
        )
        self.model_bar.choose_model_requested.connect(local.on_choose_model)
        self.model_bar.where_changed.connect(hosted.on_model_bar_where_changed)
        self.model_bar.thinking_changed.connect(self.on_model_bar_thinking_changed)
        self.sources.sources_dropped.connect(sources.add_paths)
        self.sources.model_dropped.connect(local.use_model)
        self.sources.add_files_requested.connect(sources.on_add_files)
        self.sources.add_folder_requested.connect(sources.on_add_folder)
        self.sources.inclusion_changed.connect(sources.on_sources_inclusion_changed)
        self.welcome.add_files_requested.connect(sources.on_add_files)
        self.welcome.add_folder_requested.connect(sources.on_add_folder)
        self.welcome.choose_model_requested.connect(local.on_choose_model)
        self.thread_button.clicked.connect(sessions.new_thread)
        self.activity.cancel_requested.connect(asking.stop)

        local.model_ready.connect(self.model_ready)
        local.model_loaded.connect(self.model_loaded)
        local.plan_requested.connect(sources.request_plan)
        hosted.plan_requested.connect(sources.request_plan)
        hosted.plan_prepared.connect(sources.apply_plan)
        hosted.engine_created.connect(self._on_hosted_engine_created)
        sources.planned.connect(self.corpus_planned)
        sources.planned.connect(sessions.autosave)
        sources.planned.connect(asking.send_pending)
        sources.save_requested.connect(sessions.autosave)
        asking.answer_finished.connect(self.answer_finished)
        asking.save_requested.connect(sessions.autosave)
        asking.budget_changed.connect(self.ways_out_glue.refresh)
        sessions.saved.connect(self.session_saved)
        sessions.listed.connect(self.sessions_listed)

        self.engine.model_loaded.connect(local.on_engine_model_loaded)
        self.engine.planned.connect(sources.on_engine_planned)
        self.connect_engine(self.engine)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.styleHints().colorSchemeChanged.connect(lambda _s: self._apply_theme())

    def connect_engine(self, e: EngineController) -> None:
        """The signals every backend's controller shares (answers, counts, failures)."""
        a = self.asking
        e.counted.connect(a.on_engine_counted)
        e.progressed.connect(a.on_engine_progressed)
        e.read_finished.connect(a.on_engine_read_finished)
        e.text_streamed.connect(a.on_engine_text_streamed)
        e.usage_reported.connect(a.on_engine_usage_reported)
        e.finished.connect(a.on_engine_finished)
        e.failed.connect(self.on_engine_failed)

    @Slot(object)
    def _on_hosted_engine_created(self, engine: object) -> None:
        assert isinstance(engine, EngineController)
        self.connect_engine(engine)

    # ================================================================== start-up
    @Slot()
    def start_background_work(self) -> None:
        """After the first paint: check and load the model, list sessions, reopen the last one."""
        if not self.theme_applied:
            self._apply_theme()
        self.local.probe_and_load(None)
        self.refresh_sessions()
        last = str(self.state.value("last_session", ""))
        if self._restore_last and last:
            self.sessions_glue.open_session(last)

    # ================================================================== sources (ui/sources_glue.py)
    @Slot(list)
    def open_paths(self, paths: list[Path]) -> None:
        """What ``longdesk FILE...`` hands over (also from a later launch): the files become
        sources (a GGUF the model) and the window comes to the front."""
        if paths:
            self.sources.handle_paths(paths)
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()

    def add_paths(self, paths: Sequence[Path]) -> None:
        self.sources_glue.add_paths(paths)

    def request_plan(self) -> None:
        self.sources_glue.request_plan()

    @Slot(str)
    def on_model_bar_thinking_changed(self, mode: str) -> None:
        self.workbench.set_thinking(ThinkingMode(mode))
        if self.workbench.where is Where.HOSTED:
            self.request_plan()  # the output reserve, and so the consent's budget and cost, changed

    # ================================================================== failures, by request id
    @Slot(int, object)
    def on_engine_failed(self, rid: int, failure: object) -> None:
        if not isinstance(failure, Failed):
            return
        if rid == self.local.load_id:
            self.local.problem(f"The model could not be loaded: {failure.message}", failure.kind)
        elif rid == self.sources_glue.plan_id:
            self.statusBar().showMessage(f"Could not count the sources: {failure.message}", 15_000)
        elif rid == self.asking.ask_id:
            self.asking.on_ask_failed(failure)
        else:
            self.hosted.open_failed(rid, failure)

    # ================================================================== asking (ui/ask_flow.py)
    @property
    def streaming(self) -> bool:
        return self.asking.streaming

    @property
    def reading_note(self) -> str:
        return self.asking.reading_note

    @Slot()
    def ask(self) -> None:
        self.asking.ask()

    @Slot()
    def stop(self) -> None:
        self.asking.stop()

    def regenerate(self, index: int) -> None:
        self.asking.regenerate(index)

    def open_batch_dialog(self) -> BatchDialog:
        """File ▸ Run a question list… (one dialog per window)."""

        def create() -> BatchDialog:
            dialog = BatchDialog(
                self.workbench, self.engines, self.hosted, self.store, self.save_runner, self
            )
            dialog.thread_saved.connect(self.refresh_sessions)
            dialog.open_requested.connect(self.open_session)
            return dialog

        return open_batch_dialog(self, create)

    # ================================================================== citations
    @Slot(object)
    def show_citation(self, cite: object) -> None:
        """Open the source viewer at the cited place (rendering off the GUI thread)."""
        assert isinstance(cite, Citation)
        state = self.workbench
        self.citation_opener.open(cite, state.session.refs(), state.corpus, self.devicePixelRatioF())

    @Slot(QUrl)
    def on_link_requested(self, url: QUrl) -> None:
        if confirm_link(self, url):
            QDesktopServices.openUrl(url)

    # ================================================================== sessions (ui/session_glue.py)
    def autosave(self) -> None:
        self.sessions_glue.autosave()

    def refresh_sessions(self) -> None:
        self.sessions_glue.refresh_sessions()

    def open_session(self, session_id: str) -> None:
        self.sessions_glue.open_session(session_id)

    def new_session(self) -> None:
        self.sessions_glue.new_session()

    def new_thread(self) -> None:
        self.sessions_glue.new_thread()

    def rename_session(self, session_id: str, title: str) -> None:
        self.sessions_glue.rename_session(session_id, title)

    def delete_session(self, session_id: str) -> None:
        self.sessions_glue.delete_session(session_id)

    def on_export(self) -> None:
        self.sessions_glue.on_export()

    def export_to(self, path: Path) -> None:
        self.sessions_glue.export_to(path)

    # ============================================================ settings (ui/settings_glue.py), theme, find
    def apply_settings(self, new: Settings) -> None:
        self.settings_glue.apply_settings(new)

    def set_theme(self, mode: ThemeMode) -> None:
        self.theme = mode
        self.state.setValue("theme", mode.value)
        self.theme_actions[mode].setChecked(True)
        self._apply_theme()

    def _apply_theme(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
            self.theme_applied = True

    @Slot()
    def on_find(self) -> None:
        self.find_bar.setVisible(True)
        self.find_bar.setFocus()
        self.find_bar.selectAll()

    @Slot()
    def on_find_bar_return_pressed(self) -> None:
        hits = self.conversation.find_text(self.find_bar.text())
        self.statusBar().showMessage(f"{hits} turn{'s' if hits != 1 else ''} match", 3000)

    # ================================================================== redrawing what changed
    def on_state_changed(self, change: Change) -> None:
        """Redraw the views that show what ``change`` names, and only those."""
        state = self.workbench
        if Change.SESSION in change:
            self.conversation.set_turns(state.session.turns)
        elif change & _TURN_CHANGES:
            self.conversation.sync_turns(state.session.turns, state.streaming_index)
        if change & _PAGE_CHANGES:
            self.refresh_page()
        if change & _BUDGET_CHANGES:
            self.asking.refresh_budget()

    def refresh_all(self) -> None:
        """Redraw every view from the state."""
        self.on_state_changed(Change.ALL & ~Change.SESSION)

    def refresh_page(self) -> None:
        """The welcome or the work page, the window title and the sources summary."""
        state = self.workbench
        has_work = state.has_work
        self.center.setCurrentWidget(self.work_page if has_work else self.welcome)
        docs = [d for d in state.session.documents if d.included]
        skipped = len(state.corpus.issues) if state.corpus is not None else 0
        if docs:
            self.sources.summary.setText(
                f"{len(docs)} document{'s' if len(docs) != 1 else ''} in context, "
                f"{sum(d.tokens for d in docs):,} tokens of text"
                + (f"; {skipped} file{'s' if skipped != 1 else ''} left out" if skipped else "")
                + (" · counting…" if state.plan is None and state.corpus is not None else "")
            )
        self.setWindowTitle(f"{state.session.title} — Longdesk" if has_work else "Longdesk")

    def _restore_window_state(self) -> None:
        geometry = self.state.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.state.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter = self.state.value("splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.sources.handle_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.state.setValue("geometry", self.saveGeometry())
        self.state.setValue("window_state", self.saveState())
        self.state.setValue("splitter", self.splitter.saveState())
        self.state.sync()
        self.sources_glue.cancel()
        self.hosted.shutdown(30_000)
        self.engine.shutdown(60_000)
        self.runner.close(5000)
        self.save_runner.close(10_000)
        super().closeEvent(event)


def _first_size() -> QSize:
    """1320 x 820, or less on a small screen (before any saved window state applies)."""
    wanted = QSize(1320, 820)
    room = QGuiApplication.primaryScreen().availableGeometry().size() * 0.95
    return wanted.boundedTo(room)
