"""The main window: sources, model bar, budget, conversation and source viewer, wired to the engine.

The window holds no engine state of its own beyond immutable values (Corpus, ContextPlan,
Session). Model work goes to ``EngineController`` (one worker thread owns the model), and
ingestion, page rendering and file writes go to pools; the GUI thread only turns results into
widgets. Signals from the worker carry request ids and anything not awaited is dropped.

Size: about 1,000 lines, because this is the one place where the panels meet the engine
(every signal of the worker and of each panel is handled here, in the order a user meets
them). Everything that is not wiring lives elsewhere: widgets in ``ui/widgets``, menus in
``ui/menus.py``, the citation viewer flow in ``ui/citation_opener.py``, Qt-free state in
``app/workspace.py`` and ``app/sessions.py``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QThreadPool, QTimer, QUrl, Signal, Slot
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

from app.atomic import atomic_write_text
from app.citations import Citation, check_citations
from app.paths import Paths
from app.sessions import (
    DocRecord,
    Listing,
    Session,
    SessionStore,
    TurnRecord,
    export_markdown,
    title_from_question,
)
from app.settings import Settings, load_settings, save_settings
from app.workspace import (
    THINKING_RESERVE,
    add_sources,
    context_for,
    conversation_tokens,
    doc_records,
    history,
    included_corpus,
    issue_rows,
    plan_tokens,
    with_tokens,
)
from engine.backends.base import (
    AskOptions,
    BackendInfo,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    Usage,
)
from engine.context.plan import ContextPlan
from engine.corpus.load import load_sources
from engine.corpus.model import Corpus
from ui.activity import ActivityBar, duration
from ui.citation_opener import CitationOpener
from ui.dialogs import AboutDialog, SettingsDialog, confirm_link, llama_versions, pick_model_file, store_key
from ui.menus import build_menus
from ui.sessions_panel import SessionsPanel
from ui.theme import ThemeMode, apply_theme
from ui.welcome import WelcomePage
from ui.widgets.budget_meter import BudgetFigures, BudgetMeter
from ui.widgets.conversation import ConversationView
from ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL, ModelBar
from ui.widgets.source_viewer import SourceViewer
from ui.widgets.sources_panel import SourcesPanel
from ui.workers.engine_worker import (
    AskQuestion,
    BackendFactory,
    CountText,
    EngineController,
    LoadModel,
    PlanCorpus,
    local_backend,
)
from ui.workers.pool import JobContext, TaskRunner

if TYPE_CHECKING:
    from app.models import ModelEntry

STATE_FILE = "window.ini"


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
        self.engine = EngineController(backend_factory, self)
        self._restore_last = restore_last_session
        self.session = Session.new()
        self.corpus: Corpus | None = None
        self.plan: ContextPlan | None = None
        self.info: BackendInfo | None = None
        self.entry: ModelEntry | None = None
        self.reading_note = ""
        self.where = WHERE_LOCAL
        self._model_path: Path | None = None
        self._ingest: JobContext | None = None
        self._plan_id = 0
        self._load_id = 0
        self._count_id = 0
        self._ask_id = 0
        self._question_tokens = 0
        self._last_prefix = 0
        self._session_problems: list[str] = []
        self._pending_question: str | None = None
        self._streaming_index = -1
        self._started_answer = False
        self._reading_marked = False
        self.theme_applied = False
        self.theme = ThemeMode(str(self.state.value("theme", ThemeMode.SYSTEM.value)))

        self.setWindowTitle("Longdesk")
        self.resize(_first_size())
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()
        self._connect_engine()
        self._restore_window_state()
        self._refresh_all()
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
        self.model_bar.where_changed.connect(self.on_model_bar_where_changed)
        self.model_bar.thinking_changed.connect(lambda _m: self._refresh_budget())
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
        self.sessions_panel.open_requested.connect(self.open_session)
        self.sessions_panel.rename_requested.connect(self.rename_session)
        self.sessions_panel.delete_requested.connect(self.delete_session)
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
        self.conversation = ConversationView(self._check_citations, work)
        self.conversation.citation_clicked.connect(self.show_citation)
        self.conversation.regenerate_requested.connect(self.regenerate)
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
        self.question.textChanged.connect(self.on_question_text_changed)
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
        e = self.engine
        e.model_loaded.connect(self.on_engine_model_loaded)
        e.planned.connect(self.on_engine_planned)
        e.counted.connect(self.on_engine_counted)
        e.progressed.connect(self.on_engine_progressed)
        e.read_finished.connect(self.on_engine_read_finished)
        e.text_streamed.connect(self.on_engine_text_streamed)
        e.usage_reported.connect(self.on_engine_usage_reported)
        e.finished.connect(self.on_engine_finished)
        e.failed.connect(self.on_engine_failed)
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(300)
        self._count_timer.timeout.connect(self._count_question)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.styleHints().colorSchemeChanged.connect(lambda _s: self._apply_theme())

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
            self.open_session(last)

    def _probe_and_load(self, explicit: Path | None) -> None:
        self.model_bar.set_state("checking…")
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
        self.info = None
        self.model_bar.set_state("loading…")
        self.activity.start(f"Loading {entry.name}…", cancellable=False)
        self._load_id = self.engine.submit(lambda rid: LoadModel(rid, entry.path, local))
        self.model_ready.emit(entry)

    def _model_problem(self, message: str) -> None:
        self.model_bar.set_state("no model")
        self.welcome.model_status.setText(message)
        self.statusBar().showMessage(message)
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
        self._ingest_sources()

    def _ingest_sources(self) -> None:
        if self._ingest is not None:
            self._ingest.cancel()
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

        self._ingest = self.runner.run_job(
            job, self.on_ingest_done, self.on_ingest_failed, self.on_ingest_progress
        )
        self._refresh_all()

    def on_ingest_progress(self, done: int, total: int, what: str) -> None:
        ctx = self._ingest
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
        self._ingest = None
        self.activity.finish()
        self.corpus = corpus
        self.session = dataclasses.replace(self.session, documents=records)
        self.sources.set_documents(records, issue_rows(corpus), self.session.sources)
        self._request_plan()
        self._refresh_all()

    def on_ingest_failed(self, message: str) -> None:
        self._ingest = None
        self.activity.finish()
        if message != "cancelled":
            self.statusBar().showMessage(f"Could not read the sources: {message}", 15_000)
            self.sources.summary.setText(f"Could not read the sources: {message}")
        self._pending_question = None
        self._refresh_all()

    @Slot()
    def on_sources_inclusion_changed(self) -> None:
        excluded = tuple(sorted(self.sources.model.excluded_names()))
        docs = tuple(dataclasses.replace(d, included=d.name not in excluded) for d in self.session.documents)
        self.session = dataclasses.replace(self.session, excluded=excluded, documents=docs)
        self._request_plan()
        self.autosave()

    def _request_plan(self) -> None:
        if self.corpus is None or self.info is None:
            self._refresh_all()
            return
        corpus = included_corpus(self.corpus, self.session.excluded)
        reserve = THINKING_RESERVE[self.model_bar.thinking_mode()]
        output = self.settings.max_output_tokens
        self.plan = None
        self._plan_id = self.engine.submit(lambda rid: PlanCorpus(rid, corpus, output, reserve))
        self._refresh_all()

    @Slot(int, object)
    def on_engine_planned(self, rid: int, plan: object) -> None:
        if rid != self._plan_id or not isinstance(plan, ContextPlan) or self.corpus is None:
            return
        self.plan = plan
        self._last_prefix = plan.prefix_tokens
        records = with_tokens(self.session.documents, plan_tokens(plan))
        self.session = dataclasses.replace(self.session, documents=records)
        self.sources.set_documents(records, issue_rows(self.corpus), self.session.sources)
        self.sources.model.set_status({})
        self.corpus_planned.emit(plan)
        self.autosave()
        self._refresh_all()
        if self._pending_question is not None:
            question, self._pending_question = self._pending_question, None
            self._send(question)

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
        self._probe_and_load(path)

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        if rid != self._load_id or not isinstance(info, BackendInfo):
            return
        self.info = info
        self.activity.finish()
        self.model_bar.set_info(info)
        self.statusBar().showMessage(f"{info.name} is ready (context {info.context_window:,} tokens)", 5000)
        self.model_loaded.emit(info)
        if self.corpus is not None:
            self._request_plan()
        self._refresh_all()

    @Slot(str)
    def on_model_bar_where_changed(self, where: str) -> None:
        if where != WHERE_HOSTED:
            self.where = WHERE_LOCAL
            return
        if not self.settings.hosted_endpoint:
            message = (
                "No hosted endpoint is configured. Set one (and its key) in File ▸ Settings; nothing "
                "leaves this machine until you agree to what will be sent."
            )
        else:
            message = (
                f"The hosted endpoint {self.settings.hosted_endpoint} is configured, but this build "
                "has no hosted backend yet; answers stay local."
            )
        self.model_bar.set_where(WHERE_LOCAL)
        QMessageBox.information(self, "Hosted model", message)

    # ================================================================== asking
    @Slot()
    def on_question_text_changed(self) -> None:
        self._question_tokens = 0
        self._count_timer.start()
        self._refresh_controls()

    def _count_question(self) -> None:
        text = self.question.toPlainText().strip()
        if text and self.info is not None:
            self._count_id = self.engine.submit(lambda rid: CountText(rid, text))

    @Slot(int, int)
    def on_engine_counted(self, rid: int, tokens: int) -> None:
        if rid == self._count_id:
            self._question_tokens = tokens
            self._refresh_budget()

    def budget_figures(self) -> BudgetFigures | None:
        if self.info is None:
            return None
        window = self.info.context_window
        if self.plan is not None:
            corpus = self.plan.prefix_tokens
        elif self._last_prefix:
            corpus = self._last_prefix  # the previous count, until the new one arrives
        elif self.session.documents:
            corpus = sum(d.tokens for d in self.session.documents if d.included)
        else:
            return None
        return BudgetFigures(
            window=window,
            corpus=corpus,
            conversation=conversation_tokens(self.session.turns),
            question=self._question_tokens,
            thinking=THINKING_RESERVE[self.model_bar.thinking_mode()],
            output=self.settings.max_output_tokens,
        )

    @property
    def streaming(self) -> bool:
        return self._ask_id != 0

    @Slot()
    def ask(self) -> None:
        """Send the question (reading the sources first where needed); refused when over budget."""
        question = self.question.toPlainText().strip()
        if not question or self.streaming or self._pending_question is not None:
            return
        figures = self.budget_figures()
        if figures is not None and not figures.fits:
            self.statusBar().showMessage(figures.advice(), 10_000)
            return
        if not self.session.sources:
            self.statusBar().showMessage(
                "Add sources first: drop files or folders on the Sources panel.", 5000
            )
            return
        self.question.clear()
        if self.plan is None or self.info is None:
            # Asked before the sources were counted (or the model loaded): sent once they are.
            self._pending_question = question
            if self.corpus is None and self._ingest is None:
                self._ingest_sources()
            self.statusBar().showMessage("Reading the sources before asking…")
            self._refresh_all()
            return
        self._send(question)

    def _send(self, question: str, *, replace_last: bool = False) -> None:
        assert self.plan is not None
        if not self.plan.budget.fits:
            self.statusBar().showMessage(self.plan.budget.describe(), 10_000)
            return
        turns = list(self.session.turns)
        if replace_last and turns:
            turns.pop()
            self.conversation.remove_last()
        hist = history(turns)
        model_name = self.info.name if self.info else ""
        record = TurnRecord(question, "", model=model_name, created=time.time())
        title = self.session.title
        if not turns and title == "New session":
            title = title_from_question(question)
        self.session = dataclasses.replace(self.session, turns=(*turns, record), title=title)
        self._streaming_index = self.conversation.append_turn(record, streaming=True)
        self.statusBar().clearMessage()
        self._started_answer = False
        self._reading_marked = False
        options = AskOptions(
            thinking=self.model_bar.thinking_mode(), max_output_tokens=self.settings.max_output_tokens
        )
        plan = self.plan
        self._ask_id = self.engine.submit(lambda rid: AskQuestion(rid, plan, hist, question, options))
        self.activity.start("Waiting for the model…")
        self._refresh_all()

    @Slot()
    def stop(self) -> None:
        """Esc: stop the answer, the reading or the ingestion in progress."""
        if self._ask_id:
            self.engine.cancel(self._ask_id)
            self.statusBar().showMessage("Stopping…", 3000)
        if self._ingest is not None:
            self._ingest.cancel()
        self._pending_question = None

    def _update_streaming(self, **changes: object) -> None:
        index = self._streaming_index
        if index < 0 or index >= len(self.session.turns):
            return
        turns = list(self.session.turns)
        turns[index] = dataclasses.replace(turns[index], **changes)  # type: ignore[arg-type]
        self.session = dataclasses.replace(self.session, turns=tuple(turns))
        self.conversation.update_turn(index, turns[index], streaming=True)

    @Slot(int, object)
    def on_engine_progressed(self, rid: int, progress: object) -> None:
        if rid != self._ask_id or not isinstance(progress, Progress):
            return
        what = {
            "prefill": "Reading the corpus",
            "restore": "Restoring the saved reading",
            "question": "Reading the question",
        }
        label = what.get(progress.stage, progress.stage.capitalize())
        self.activity.progress(label, progress.done, progress.total, "tokens", progress.rate, progress.eta_s)
        if progress.stage == "prefill" and not self._reading_marked and self.plan is not None:
            self._reading_marked = True  # once per reading: thousands of rows, ten updates a second
            self.sources.model.set_status({s.doc_id: "reading…" for s in self.plan.spans})

    @Slot(int, object)
    def on_engine_read_finished(self, rid: int, reading: object) -> None:
        if rid != self._ask_id or not isinstance(reading, Reading):
            return
        if reading.restored:
            self.reading_note = (
                f"Restored from a saved snapshot — {reading.prefix_tokens:,} tokens ready in "
                f"{reading.seconds:.1f} s, no reading needed"
            )
        else:
            rate = reading.prefix_tokens / reading.seconds if reading.seconds > 0 else 0.0
            self.reading_note = (
                f"Read {reading.prefix_tokens:,} tokens in {duration(reading.seconds)} ({rate:,.0f} tokens/s)"
            )
        self.statusBar().showMessage(self.reading_note, 15_000)
        if self.plan is not None:
            state = "read (snapshot)" if reading.restored else "read"
            self.sources.model.set_status({s.doc_id: state for s in self.plan.spans})
        self.activity.start("Answering…")

    @Slot(int, str, str)
    def on_engine_text_streamed(self, rid: int, kind: str, text: str) -> None:
        if rid != self._ask_id:
            return
        turn = self.session.turns[self._streaming_index]
        if not self._started_answer:
            self._started_answer = True
            self.activity.start("Answering…")
        if kind == "thinking":
            self._update_streaming(thinking=turn.thinking + text)
        else:
            self._update_streaming(answer=turn.answer + text)

    @Slot(int, object)
    def on_engine_usage_reported(self, rid: int, usage: object) -> None:
        if rid != self._ask_id or not isinstance(usage, Usage):
            return
        self._update_streaming(
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            seconds=usage.seconds,
            cost=usage.cost,
            currency=usage.currency,
        )

    @Slot(int, object)
    def on_engine_finished(self, rid: int, result: object) -> None:
        if rid != self._ask_id or not isinstance(result, Finished):
            return
        self._end_answer(result.stop_reason, "")

    @Slot(int, object)
    def on_engine_failed(self, rid: int, failure: object) -> None:
        if not isinstance(failure, Failed):
            return
        if rid == self._load_id:
            self._model_problem(f"The model could not be loaded: {failure.message}")
        elif rid == self._plan_id:
            self.statusBar().showMessage(f"Could not count the sources: {failure.message}", 15_000)
        elif rid == self._ask_id:
            stop = "cancelled" if failure.kind is FailureKind.CANCELLED else "failed"
            self._end_answer(stop, failure.message)

    def _end_answer(self, stop_reason: str, message: str) -> None:
        index = self._streaming_index
        self._ask_id = 0
        self.activity.finish()
        if 0 <= index < len(self.session.turns):
            turns = list(self.session.turns)
            turn = turns[index]
            if message and not turn.answer:
                turn = dataclasses.replace(turn, answer=f"*{message}*")
            turn = dataclasses.replace(turn, stop_reason=stop_reason)
            turns[index] = turn
            self.session = dataclasses.replace(self.session, turns=tuple(turns))
            self.conversation.update_turn(index, turn, streaming=False)
            if message:
                self.statusBar().showMessage(message, 15_000)
            elif stop_reason == "cancelled":
                self.statusBar().showMessage("Stopped; the partial answer is kept.", 8000)
            self.answer_finished.emit(turn)
        self._streaming_index = -1
        self.autosave()
        self._refresh_all()

    @Slot(int)
    def regenerate(self, index: int) -> None:
        if self.streaming or not 0 <= index < len(self.session.turns) or self.plan is None:
            return
        question = self.session.turns[index].question
        self._send(question, replace_last=index == len(self.session.turns) - 1)

    # ================================================================== citations
    def _check_citations(self, answer: str) -> list[Citation]:
        return check_citations(answer, self.corpus, self.session.refs())

    @Slot(object)
    def show_citation(self, cite: object) -> None:
        """Open the source viewer at the cited place (rendering off the GUI thread)."""
        assert isinstance(cite, Citation)
        self.citation_opener.open(cite, self.session.refs(), self.corpus, self.devicePixelRatioF())

    @Slot(QUrl)
    def on_link_requested(self, url: QUrl) -> None:
        if confirm_link(self, url):
            QDesktopServices.openUrl(url)

    # ================================================================== sessions
    def autosave(self) -> None:
        """Write the session off the GUI thread (one writer, in order)."""
        if not self.session.sources and not self.session.turns:
            return
        snapshot = self.session
        self.state.setValue("last_session", snapshot.session_id)
        self.save_runner.run_task(
            lambda: self.store.save(snapshot),
            self._on_saved,
            lambda msg: self.statusBar().showMessage(f"The session was not saved: {msg}", 15_000),
        )

    def _on_saved(self, saved: object) -> None:
        self.session_saved.emit(saved)
        self.refresh_sessions()

    def refresh_sessions(self) -> None:
        self.runner.run_task(self.store.list, self._on_listed)

    def _on_listed(self, listing: object) -> None:
        assert isinstance(listing, Listing)
        self.sessions_panel.current_id = self.session.session_id
        # Damaged files are reported once by the store (then kept aside); keep the notes visible.
        self._session_problems.extend(p for p in listing.problems if p not in self._session_problems)
        self.sessions_panel.set_sessions(listing.sessions, self._session_problems)
        self.recent_menu.clear()
        for s in listing.sessions[:8]:
            act = self.recent_menu.addAction(s.title)
            act.triggered.connect(lambda _c=False, sid=s.session_id: self.open_session(sid))
        self.sessions_listed.emit(listing)

    @Slot(str)
    def open_session(self, session_id: str) -> None:
        if self.streaming:
            self.statusBar().showMessage("Stop the answer before switching sessions.", 5000)
            return
        self.runner.run_task(
            lambda: self.store.load(session_id),
            self._on_session_loaded,
            self._on_session_open_failed,
        )

    def _on_session_open_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Could not open the session: {message}", 15_000)
        self.refresh_sessions()

    def _on_session_loaded(self, session: object) -> None:
        assert isinstance(session, Session)
        same_sources = self.corpus is not None and session.sources == self.session.sources
        self.session = session
        self.state.setValue("last_session", session.session_id)
        self.conversation.set_turns(session.turns)
        self.viewer.setVisible(False)
        self.model_bar.set_where(WHERE_LOCAL)
        if same_sources:
            self._request_plan()
        else:
            # Lazy reopen: the stored list shows at once; the sources are read again in the background.
            self.corpus = None
            self.plan = None
            self._last_prefix = 0
            self.sources.set_documents(session.documents, [], session.sources)
            if session.sources:
                self._ingest_sources()
        self.statusBar().showMessage(f"Opened “{session.title}”", 5000)
        self.refresh_sessions()
        self._refresh_all()

    @Slot()
    def new_session(self) -> None:
        if self.streaming:
            self.stop()
        self.session = Session.new()
        self.corpus = None
        self.plan = None
        self._last_prefix = 0
        self.conversation.set_turns([])
        self.sources.set_documents([], [], [])
        self.viewer.setVisible(False)
        self._refresh_all()

    @Slot()
    def new_thread(self) -> None:
        """A new conversation on the same sources: the corpus stays read."""
        if self.streaming:
            return
        fresh = Session.new(sources=self.session.sources)
        self.session = dataclasses.replace(
            fresh, excluded=self.session.excluded, documents=self.session.documents, model=self.session.model
        )
        self.conversation.set_turns([])
        self._refresh_all()

    @Slot(str, str)
    def rename_session(self, session_id: str, title: str) -> None:
        if session_id == self.session.session_id:
            self.session = dataclasses.replace(
                self.session, title=" ".join(title.split()) or self.session.title
            )
        self.save_runner.run_task(
            lambda: self.store.rename(session_id, title),
            lambda _s: self.refresh_sessions(),
            lambda msg: self.statusBar().showMessage(f"Could not rename: {msg}", 10_000),
        )

    @Slot(str)
    def delete_session(self, session_id: str) -> None:
        if session_id == self.session.session_id:
            self.new_session()
        self.save_runner.run_task(
            lambda: self.store.delete(session_id),
            lambda _r: self.refresh_sessions(),
            lambda msg: self.statusBar().showMessage(f"Could not delete: {msg}", 10_000),
        )

    @Slot()
    def on_export(self) -> None:
        if not self.session.turns:
            self.statusBar().showMessage("Nothing to export yet.", 4000)
            return
        name, _ = QFileDialog.getSaveFileName(
            self, "Export conversation", str(Path.home() / f"{self.session.title[:40]}.md"), "Markdown (*.md)"
        )
        if name:
            self.export_to(Path(name))

    def export_to(self, path: Path) -> None:
        text = export_markdown(self.session)
        self.save_runner.run_task(
            lambda: atomic_write_text(path, text),
            lambda _r: self.statusBar().showMessage(f"Exported to {path}", 8000),
            lambda msg: self.statusBar().showMessage(f"Export failed: {msg}", 10_000),
        )

    # ================================================================== settings, about, theme, find
    @Slot()
    def on_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        key = dialog.entered_key()
        endpoint = new.hosted_endpoint
        if key and endpoint:
            self.runner.run_task(
                lambda: store_key(endpoint, key), lambda m: self.statusBar().showMessage(str(m), 10_000)
            )
        self.apply_settings(new)

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
        if reload:
            self._probe_and_load(self._model_path if not new.default_model else None)
        elif old.max_output_tokens != new.max_output_tokens:
            self._request_plan()
        self._refresh_all()

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
    def _refresh_all(self) -> None:
        has_work = bool(self.session.sources or self.session.turns or self._pending_question)
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
        self._refresh_budget()

    def _refresh_budget(self) -> None:
        self.budget.set_figures(self.budget_figures())
        self._refresh_controls()

    def _refresh_controls(self) -> None:
        busy = self.streaming or self._pending_question is not None
        over = self.budget.over
        has_question = bool(self.question.toPlainText().strip())
        ready = bool(self.session.sources)
        self.ask_button.setEnabled(has_question and ready and not busy and not over)
        self.ask_button.setVisible(not self.streaming)
        self.stop_button.setVisible(self.streaming)
        self.thread_button.setEnabled(not busy and bool(self.session.turns))
        if self.streaming:
            hint = "Answering — Esc stops. The corpus is read once; later questions reuse it."
        elif self._pending_question is not None:
            hint = "Your question is sent as soon as the sources are read and counted."
        elif over:
            hint = "Does not fit: see the red note above."
        elif self.info is None:
            hint = "Loading the model…"
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
        if self._ingest is not None:
            self._ingest.cancel()
        self.engine.shutdown(60_000)
        self.runner.close(5000)
        self.save_runner.close(10_000)
        super().closeEvent(event)


def _first_size() -> QSize:
    """1320 x 820, or less on a small screen (before any saved window state applies)."""
    wanted = QSize(1320, 820)
    room = QGuiApplication.primaryScreen().availableGeometry().size() * 0.95
    return wanted.boundedTo(room)
