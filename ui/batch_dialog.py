"""File ▸ Run a question list…: a question file answered over the window's sources, one thread each.

The dialog reads a question list (text, JSONL or YAML, as ``longdesk batch`` does), then sends
the questions one at a time to the window's active engine (local, or hosted once the usual
consent was given) as ``AskQuestion`` requests with no history: every question is its own
thread from the corpus the model already holds. Each finished answer becomes a new session of
the same sources (a thread, listed in Sessions; double-click a row to open it), and a row
shows its time and citation check. Export writes the same Markdown report and JSONL results as
the command line (``app.batch_report``, ``app.batch_store``).

The dialog never reaches into the engine's thread: it submits requests through the active
controller (``ui.engines``) and listens to the controller's signals for its own request ids
only. It reads the workbench state (``app.workbench``) and never changes it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.batch_questions import Question, QuestionFileError, read_questions
from longdesk.app.batch_report import ReportInput, markdown_report
from longdesk.app.batch_store import (
    ANSWERED,
    FAILED,
    Outcome,
    ResultsLog,
    answer_record,
    corpus_documents,
    corpus_fingerprint,
    now_iso,
)
from longdesk.app.sessions import Session, SessionStore, TurnRecord, title_from_question
from longdesk.app.workbench import Workbench
from longdesk.engine.atomic import atomic_write_text
from longdesk.engine.backends.base import AskOptions, Failed, FailureKind, Finished, Usage
from longdesk.engine.events import StopReason, Where
from longdesk.ui.engines import Engines
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.workers.engine_worker import AskQuestion, EngineController
from longdesk.ui.workers.pool import TaskRunner

_COLUMNS = ("#", "Question", "Status", "Time", "Citations")


class BatchDialog(QDialog):
    """Runs a question list over the workbench's sources and keeps each answer as a thread.

    Signals:
        question_done(int, object): row index and the answer record (a dict, as in results.jsonl).
        run_finished(int): how many questions were answered when the run ended or was stopped.
        thread_saved(): a thread was written to the session store.
        open_requested(str): the session id of a thread the user wants to open.
    """

    question_done = Signal(int, object)
    run_finished = Signal(int)
    thread_saved = Signal()
    open_requested = Signal(str)

    def __init__(
        self,
        state: Workbench,
        engines: Engines,
        hosted: HostedGlue,
        store: SessionStore,
        save_runner: TaskRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.engines = engines
        self.hosted = hosted
        self.store = store
        self.save_runner = save_runner
        self.setWindowTitle("Run a question list")
        self.resize(860, 520)
        self.questions: list[Question] = []
        self.records: dict[int, dict[str, Any]] = {}
        self.sessions: dict[int, str] = {}
        self.ask_id = 0
        self._row = -1
        self._answer: list[str] = []
        self._thinking: list[str] = []
        self._usage: Usage | None = None
        self._t0 = 0.0
        self._stopping = False
        self._engine: EngineController | None = None
        self._connected: set[int] = set()
        self._build()

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit(self)
        self.path_edit.setPlaceholderText("A question list: one question a line (.txt), .jsonl or .yaml")
        self.path_edit.returnPressed.connect(lambda: self.load_file(Path(self.path_edit.text())))
        choose = QPushButton("Choose…", self)
        choose.clicked.connect(self.on_choose_clicked)
        row.addWidget(self.path_edit, 1)
        row.addWidget(choose)
        layout.addLayout(row)
        self.table = QTableWidget(0, len(_COLUMNS), self)
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col in (0, 2, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(self.on_table_cell_double_clicked)
        layout.addWidget(self.table, 1)
        self.progress = QProgressBar(self)
        self.progress.setFormat("%v of %m answered")
        layout.addWidget(self.progress)
        self.status = QLabel("Choose a question list. Each question is asked as its own thread.", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start", self)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.clicked.connect(self.stop)
        self.export_button = QPushButton("Export report…", self)
        self.export_button.clicked.connect(self.on_export_clicked)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        running = self.ask_id != 0
        self.start_button.setEnabled(bool(self.questions) and not running and self._pending_row() >= 0)
        self.stop_button.setEnabled(running)
        self.export_button.setEnabled(bool(self.records) and not running)

    def _set_cell(self, row: int, col: int, text: str) -> None:
        item = QTableWidgetItem(text)
        if col in (0, 3, 4):
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, col, item)

    # ---------------------------------------------------------------- the file
    @Slot()
    def on_choose_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self,
            "Question list",
            str(Path.home()),
            "Question lists (*.txt *.jsonl *.yaml *.yml);;All files (*)",
        )
        if name:
            self.load_file(Path(name))

    def load_file(self, path: Path) -> bool:
        """Read a question list into the table; a bad file is explained and changes nothing."""
        try:
            questions = read_questions(path)
        except QuestionFileError as exc:
            self.status.setText(str(exc))
            return False
        self.path_edit.setText(str(path))
        self.questions = questions
        self.records.clear()
        self.sessions.clear()
        self.table.setRowCount(len(questions))
        for n, q in enumerate(questions):
            self._set_cell(n, 0, q.qid)
            self._set_cell(n, 1, q.text)
            self._set_cell(n, 2, "waiting")
            self._set_cell(n, 3, "")
            self._set_cell(n, 4, "")
        self.progress.setRange(0, len(questions))
        self.progress.setValue(0)
        self.status.setText(f"{len(questions)} question(s) from {path.name}. Start asks them one by one.")
        self._refresh_buttons()
        return True

    # ---------------------------------------------------------------- running
    def _pending_row(self) -> int:
        for n in range(len(self.questions)):
            if self.records.get(n, {}).get("status") != ANSWERED:
                return n
        return -1

    @Slot()
    def start(self) -> None:
        """Ask the questions not answered yet (a hosted model asks for consent first)."""
        w = self.state
        if self.ask_id or not self.questions:
            return
        if not w.session.sources:
            self.status.setText("Add sources to the window first: the questions are about them.")
            return
        if w.plan is None or w.info is None or w.corpus is None:
            self.status.setText("The sources are still being read and counted; start again in a moment.")
            return
        if not w.plan.budget.fits:
            self.status.setText(w.plan.budget.describe())
            return
        self._stopping = False
        if w.where is Where.HOSTED:
            self.hosted.with_consent(self._next, on_cancel=lambda: self.status.setText("Nothing was sent."))
        else:
            self._next()

    def _connect(self, engine: EngineController) -> None:
        if id(engine) in self._connected:
            return
        self._connected.add(id(engine))
        engine.text_streamed.connect(self.on_engine_text_streamed)
        engine.usage_reported.connect(self.on_engine_usage_reported)
        engine.finished.connect(self.on_engine_finished)
        engine.failed.connect(self.on_engine_failed)

    def _next(self) -> None:
        w = self.state
        row = self._pending_row()
        plan = w.plan
        if row < 0 or self._stopping or plan is None:
            self._end_run()
            return
        q = self.questions[row]
        options = AskOptions(
            thinking=q.thinking or w.thinking,
            max_output_tokens=q.max_tokens or w.settings.max_output_tokens,
        )
        engine = self.engines.active()
        self._engine = engine
        self._connect(engine)
        self._row, self._answer, self._thinking, self._usage = row, [], [], None
        self._t0 = time.perf_counter()
        self._set_cell(row, 2, "answering…")
        item = self.table.item(row, 0)
        if item is not None:
            self.table.scrollToItem(item)
        self.status.setText(f"Asking {q.qid}: {q.text}")
        self.ask_id = engine.submit(lambda rid: AskQuestion(rid, plan, (), q.text, options))
        self._refresh_buttons()

    @Slot()
    def stop(self) -> None:
        """Stop the answer in progress (it is not kept) and ask no more."""
        self._stopping = True
        if self.ask_id and self._engine is not None:
            self._engine.cancel(self.ask_id)

    @Slot(int, str, str)
    def on_engine_text_streamed(self, rid: int, kind: str, text: str) -> None:
        if rid == self.ask_id:
            (self._thinking if kind == "thinking" else self._answer).append(text)

    @Slot(int, object)
    def on_engine_usage_reported(self, rid: int, usage: object) -> None:
        if rid == self.ask_id and isinstance(usage, Usage):
            self._usage = usage

    @Slot(int, object)
    def on_engine_finished(self, rid: int, result: object) -> None:
        if rid != self.ask_id or not isinstance(result, Finished):
            return
        if result.stop_reason == StopReason.CANCELLED:
            self._set_cell(self._row, 2, "stopped")
            self.ask_id = 0
            self._end_run()
            return
        self._keep(ANSWERED, result.stop_reason, "", "")

    @Slot(int, object)
    def on_engine_failed(self, rid: int, failure: object) -> None:
        if rid != self.ask_id or not isinstance(failure, Failed):
            return
        if failure.kind is FailureKind.CANCELLED:
            self._set_cell(self._row, 2, "stopped")
            self.ask_id = 0
            self._end_run()
            return
        self._keep(FAILED, "incomplete" if failure.partial else "failed", failure.message, failure.kind.value)
        if failure.kind not in (FailureKind.CONTEXT, FailureKind.BAD_INPUT):
            self._stopping = True  # the model or endpoint failed: the next questions would too

    def _keep(self, status: str, stop_reason: str, error: str, kind: str) -> None:
        w = self.state
        row, q = self._row, self.questions[self._row]
        u = self._usage or Usage(0, 0, 0)
        outcome = Outcome(
            status, stop_reason, "".join(self._answer), "".join(self._thinking), error, kind,
            time.perf_counter() - self._t0, u.prompt_tokens, u.cached_tokens, u.output_tokens, u.cost,
            u.currency, w.where,
        )  # fmt: skip
        label = w.info.name if w.info is not None else "model"
        fp = corpus_fingerprint(w.corpus) if w.corpus is not None else ""
        record = answer_record(label, q.qid, q.key, q.text, outcome, fp, w.corpus, w.session.refs())
        self.records[row] = record
        self.ask_id = 0
        cites = record["citations"]
        ok = sum(1 for c in cites if c["check"] == "verified")
        self._set_cell(row, 2, "answered" if status == ANSWERED else f"failed: {error}")
        self._set_cell(row, 3, f"{outcome.seconds:.1f} s")
        self._set_cell(row, 4, f"{ok} ✓ {len(cites) - ok} ✗" if cites else "none")
        self.progress.setValue(sum(1 for r in self.records.values() if r["status"] == ANSWERED))
        if outcome.answer or status == ANSWERED:
            self._save_thread(row, q, outcome)
        self.question_done.emit(row, record)
        self._next()

    def _save_thread(self, row: int, q: Question, outcome: Outcome) -> None:
        """Keep the answer as a new thread of the workbench's sources (a session of its own)."""
        w = self.state
        turn = TurnRecord(
            q.text, outcome.answer, outcome.thinking, outcome.prompt_tokens, outcome.cached_tokens,
            outcome.output_tokens, outcome.seconds, outcome.cost, outcome.currency,
            outcome.stop_reason if outcome.status == ANSWERED else "incomplete",
            w.info.name if w.info else "", time.time(), w.where,
        )  # fmt: skip
        fresh = Session.new(title_from_question(q.text), w.session.sources)
        thread = dataclasses.replace(
            fresh,
            excluded=w.session.excluded,
            documents=w.session.documents,
            model=w.session.model,
            turns=(turn,),
        )
        self.sessions[row] = thread.session_id
        store = self.store
        self.save_runner.run_task(
            lambda: store.save(thread),
            lambda _s: self.thread_saved.emit(),
            lambda msg: self.status.setText(f"The thread of {q.qid} was not saved: {msg}"),
        )

    def _end_run(self) -> None:
        answered = sum(1 for r in self.records.values() if r["status"] == ANSWERED)
        left = len(self.questions) - answered
        self.status.setText(
            f"{answered} of {len(self.questions)} answered"
            + (f"; {left} left — Start goes on with them." if left else ".")
            + (" Double-click a row to open its thread." if self.sessions else "")
        )
        self._refresh_buttons()
        self.run_finished.emit(answered)

    # ---------------------------------------------------------------- threads and export
    @Slot(int, int)
    def on_table_cell_double_clicked(self, row: int, _col: int) -> None:
        session_id = self.sessions.get(row)
        if session_id is not None and not self.ask_id:
            self.open_requested.emit(session_id)

    @Slot()
    def on_export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the report to a folder", str(Path.home()))
        if folder:
            self.export_to(Path(folder))

    def export_to(self, folder: Path) -> None:
        """Write ``report.md`` and ``results.jsonl`` into ``folder`` (off the GUI thread)."""
        w = self.state
        if not self.records or w.corpus is None:
            return
        fp = corpus_fingerprint(w.corpus)
        docs = corpus_documents(w.corpus)
        run: dict[str, Any] = {"type": "run", "format": 1, "corpus": fp, "documents": docs, "at": now_iso()}
        label = next(iter(self.records.values()))["model"]
        info = {"name": label, "where": w.where, "endpoint": w.info.endpoint if w.info else ""}
        model: dict[str, Any] = {
            "type": "model",
            "label": label,
            "identity": {},
            "info": info,
            "at": now_iso(),
        }
        records = [run, model, *(self.records[n] for n in sorted(self.records))]
        results = ResultsLog(folder / "results.jsonl", records)
        title = Path(self.path_edit.text()).name or "questions"
        report = markdown_report(ReportInput(title, self.questions, [label], results, fp))
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)

        def write() -> Path:
            atomic_write_text(folder / "results.jsonl", lines)
            atomic_write_text(folder / "report.md", report)
            return folder / "report.md"

        self.save_runner.run_task(
            write,
            lambda path: self.status.setText(f"Exported to {path}"),
            lambda msg: self.status.setText(f"Export failed: {msg}"),
        )


def open_batch_dialog(parent: QWidget, create: Callable[[], BatchDialog]) -> BatchDialog:
    """Show the dialog (one per window: ``parent``'s, shown again when already open)."""
    found = parent.findChild(BatchDialog)
    dialog = found if isinstance(found, BatchDialog) else create()
    dialog.show()  # a child window: shown above the main window
    return dialog
