"""Asking and answering: the question's tokens, the budget, sending, streaming, stopping.

The ask/answer controller. The turn an answer streams into is the workbench state's
(``app.workbench``: ``begin_turn``, ``append_delta``, ``end_turn``); this flow keeps the request
id of the answer in flight and turns the engine's signals for that id into those operations;
every other id is dropped. The conversation redraws from the changes they report. It owns the
ask bar: the question box, the Ask, Stop and New thread buttons, the hint and the budget meter.
It sends to whichever backend is active (local, or hosted once the user has agreed to what is
sent, see ``ui.hosted_glue``); both answer through the same signals, and citations are checked
the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton, QStatusBar

from longdesk.app.workbench import Change, Workbench
from longdesk.app.workspace import THINKING_RESERVE, conversation_tokens
from longdesk.engine.backends.base import Failed, FailureKind, Finished, Progress, Reading, Usage
from longdesk.engine.events import Stage, StopReason, Where
from longdesk.ui.activity import ActivityBar, duration
from longdesk.ui.engines import Engines
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.sources_glue import SourcesGlue
from longdesk.ui.widgets.budget_meter import BudgetFigures, BudgetMeter
from longdesk.ui.widgets.conversation import ConversationView
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.engine_worker import AskQuestion, CountText

_STAGES = {
    "prefill": "Reading the corpus",
    "restore": "Restoring the saved reading",
    "question": "Reading the question",
}


class AskBar:
    """The widgets of the ask bar that the flow owns (built by the window's layout)."""

    def __init__(
        self,
        question: QPlainTextEdit,
        ask_button: QPushButton,
        stop_button: QPushButton,
        thread_button: QPushButton,
        hint: QLabel,
        budget: BudgetMeter,
    ) -> None:
        self.question = question
        self.ask_button = ask_button
        self.stop_button = stop_button
        self.thread_button = thread_button
        self.hint = hint
        self.budget = budget


class AskFlow(QObject):
    """Sends questions and streams answers into the workbench's session.

    Signals:
        answer_finished(object): the TurnRecord of a finished (or stopped, or failed) answer.
        budget_changed(object): the BudgetFigures now shown (None when unknown).
        save_requested(): the session changed in a way worth saving.
    """

    answer_finished = Signal(object)
    budget_changed = Signal(object)
    save_requested = Signal()

    def __init__(
        self,
        state: Workbench,
        engines: Engines,
        hosted: HostedGlue,
        local: LocalModelGlue,
        sources_glue: SourcesGlue,
        bar: AskBar,
        conversation: ConversationView,
        sources: SourcesPanel,
        status: QStatusBar,
        activity: ActivityBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.engines = engines
        self.hosted = hosted
        self.local = local
        self.sources_glue = sources_glue
        self.bar = bar
        self.conversation = conversation
        self.sources = sources
        self.status = status
        self.activity = activity
        self.ask_id = 0
        self.count_id = 0
        self.question_tokens = 0
        self.reading_note = ""
        self._started_answer = False
        self._reading_marked = False
        self.count_timer = QTimer(self)
        self.count_timer.setSingleShot(True)
        self.count_timer.setInterval(300)
        self.count_timer.timeout.connect(self._count_question)
        bar.question.textChanged.connect(self.on_question_text_changed)
        bar.ask_button.clicked.connect(self.ask)
        bar.stop_button.clicked.connect(self.stop)
        conversation.regenerate_requested.connect(self.regenerate)
        conversation.continue_requested.connect(self.continue_answer)
        conversation.located_found.connect(self.on_conversation_located_found)
        hosted.send_requested.connect(
            lambda question, replace_last: self.send(question, replace_last=replace_last)
        )
        hosted.question_returned.connect(self.restore_question)

    @property
    def streaming(self) -> bool:
        return self.state.streaming

    @property
    def pending_question(self) -> str | None:
        return self.state.pending_question

    # ---------------------------------------------------------------- question and budget
    @Slot()
    def on_question_text_changed(self) -> None:
        self.question_tokens = 0
        self.count_timer.start()
        self.refresh_controls()

    def _count_question(self) -> None:
        text = self.bar.question.toPlainText().strip()
        if text and self.state.info is not None:
            self.count_id = self.engines.active().submit(lambda rid: CountText(rid, text))

    @Slot(int, int)
    def on_engine_counted(self, rid: int, tokens: int) -> None:
        if rid == self.count_id:
            self.question_tokens = tokens
            self.refresh_budget()

    def budget_figures(self) -> BudgetFigures | None:
        state = self.state
        if state.info is None or state.info.context_window <= 0:
            return None  # a hosted server of unknown size decides what fits
        if state.plan is not None:
            corpus = state.plan.prefix_tokens
        elif state.last_prefix:
            corpus = state.last_prefix  # the previous count, until the new one arrives
        elif state.session.documents:
            corpus = sum(d.tokens for d in state.session.documents if d.included)
        else:
            return None
        return BudgetFigures(
            window=state.info.context_window,
            corpus=corpus,
            conversation=self._conversation_tokens(corpus),
            question=self.question_tokens,
            thinking=self._thinking_reserve(),
            output=state.settings.max_output_tokens,
        )

    def _conversation_tokens(self, corpus: int) -> int:
        """Tokens after the corpus. A hosted request resends the whole conversation, and not
        every server reports cache hits: its last prompt less the corpus, plus its answer."""
        turns = self.state.session.turns
        last = next((t for t in reversed(turns) if t.prompt_tokens), None)
        if self.state.where is Where.HOSTED and last is not None and last.where == Where.HOSTED:
            return max(0, last.prompt_tokens - corpus) + last.output_tokens
        return conversation_tokens(turns)

    def _thinking_reserve(self) -> int:
        """Reasoning tokens kept free: a hosted plan carries its endpoint's own reserve."""
        state = self.state
        if state.where is Where.HOSTED and state.plan is not None:
            return max(0, state.plan.budget.reserved_output - state.settings.max_output_tokens)
        return THINKING_RESERVE[state.thinking]

    def refresh_budget(self) -> None:
        self.bar.budget.set_figures(self.budget_figures())
        self.budget_changed.emit(self.bar.budget.figures)
        self.refresh_controls()

    def refresh_controls(self) -> None:
        state, bar = self.state, self.bar
        streaming = state.streaming
        pending = state.pending_question is not None
        busy = streaming or pending
        over = bar.budget.over
        has_question = bool(bar.question.toPlainText().strip())
        ready = bool(state.session.sources)
        hosted = state.where is Where.HOSTED
        # Over budget, Ask stays possible when a hosted endpoint could take the question instead.
        fallback = over and not hosted and bool(state.settings.hosted_endpoint)
        bar.ask_button.setEnabled(has_question and ready and not busy and (not over or fallback))
        bar.ask_button.setVisible(not streaming)
        bar.stop_button.setVisible(streaming)
        bar.thread_button.setEnabled(not busy and bool(state.session.turns))
        if streaming:
            hint = "Answering — Esc stops. The corpus is read once; later questions reuse it."
        elif pending:
            hint = "Your question is sent as soon as the sources are read and counted."
        elif over:
            hint = "Does not fit: see the red note above." + (
                " Ask offers the hosted model instead." if fallback else ""
            )
        elif state.info is None:
            hint = "Connecting to the hosted model…" if hosted else "Loading the model…"
        elif not state.session.sources:
            hint = "Add sources to ask about them."
        elif state.plan is None:
            hint = (
                "Counting tokens…" if state.corpus is not None else "The sources will be read when you ask."
            )
        else:
            hint = self.reading_note or "Ready. The corpus is read once, then every question reuses it."
        bar.hint.setText(hint)

    # ---------------------------------------------------------------- asking
    @Slot()
    def ask(self) -> None:
        """Send the question (reading the sources first where needed); refused when over budget."""
        state, box = self.state, self.bar.question
        question = box.toPlainText().strip()
        if not question or self.streaming or state.pending_question is not None:
            return
        if not state.session.sources:
            self.status.showMessage("Add sources first: drop files or folders on the Sources panel.", 5000)
            return
        local = state.where is not Where.HOSTED
        figures = self.budget_figures()
        if figures is not None and not figures.fits:
            if local and self.hosted.offer_fallback(FailureKind.CONTEXT, figures.advice(), question):
                box.clear()
                return
            self.status.showMessage(figures.advice(), 10_000)
            return
        if local and self.local.failure is not None:
            kind, reason = self.local.failure
            if self.hosted.offer_fallback(kind, reason, question):
                box.clear()
                return
        box.clear()
        if state.plan is None or state.info is None:
            # Asked before the sources were counted (or the model loaded): sent once they are.
            if state.corpus is None and self.sources_glue.ingest is None:
                self.sources_glue.ingest_sources()
            self.status.showMessage("Reading the sources before asking…")
            state.set_pending(question)
            return
        self.send(question)

    def send(self, question: str, *, replace_last: bool = False) -> None:
        """Send ``question`` to the active backend; a hosted one asks for consent first."""
        plan = self.state.plan
        if plan is None:
            return
        if not plan.budget.fits:
            self.status.showMessage(plan.budget.describe(), 10_000)
            return
        if self.state.where is Where.HOSTED:
            self.hosted.with_consent(
                lambda: self._submit(question, replace_last),
                on_cancel=lambda: self.restore_question(question),
            )
        else:
            self._submit(question, replace_last)

    @Slot(str)
    def restore_question(self, question: str) -> None:
        """Put a question that was not sent back into the box (unless the user typed another)."""
        if not self.bar.question.toPlainText().strip():
            self.bar.question.setPlainText(question)

    def _submit(self, question: str, replace_last: bool) -> None:
        state = self.state
        plan = state.plan
        if plan is None or self.streaming:
            return
        model_name = state.info.name if state.info else ""
        self.status.clearMessage()
        self._started_answer = False
        self._reading_marked = False
        state.begin_turn(question, model_name, replace_last=replace_last)
        hist = state.history(state.streaming_index)
        options = state.ask_options()
        self.ask_id = self.engines.active().submit(
            lambda rid: AskQuestion(rid, plan, hist, question, options)
        )
        self.activity.start("Waiting for the model…")

    @Slot(int)
    def continue_answer(self, index: int) -> None:
        """Continue the last answer where a dropped connection cut it (hosted, same consent)."""
        state = self.state
        turns = state.session.turns
        if self.streaming or state.plan is None or index != len(turns) - 1:
            return
        turn = turns[index]
        resumable = turn.stop_reason == StopReason.INCOMPLETE and turn.where == Where.HOSTED
        if not resumable or state.where is not Where.HOSTED:
            return
        self.hosted.with_consent(lambda: self._resume(index))

    def _resume(self, index: int) -> None:
        state = self.state
        plan = state.plan
        if plan is None or self.streaming:
            return
        turn = state.session.turns[index]
        hist = state.history(index)
        self._started_answer = True
        state.resume_turn(index)
        options, question, partial = state.ask_options(), turn.question, turn.answer
        self.ask_id = self.engines.active().submit(
            lambda rid: AskQuestion(rid, plan, hist, question, options, partial=partial)
        )
        self.activity.start("Continuing the answer…")

    @Slot(int)
    def regenerate(self, index: int) -> None:
        turns = self.state.session.turns
        if self.streaming or not 0 <= index < len(turns) or self.state.plan is None:
            return
        self.send(turns[index].question, replace_last=index == len(turns) - 1)

    @Slot()
    def stop(self) -> None:
        """Esc: stop the answer, the reading or the ingestion in progress."""
        if self.ask_id:
            self.engines.cancel(self.ask_id)
            self.status.showMessage("Stopping…", 3000)
        self.sources_glue.cancel()
        self.state.set_pending(None)

    @Slot()
    def send_pending(self) -> None:
        """The plan arrived: send the question asked while it was being made."""
        question = self.state.take_pending()
        if question is not None:
            self.send(question)

    # ---------------------------------------------------------------- streaming
    @Slot(int, object)
    def on_engine_progressed(self, rid: int, progress: object) -> None:
        if rid != self.ask_id or not isinstance(progress, Progress):
            return
        label = _STAGES.get(progress.stage, progress.stage.capitalize())
        self.activity.progress(label, progress.done, progress.total, "tokens", progress.rate, progress.eta_s)
        plan = self.state.plan
        if progress.stage == Stage.PREFILL and not self._reading_marked and plan is not None:
            self._reading_marked = True  # once per reading: thousands of rows, ten updates a second
            self.sources.model.set_status({s.doc_id: "reading…" for s in plan.spans})

    @Slot(int, object)
    def on_engine_read_finished(self, rid: int, reading: object) -> None:
        if rid != self.ask_id or not isinstance(reading, Reading):
            return
        hosted = self.state.where is Where.HOSTED
        if hosted:
            self.reading_note = (
                f"{reading.prefix_tokens:,} tokens of sources go to {self.hosted.host()} first and unchanged "
                "in every request, so its prefix cache can serve them again"
            )
        elif reading.restored:
            self.reading_note = (
                f"Restored from a saved snapshot — {reading.prefix_tokens:,} tokens ready in "
                f"{reading.seconds:.1f} s, no reading needed"
            )
        else:
            rate = reading.prefix_tokens / reading.seconds if reading.seconds > 0 else 0.0
            self.reading_note = (
                f"Read {reading.prefix_tokens:,} tokens in {duration(reading.seconds)} ({rate:,.0f} tokens/s)"
            )
        self.status.showMessage(self.reading_note, 15_000)
        plan = self.state.plan
        if plan is not None and not hosted:
            state = "read (snapshot)" if reading.restored else "read"
            self.sources.model.set_status({s.doc_id: state for s in plan.spans})
        self.activity.start("Answering…")

    @Slot(int, str, str)
    def on_engine_text_streamed(self, rid: int, kind: str, text: str) -> None:
        if rid != self.ask_id:
            return
        if not self._started_answer:
            self._started_answer = True
            self.activity.start("Answering…")
        self.state.append_delta(kind, text)

    @Slot(int, object)
    def on_engine_usage_reported(self, rid: int, usage: object) -> None:
        if rid == self.ask_id and isinstance(usage, Usage):
            self.state.record_usage(usage)

    @Slot(int, object)
    def on_engine_finished(self, rid: int, result: object) -> None:
        if rid != self.ask_id or not isinstance(result, Finished):
            return
        self._end_answer(lambda: self.state.end_turn(result.stop_reason), "")

    def on_ask_failed(self, failure: Failed) -> None:
        """The answer failed: a cut stream keeps its text, marked incomplete; local failures
        that a hosted model could serve are offered there."""
        state = self.state
        turn = state.streaming_turn()
        question = turn.question if turn is not None else ""
        self._end_answer(
            lambda: state.fail_turn(failure.kind, failure.message, partial=failure.partial), failure.message
        )
        if failure.kind is not FailureKind.CANCELLED and state.where is not Where.HOSTED and question:
            self.hosted.offer_fallback(failure.kind, failure.message, question, replace_last=True)

    def _end_answer(self, end: Callable[[], Change], message: str) -> None:
        state = self.state
        index = state.streaming_index
        self.ask_id = 0
        self.activity.finish()
        end()
        if 0 <= index < len(state.session.turns):
            turn = state.session.turns[index]
            if message:
                self.status.showMessage(message, 15_000)
            elif turn.stop_reason == StopReason.CANCELLED:
                self.status.showMessage("Stopped; the partial answer is kept.", 8000)
            self.answer_finished.emit(turn)
        if state.where is Where.HOSTED:
            self.hosted.show_costs()
        self.save_requested.emit()

    # ---------------------------------------------------------------- citations
    @Slot(int, object)
    def on_conversation_located_found(self, index: int, located: object) -> None:
        """The finished answer of turn ``index`` has located citations: keep them with the session."""
        if not isinstance(located, Sequence):
            return
        if self.state.save_located(index, [str(x) for x in located]):
            self.save_requested.emit()
