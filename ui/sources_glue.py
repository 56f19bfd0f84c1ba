"""Sources glue: adding files and folders, reading them off the GUI thread, and counting them.

Reading (``engine.corpus``) runs as a pool job with progress and cancel; counting runs on the
worker of the active backend: ``PlanCorpus`` for the local model, ``PrepareConsent`` for a
hosted one (``ui.hosted_glue``). Results for a superseded request are dropped.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog

from longdesk.app.sessions import DocRecord
from longdesk.app.workspace import (
    THINKING_RESERVE,
    add_sources,
    doc_records,
    included_corpus,
    issue_rows,
    plan_tokens,
    with_tokens,
)
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import Corpus
from longdesk.ui.activity import duration
from longdesk.ui.widgets.model_bar import WHERE_HOSTED
from longdesk.ui.workers.engine_worker import PlanCorpus
from longdesk.ui.workers.pool import JobContext

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow


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
    """Turns dropped paths into the window's Corpus and ContextPlan."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.ingest: JobContext | None = None
        self.plan_id = 0

    @Slot()
    def on_add_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self.w, "Add sources", str(Path.home()), SOURCE_FILTERS)
        if names:
            self.w.sources.handle_paths([Path(n) for n in names])

    @Slot()
    def on_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.w, "Add a folder", str(Path.home()))
        if folder:
            self.add_paths([Path(folder)])

    @Slot(list)
    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add files and folders to the session's sources and read them all (off the GUI thread)."""
        self.w.session = add_sources(self.w.session, paths)
        self.ingest_sources()

    def ingest_sources(self) -> None:
        w = self.w
        if self.ingest is not None:
            self.ingest.cancel()
        sources = [Path(s) for s in w.session.sources]
        if not sources:
            return
        w.activity.start("Reading sources…")

        excluded, previous = w.session.excluded, w.session.documents
        cache_dir = w.paths.cache

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
            return corpus, doc_records(corpus, {}, excluded, previous)

        self.ingest = w.runner.run_job(
            job, self.on_ingest_done, self.on_ingest_failed, self.on_ingest_progress
        )
        w.refresh_all()

    def on_ingest_progress(self, done: int, total: int, what: str) -> None:
        ctx = self.ingest
        if ctx is None:
            return
        elapsed = time.monotonic() - ctx.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        activity = self.w.activity
        activity.progress("Reading sources", done, total, "KB", rate, eta)
        pct = 100.0 * done / total if total else 0.0
        left = f" · {duration(eta)} left" if eta is not None else ""
        activity.label.setText(f"Reading {what} ({pct:.0f}%){left}")

    def on_ingest_done(self, result: object) -> None:
        w = self.w
        assert isinstance(result, tuple)
        corpus, records = result
        assert isinstance(corpus, Corpus)
        self.ingest = None
        w.activity.finish()
        w.corpus = corpus
        w.session = dataclasses.replace(w.session, documents=records)
        w.sources.set_documents(records, issue_rows(corpus), w.session.sources)
        self.request_plan()
        w.refresh_all()

    def on_ingest_failed(self, message: str) -> None:
        w = self.w
        self.ingest = None
        w.activity.finish()
        if message != "cancelled":
            w.statusBar().showMessage(f"Could not read the sources: {message}", 15_000)
            w.sources.summary.setText(f"Could not read the sources: {message}")
        w.asking.pending_question = None
        w.refresh_all()

    @Slot()
    def on_sources_inclusion_changed(self) -> None:
        w = self.w
        excluded = tuple(sorted(w.sources.model.excluded_names()))
        docs = tuple(dataclasses.replace(d, included=d.name not in excluded) for d in w.session.documents)
        w.session = dataclasses.replace(w.session, excluded=excluded, documents=docs)
        self.request_plan()
        w.autosave()

    def forget_corpus(self) -> None:
        """Sources changed wholesale (another session): nothing read or counted is kept."""
        w = self.w
        w.corpus = None
        w.plan = None
        w.last_prefix = 0
        w.hosted.consent = None

    def request_plan(self) -> None:
        """Count the corpus with the active backend (for a hosted one: prepare its consent)."""
        w = self.w
        if w.corpus is None or w.info is None:
            w.refresh_all()
            return
        if w.where == WHERE_HOSTED:
            self.plan_id = 0  # a local count still under way is not for this backend
            w.plan = None
            w.hosted.prepare()
            w.refresh_all()
            return
        corpus = included_corpus(w.corpus, w.session.excluded)
        reserve = THINKING_RESERVE[w.model_bar.thinking_mode()]
        output = w.settings.max_output_tokens
        w.plan = None
        cache = w.paths.cache
        self.plan_id = w.engine.submit(lambda rid: PlanCorpus(rid, corpus, output, reserve, cache))
        w.refresh_all()

    @Slot(int, object)
    def on_engine_planned(self, rid: int, plan: object) -> None:
        if rid != self.plan_id or not isinstance(plan, ContextPlan) or self.w.where == WHERE_HOSTED:
            return
        self.apply_plan(plan)

    def apply_plan(self, plan: ContextPlan) -> None:
        """The corpus is counted (by the active backend): show the counts, send a waiting question."""
        w = self.w
        if w.corpus is None:
            return
        w.plan = plan
        w.last_prefix = plan.prefix_tokens
        records = with_tokens(w.session.documents, plan_tokens(plan))
        w.session = dataclasses.replace(w.session, documents=records)
        w.sources.update_documents(records, issue_rows(w.corpus), w.session.sources)
        w.sources.model.set_status({})
        w.corpus_planned.emit(plan)
        w.autosave()
        w.refresh_all()
        w.asking.send_pending()
