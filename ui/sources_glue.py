"""Sources glue: adding files and folders, reading them off the GUI thread, and counting them.

Reading (``engine.corpus``) runs as a pool job with progress and cancel; counting runs on the
worker of the active backend: ``PlanCorpus`` for the local model, ``PrepareConsent`` for a
hosted one (``ui.hosted_glue``). Results for a superseded request are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QStatusBar

from longdesk.app import heap
from longdesk.app.paths import Paths
from longdesk.app.sessions import DocRecord
from longdesk.app.workbench import Workbench
from longdesk.app.workspace import THINKING_RESERVE, doc_records, included_corpus, issue_rows
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import Where
from longdesk.ui.activity import ActivityBar, duration
from longdesk.ui.engines import Engines
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.engine_worker import PlanCorpus
from longdesk.ui.workers.pool import JobContext, TaskRunner

# What the Add files dialog lists first: the formats Longdesk reads (README, "What goes in").
SOURCE_FILTERS = ";;".join(
    (
        "Books and documents (*.pdf *.epub *.mobi *.azw *.azw3 *.fb2 *.fbz *.xps *.oxps *.cbz *.html *.htm "
        "*.md *.markdown *.rst *.txt *.ipynb *.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tar.xz)",
        "Models (*.gguf)",
        "All files (*)",
    )
)


class SourcesGlue(QObject):
    """Turns dropped paths into the workbench's Corpus and ContextPlan.

    Signals:
        planned(object): the ContextPlan of the current sources, applied to the state.
        save_requested(): the session changed in a way worth saving (what is left out).
    """

    planned = Signal(object)
    save_requested = Signal()

    def __init__(
        self,
        state: Workbench,
        engines: Engines,
        hosted: HostedGlue,
        runner: TaskRunner,
        paths: Paths,
        sources: SourcesPanel,
        status: QStatusBar,
        activity: ActivityBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.engines = engines
        self.hosted = hosted
        self.runner = runner
        self.paths = paths
        self.sources = sources
        self.status = status
        self.activity = activity
        self.ingest: JobContext | None = None
        self.plan_id = 0

    @Slot()
    def on_add_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self.sources.window(), "Add sources", str(Path.home()), SOURCE_FILTERS
        )
        if names:
            self.sources.handle_paths([Path(n) for n in names])

    @Slot()
    def on_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.sources.window(), "Add a folder", str(Path.home()))
        if folder:
            self.add_paths([Path(folder)])

    @Slot(list)
    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add files and folders to the session's sources and read them all (off the GUI thread)."""
        self.state.add_sources(paths)
        self.ingest_sources()

    def ingest_sources(self) -> None:
        if self.ingest is not None:
            self.ingest.cancel()
        session = self.state.session
        sources = [Path(s) for s in session.sources]
        if not sources:
            return
        self.activity.start("Reading sources…")

        excluded, previous = session.excluded, session.documents
        cache_dir = self.paths.cache

        def job(ctx: JobContext) -> tuple[Corpus, tuple[DocRecord, ...]]:
            corpus = load_sources(
                sources,
                cache_dir=cache_dir,
                # kilobytes (the bar's range is an int), with the page or member being read
                progress=lambda p: ctx.report(p.bytes_done >> 10, p.bytes_total >> 10, p.describe()),
                cancelled=ctx.cancelled,
                previous_order=[d.doc_id for d in previous],
            )
            # The per-document summary walks every segment: done here, not on the GUI thread.
            records = doc_records(corpus, {}, excluded, previous)
            heap.trim()  # reading built and dropped several copies of the text (app.heap)
            return corpus, records

        self.ingest = self.runner.run_job(
            job, self.on_ingest_done, self.on_ingest_failed, self.on_ingest_progress
        )

    def cancel(self) -> None:
        """Stop reading the sources (what was read is dropped)."""
        if self.ingest is not None:
            self.ingest.cancel()

    def on_ingest_progress(self, done: int, total: int, what: str) -> None:
        ctx = self.ingest
        if ctx is None:
            return
        elapsed = time.monotonic() - ctx.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        activity = self.activity
        activity.progress("Reading sources", done, total, "KB", rate, eta)
        pct = 100.0 * done / total if total else 0.0
        left = f" · {duration(eta)} left" if eta is not None else ""
        activity.label.setText(f"Reading {what} ({pct:.0f}%){left}")

    def on_ingest_done(self, result: object) -> None:
        assert isinstance(result, tuple)
        corpus, records = result
        assert isinstance(corpus, Corpus)
        self.ingest = None
        self.activity.finish()
        self.state.set_corpus(corpus, records)
        self.sources.set_documents(records, issue_rows(corpus), self.state.session.sources)
        self.request_plan()

    def on_ingest_failed(self, message: str) -> None:
        self.ingest = None
        self.activity.finish()
        if message != "cancelled":
            self.status.showMessage(f"Could not read the sources: {message}", 15_000)
            self.sources.summary.setText(f"Could not read the sources: {message}")
        self.state.set_pending(None)

    @Slot()
    def on_sources_inclusion_changed(self) -> None:
        self.state.set_excluded(self.sources.model.excluded_names())
        self.request_plan()
        self.save_requested.emit()

    def request_plan(self) -> None:
        """Count the corpus with the active backend (for a hosted one: prepare its consent)."""
        state = self.state
        if state.corpus is None or state.info is None:
            return
        # A local count still under way is for a corpus or backend no longer shown: stopped, so
        # that it does not take the CPU from the count that replaces it.
        self.cancel_count()
        if state.where is Where.HOSTED:
            state.clear_plan()
            self.hosted.prepare()
            return
        corpus = included_corpus(state.corpus, state.session.excluded)
        reserve = THINKING_RESERVE[state.thinking]
        output = state.settings.max_output_tokens
        state.clear_plan()
        cache = self.paths.cache
        self.plan_id = self.engines.local.submit(lambda rid: PlanCorpus(rid, corpus, output, reserve, cache))

    def cancel_count(self) -> None:
        """Stop the local count under way, if any (its result would be dropped)."""
        if self.plan_id:
            self.engines.local.cancel(self.plan_id)
            self.plan_id = 0

    @Slot(int, object)
    def on_engine_planned(self, rid: int, plan: object) -> None:
        if rid != self.plan_id or not isinstance(plan, ContextPlan) or self.state.where is Where.HOSTED:
            return
        self.apply_plan(plan)

    @Slot(object)
    def apply_plan(self, plan: object) -> None:
        """The corpus is counted (by the active backend): show the counts, send a waiting question."""
        state = self.state
        if state.corpus is None or not isinstance(plan, ContextPlan):
            return
        state.apply_plan(plan)
        self.sources.update_documents(
            state.session.documents, issue_rows(state.corpus), state.session.sources
        )
        self.sources.model.set_status({})
        self.planned.emit(plan)
