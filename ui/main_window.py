"""The main window: sources, model bar, budget, conversation and source viewer, wired to the engine.

The window holds no engine state of its own beyond immutable values (Corpus, ContextPlan,
Session). Model work goes to ``EngineController`` (one worker thread owns the model), and
ingestion, page rendering and file writes go to pools; the GUI thread only turns results into
widgets. Signals from the worker carry request ids and anything not awaited is dropped.

This module lays the window out and keeps the shared state (session, corpus, plan, the active
backend's info); the flows live beside it: asking and streaming in ``ui/ask_flow.py``, session
persistence in ``ui/session_glue.py``, the local/hosted switch and consent in
``ui/hosted_glue.py``, menus in ``ui/menus.py``, the citation viewer flow in
``ui/citation_opener.py``, Qt-free state in ``app/workspace.py`` and ``app/sessions.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.citations import Citation
from app.paths import Paths
from app.secrets import keyring_problem, store_key
from app.sessions import DocRecord, Session, SessionStore
from app.settings import Settings, load_settings, save_settings
from app.workspace import (
    THINKING_RESERVE,
    add_sources,
    context_for,
    doc_records,
    included_corpus,
    issue_rows,
    plan_tokens,
    with_tokens,
)
from engine.backends.base import BackendInfo, Failed, FailureKind
from engine.context.plan import ContextPlan
from engine.corpus.load import load_sources
from engine.corpus.model import Corpus
from ui.activity import ActivityBar
from ui.ask_flow import AskFlow
from ui.citation_opener import CitationOpener
from ui.dialogs import AboutDialog, SettingsDialog, confirm_link, llama_versions, pick_model_file
from ui.hosted_glue import HostedGlue
from ui.menus import build_menus
from ui.session_glue import SessionGlue
from ui.sessions_panel import SessionsPanel
from ui.theme import ThemeMode, apply_theme
from ui.welcome import WelcomePage
from ui.widgets.budget_meter import BudgetFigures, BudgetMeter
from ui.widgets.conversation import ConversationView
from ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL, ModelBar
from ui.widgets.source_viewer import SourceViewer
from ui.widgets.sources_panel import SourcesPanel
from ui.workers.engine_worker import BackendFactory, EngineController, LoadModel, PlanCorpus, local_backend
from ui.workers.pool import JobContext, TaskRunner

if TYPE_CHECKING:
    from app.models import ModelEntry

STATE_FILE = "window.ini"
# Settings that change what the hosted worker opens or what may be sent to it.
_HOSTED_FIELDS = (
    "hosted_preset",
    "hosted_endpoint",
    "hosted_model",
    "hosted_context_tokens",
    "hosted_tokenizer",
    "hosted_leave_out_secrets",
)


def _probe_model(paths: Paths, settings: Settings, explicit: Path | None) -> ModelEntry:
    """Runs on a pool thread; it also imports the model stack (numpy, llama.cpp) off the GUI thread."""
    from app.models import default_model_path, describe_model
    from engine.backends.local import LocalSettings  # noqa: F401 - warm the import for the GUI thread

    if explicit is not None:
        return describe_model(explicit, "chosen")
    if settings.default_model:
        return describe_model(Path(settings.default_model).expanduser(), "settings")
    return describe_model(default_model_path(paths), "default")


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
        self.settings, self._settings_warning = load_settings(self.paths.config)
        self.store = SessionStore(self.paths.data / "sessions")
        self.state = QSettings(str(self.paths.config / STATE_FILE), QSettings.Format.IniFormat)
        self.runner = TaskRunner(parent=self)
        save_pool = QThreadPool(self)
        save_pool.setMaxThreadCount(1)  # saves of one session never overtake each other
        self.save_runner = TaskRunner(save_pool, self)
        self.ids = itertools.count(1)  # one numbering for the requests of both workers
        self.engine = EngineController(backend_factory, self, ids=self.ids)
        self._restore_last = restore_last_session
        self.session = Session.new()
        self.corpus: Corpus | None = None
        self.plan: ContextPlan | None = None
        self.info: BackendInfo | None = None  # the active backend's (local or hosted)
        self.local_info: BackendInfo | None = None
        self.local_failure: tuple[FailureKind, str] | None = None  # why the local model cannot serve
        self.entry: ModelEntry | None = None
        self.where = WHERE_LOCAL
        self.ingest: JobContext | None = None
        self.last_prefix = 0
        self._model_path: Path | None = None
        self._plan_id = 0
        self._load_id = 0
        self.asking = AskFlow(self)
        self.sessions_glue = SessionGlue(self)
        self.hosted = HostedGlue(self)
        self.theme_applied = False
        self.theme = ThemeMode(str(self.state.value("theme", ThemeMode.SYSTEM.value)))

        self.setWindowTitle("Longdesk")
        self.resize(_first_size())
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()
        self._connect_engine()
        self._restore_window_state()
        self.refresh_all()
        if self._settings_warning:
            self.statusBar().showMessage(self._settings_warning, 10_000)

    # ================================================================== layout
    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.model_bar = ModelBar(central)
        self.model_bar.choose_model_requested.connect(self.on_choose_model)
        self.model_bar.where_changed.connect(self.hosted.on_model_bar_where_changed)
        self.model_bar.thinking_changed.connect(self.on_model_bar_thinking_changed)
        outer.addWidget(self.model_bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, central)
        self.splitter.setObjectName("mainSplitter")
        self.left_tabs = QTabWidget(self.splitter)
        self.sources = SourcesPanel()
        self.sources.sources_dropped.connect(self.add_paths)
        self.sources.model_dropped.connect(self.use_model)
        self.sources.add_files_requested.connect(self.on_add_files)
        self.sources.add_folder_requested.connect(self.on_add_folder)
        self.sources.inclusion_changed.connect(self.on_sources_inclusion_changed)
        self.sessions_panel = SessionsPanel()
        self.sessions_panel.open_requested.connect(self.sessions_glue.open_session)
        self.sessions_panel.rename_requested.connect(self.sessions_glue.rename_session)
        self.sessions_panel.delete_requested.connect(self.sessions_glue.delete_session)
        self.left_tabs.addTab(self.sources, "Sources")
        self.left_tabs.addTab(self.sessions_panel, "Sessions")

        self.center = QStackedWidget(self.splitter)
        self.welcome = WelcomePage()
        self.welcome.add_files_requested.connect(self.on_add_files)
        self.welcome.add_folder_requested.connect(self.on_add_folder)
        self.welcome.choose_model_requested.connect(self.on_choose_model)
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
        self.conversation = ConversationView(self.asking.check_citations, work)
        self.conversation.citation_clicked.connect(self.show_citation)
        self.conversation.regenerate_requested.connect(self.asking.regenerate)
        self.conversation.link_requested.connect(self.on_link_requested)
        work_layout.addWidget(self.find_bar)
        work_layout.addWidget(self.conversation, 1)
        ask_bar = QWidget(work)
        ask_bar.setObjectName("askBar")
        ask_layout = QVBoxLayout(ask_bar)
        ask_layout.setContentsMargins(16, 8, 16, 10)
        self.budget = BudgetMeter(ask_bar)
        ask_layout.addWidget(self.budget)
        row = QHBoxLayout()
        self.question = QPlainTextEdit(ask_bar)
        self.question.setObjectName("questionBox")
        self.question.setPlaceholderText("Ask about the sources… (Ctrl+Enter)")
        self.question.setFixedHeight(64)
        self.question.textChanged.connect(self.asking.on_question_text_changed)
        buttons = QVBoxLayout()
        self.ask_button = QPushButton("Ask", ask_bar)
        self.ask_button.setObjectName("askButton")
        self.ask_button.clicked.connect(self.ask)
        self.stop_button = QPushButton("Stop", ask_bar)
        self.stop_button.setObjectName("stopButton")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setVisible(False)
        self.thread_button = QPushButton("New thread", ask_bar)
        self.thread_button.setToolTip("Start a new conversation on the same sources (Ctrl+Shift+N)")
        self.thread_button.clicked.connect(self.new_thread)
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
        self.activity.cancel_requested.connect(self.stop)
        self.statusBar().addPermanentWidget(self.activity)
        self.statusBar().showMessage("Starting…")

    def _build_menus(self) -> None:
        actions = build_menus(self)
        self.recent_menu = actions.recent
        self.theme_actions = actions.themes

    def _connect_engine(self) -> None:
        self.engine.model_loaded.connect(self.on_engine_model_loaded)
        self.engine.planned.connect(self.on_engine_planned)
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

    def active_engine(self) -> EngineController:
        """The controller whose worker owns the backend now chosen in the model bar."""
        if self.where == WHERE_HOSTED and self.hosted.engine is not None:
            return self.hosted.engine
        return self.engine

    # ================================================================== start-up
    @Slot()
    def start_background_work(self) -> None:
        """After the first paint: check and load the model, list sessions, reopen the last one."""
        if not self.theme_applied:
            self._apply_theme()
        self._probe_and_load(None)
        self.refresh_sessions()
        last = str(self.state.value("last_session", ""))
        if self._restore_last and last:
            self.sessions_glue.open_session(last)

    def _probe_and_load(self, explicit: Path | None) -> None:
        self.model_bar.set_state("checking…")
        self.local_failure = None
        self.runner.run_task(
            lambda: _probe_model(self.paths, self.settings, explicit),
            self.on_model_probed,
            lambda msg: self._model_problem(f"The model could not be checked: {msg}"),
        )

    def on_model_probed(self, entry: ModelEntry) -> None:
        self.entry = entry
        self.model_bar.set_entry(entry)
        if entry.error:
            self._model_problem(f"The model is unusable: {entry.error}")
            self.model_ready.emit(entry)
            return
        fit = entry.memory.describe() if entry.memory else ""
        self.welcome.model_status.setText(
            f"{entry.name} — {entry.architecture}, {entry.quantization}, {entry.size_bytes / 1e6:,.0f} MB, "
            f"context {entry.context_length:,} tokens. Memory: {fit}"
        )
        self._model_path = entry.path
        n_ctx = context_for(entry.context_length, self.settings.context_tokens)
        from engine.backends.local import LocalSettings  # already imported by the probe

        local = LocalSettings(
            n_ctx=n_ctx,
            n_threads=self.settings.n_threads,
            n_gpu_layers=self.settings.n_gpu_layers,
            # Read once, ask forever: readings are saved and restored across sessions.
            snapshot_dir=self.paths.snapshots,
            snapshot_budget_bytes=int(self.settings.snapshot_budget_gb * (1 << 30)),
        )
        self.local_info = None
        if self.where != WHERE_HOSTED:
            self.info = None
            self.model_bar.set_state("loading…")
        self.activity.start(f"Loading {entry.name}…", cancellable=False)
        self._load_id = self.engine.submit(lambda rid: LoadModel(rid, entry.path, local))
        self.model_ready.emit(entry)

    def _model_problem(self, message: str, kind: FailureKind = FailureKind.MODEL) -> None:
        self.local_failure = (kind, message)
        if self.where != WHERE_HOSTED:
            self.model_bar.set_state("no model")
            self.statusBar().showMessage(message)
        self.welcome.model_status.setText(message)
        self.activity.finish()

    # ================================================================== sources
    @Slot()
    def on_add_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add sources", str(Path.home()))
        if names:
            self.sources.handle_paths([Path(n) for n in names])

    @Slot()
    def on_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder", str(Path.home()))
        if folder:
            self.add_paths([Path(folder)])

    @Slot(list)
    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add files and folders to the session's sources and read them all (off the GUI thread)."""
        self.session = add_sources(self.session, paths)
        self.ingest_sources()

    def ingest_sources(self) -> None:
        if self.ingest is not None:
            self.ingest.cancel()
        sources = [Path(s) for s in self.session.sources]
        if not sources:
            return
        self.activity.start("Reading sources…")

        excluded, previous = self.session.excluded, self.session.documents
        cache_dir = self.paths.cache

        def job(ctx: JobContext) -> tuple[Corpus, tuple[DocRecord, ...]]:
            corpus = load_sources(
                sources,
                cache_dir=cache_dir,
                progress=lambda p: ctx.report(p.files_done, p.files_total, p.current),
                cancelled=ctx.cancelled,
                previous_order=[d.doc_id for d in previous],
            )
            # The per-document summary walks every segment: done here, not on the GUI thread.
            return corpus, doc_records(corpus, {}, excluded, previous)

        self.ingest = self.runner.run_job(
            job, self.on_ingest_done, self.on_ingest_failed, self.on_ingest_progress
        )
        self.refresh_all()

    def on_ingest_progress(self, done: int, total: int, what: str) -> None:
        ctx = self.ingest
        if ctx is None:
            return
        elapsed = time.monotonic() - ctx.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        self.activity.progress("Reading sources", done, total, "files", rate, eta)
        if what:
            self.activity.label.setToolTip(what)

    def on_ingest_done(self, result: object) -> None:
        assert isinstance(result, tuple)
        corpus, records = result
        assert isinstance(corpus, Corpus)
        self.ingest = None
        self.activity.finish()
        self.corpus = corpus
        self.session = dataclasses.replace(self.session, documents=records)
        self.sources.set_documents(records, issue_rows(corpus), self.session.sources)
        self.request_plan()
        self.refresh_all()

    def on_ingest_failed(self, message: str) -> None:
        self.ingest = None
        self.activity.finish()
        if message != "cancelled":
            self.statusBar().showMessage(f"Could not read the sources: {message}", 15_000)
            self.sources.summary.setText(f"Could not read the sources: {message}")
        self.asking.pending_question = None
        self.refresh_all()

    @Slot()
    def on_sources_inclusion_changed(self) -> None:
        excluded = tuple(sorted(self.sources.model.excluded_names()))
        docs = tuple(dataclasses.replace(d, included=d.name not in excluded) for d in self.session.documents)
        self.session = dataclasses.replace(self.session, excluded=excluded, documents=docs)
        self.request_plan()
        self.autosave()

    def forget_corpus(self) -> None:
        """Sources changed wholesale (another session): nothing read or counted is kept."""
        self.corpus = None
        self.plan = None
        self.last_prefix = 0
        self.hosted.consent = None

    @Slot(str)
    def on_model_bar_thinking_changed(self, _mode: str) -> None:
        if self.where == WHERE_HOSTED:
            self.request_plan()  # the output reserve, and so the consent's budget and cost, changed
        self.refresh_budget()

    def request_plan(self) -> None:
        """Count the corpus with the active backend (for a hosted one: prepare its consent)."""
        if self.corpus is None or self.info is None:
            self.refresh_all()
            return
        if self.where == WHERE_HOSTED:
            self._plan_id = 0  # a local count still under way is not for this backend
            self.plan = None
            self.hosted.prepare()
            self.refresh_all()
            return
        corpus = included_corpus(self.corpus, self.session.excluded)
        reserve = THINKING_RESERVE[self.model_bar.thinking_mode()]
        output = self.settings.max_output_tokens
        self.plan = None
        self._plan_id = self.engine.submit(lambda rid: PlanCorpus(rid, corpus, output, reserve))
        self.refresh_all()

    @Slot(int, object)
    def on_engine_planned(self, rid: int, plan: object) -> None:
        if rid != self._plan_id or not isinstance(plan, ContextPlan) or self.where == WHERE_HOSTED:
            return
        self.apply_plan(plan)

    def apply_plan(self, plan: ContextPlan) -> None:
        """The corpus is counted (by the active backend): show the counts, send a waiting question."""
        if self.corpus is None:
            return
        self.plan = plan
        self.last_prefix = plan.prefix_tokens
        records = with_tokens(self.session.documents, plan_tokens(plan))
        self.session = dataclasses.replace(self.session, documents=records)
        self.sources.set_documents(records, issue_rows(self.corpus), self.session.sources)
        self.sources.model.set_status({})
        self.corpus_planned.emit(plan)
        self.autosave()
        self.refresh_all()
        self.asking.send_pending()

    # ================================================================== model
    @Slot()
    def on_choose_model(self) -> None:
        path = pick_model_file(self, self.settings.models_dir or str(Path.home()))
        if path is not None:
            self.use_model(path)

    @Slot(object)
    def use_model(self, path: object) -> None:
        assert isinstance(path, Path)
        self.session = dataclasses.replace(self.session, model=str(path))
        self.use_local()
        self._probe_and_load(path)

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        if rid != self._load_id or not isinstance(info, BackendInfo):
            return
        self.local_info = info
        self.local_failure = None
        self.activity.finish()
        if self.where != WHERE_HOSTED:
            self.info = info
            self.model_bar.set_info(info)
            self.statusBar().showMessage(
                f"{info.name} is ready (context {info.context_window:,} tokens)", 5000
            )
        self.model_loaded.emit(info)
        if self.corpus is not None and self.where != WHERE_HOSTED:
            self.request_plan()
        self.refresh_all()

    def use_local(self) -> None:
        """Answer with the local model again (the hosted worker keeps its endpoint open)."""
        self.model_bar.set_where(WHERE_LOCAL)
        if self.where == WHERE_LOCAL:
            return
        self.where = WHERE_LOCAL
        self.info = self.local_info
        self.plan = None
        if self.entry is not None:
            self.model_bar.set_entry(self.entry)
        if self.local_info is not None:
            self.model_bar.set_info(self.local_info)
        else:
            self.model_bar.set_state("no model" if self.local_failure else "loading…")
        self.request_plan()

    @Slot(int, object)
    def on_engine_failed(self, rid: int, failure: object) -> None:
        if not isinstance(failure, Failed):
            return
        if rid == self._load_id:
            self._model_problem(f"The model could not be loaded: {failure.message}", failure.kind)
        elif rid == self._plan_id:
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

    def budget_figures(self) -> BudgetFigures | None:
        return self.asking.budget_figures()

    # ================================================================== citations
    @Slot(object)
    def show_citation(self, cite: object) -> None:
        """Open the source viewer at the cited place (rendering off the GUI thread)."""
        assert isinstance(cite, Citation)
        self.citation_opener.open(cite, self.session.refs(), self.corpus, self.devicePixelRatioF())

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

    # ================================================================== settings, about, theme, find
    @Slot()
    def on_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        self.runner.run_task(keyring_problem, lambda p: dialog.set_keyring_status(str(p)))
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        key = dialog.entered_key()
        endpoint = new.hosted_endpoint
        if key and endpoint:
            # The OS keyring only (app.secrets); never settings, sessions or logs.
            self.runner.run_task(lambda: store_key(endpoint, key), self._on_key_stored)
        self.apply_settings(new)

    def _on_key_stored(self, problem: object) -> None:
        if problem:
            message = f"The API key was NOT saved: {problem}."
            box = QMessageBox(QMessageBox.Icon.Warning, "API key not saved", message, parent=self)
            box.open()
        else:
            message = "The API key is saved in the OS keyring."
        self.statusBar().showMessage(message, 15_000)

    def apply_settings(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        self.save_runner.run_task(
            lambda: save_settings(self.paths.config, new),
            lambda _r: None,
            lambda msg: self.statusBar().showMessage(f"Settings not saved: {msg}", 10_000),
        )
        reload = (old.context_tokens, old.n_threads, old.n_gpu_layers, old.default_model) != (
            new.context_tokens,
            new.n_threads,
            new.n_gpu_layers,
            new.default_model,
        )
        hosted_changed = any(getattr(old, f) != getattr(new, f) for f in _HOSTED_FIELDS)
        if reload:
            self._probe_and_load(self._model_path if not new.default_model else None)
        if self.where == WHERE_HOSTED and hosted_changed:
            self.hosted.use_hosted()  # the endpoint (or what may be sent) changed: open and count again
        elif not reload and old.max_output_tokens != new.max_output_tokens:
            self.request_plan()
        self.refresh_all()

    @Slot()
    def on_about(self) -> None:
        dialog = AboutDialog(self)
        self.runner.run_task(llama_versions, lambda v: dialog.set_llama(*v))
        dialog.exec()

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

    # ================================================================== state
    def refresh_all(self) -> None:
        has_work = bool(self.session.sources or self.session.turns or self.asking.pending_question)
        self.center.setCurrentWidget(self.work_page if has_work else self.welcome)
        docs = [d for d in self.session.documents if d.included]
        skipped = len(self.corpus.issues) if self.corpus is not None else 0
        if docs:
            self.sources.summary.setText(
                f"{len(docs)} document{'s' if len(docs) != 1 else ''} in context, "
                f"{sum(d.tokens for d in docs):,} tokens of text"
                + (f"; {skipped} file{'s' if skipped != 1 else ''} left out" if skipped else "")
                + (" · counting…" if self.plan is None and self.corpus is not None else "")
            )
        self.setWindowTitle(f"{self.session.title} — Longdesk" if has_work else "Longdesk")
        self.refresh_budget()

    def refresh_budget(self) -> None:
        self.budget.set_figures(self.budget_figures())
        self.refresh_controls()

    def refresh_controls(self) -> None:
        pending = self.asking.pending_question is not None
        busy = self.streaming or pending
        over = self.budget.over
        has_question = bool(self.question.toPlainText().strip())
        ready = bool(self.session.sources)
        # Over budget, Ask stays possible when a hosted endpoint could take the question instead.
        fallback = over and self.where != WHERE_HOSTED and bool(self.settings.hosted_endpoint)
        self.ask_button.setEnabled(has_question and ready and not busy and (not over or fallback))
        self.ask_button.setVisible(not self.streaming)
        self.stop_button.setVisible(self.streaming)
        self.thread_button.setEnabled(not busy and bool(self.session.turns))
        if self.streaming:
            hint = "Answering — Esc stops. The corpus is read once; later questions reuse it."
        elif pending:
            hint = "Your question is sent as soon as the sources are read and counted."
        elif over:
            hint = "Does not fit: see the red note above." + (
                " Ask offers the hosted model instead." if fallback else ""
            )
        elif self.info is None:
            hint = "Connecting to the hosted model…" if self.where == WHERE_HOSTED else "Loading the model…"
        elif not self.session.sources:
            hint = "Add sources to ask about them."
        elif self.plan is None:
            hint = "Counting tokens…" if self.corpus is not None else "The sources will be read when you ask."
        else:
            hint = self.reading_note or "Ready. The corpus is read once, then every question reuses it."
        self.ask_hint.setText(hint)

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
        if self.ingest is not None:
            self.ingest.cancel()
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
