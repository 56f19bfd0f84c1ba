"""Asking and answering: the question's tokens, the budget, sending, streaming, stopping.

The window's ask/answer controller. It holds the state of the one answer in flight (its
request id, the turn it streams into) and turns the engine's signals for that id into the
conversation; every other id is dropped. It sends to whichever backend is active (local, or
hosted once the user has agreed to what is sent, see ``ui.hosted_glue``); both answer
through the same signals, and citations are checked the same way for both.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot

from longdesk.app.citations import DocRef
from longdesk.app.sessions import TurnRecord, title_from_question
from longdesk.app.workspace import THINKING_RESERVE, conversation_tokens, history
from longdesk.engine.backends.base import AskOptions, Failed, FailureKind, Finished, Progress, Reading, Usage
from longdesk.engine.corpus.model import Corpus
from longdesk.ui.activity import duration
from longdesk.ui.widgets.budget_meter import BudgetFigures
from longdesk.ui.widgets.model_bar import WHERE_HOSTED
from longdesk.ui.workers.engine_worker import AskQuestion, CountText

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow

_STAGES = {
    "prefill": "Reading the corpus",
    "restore": "Restoring the saved reading",
    "question": "Reading the question",
}


class AskFlow(QObject):
    """Sends questions and streams answers into the window's session and conversation."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.ask_id = 0
        self.count_id = 0
        self.question_tokens = 0
        self.pending_question: str | None = None
        self.reading_note = ""
        self._streaming_index = -1
        self._started_answer = False
        self._reading_marked = False
        self._resuming = False  # a continued answer adds its usage to the turn's
        self.count_timer = QTimer(self)
        self.count_timer.setSingleShot(True)
        self.count_timer.setInterval(300)
        self.count_timer.timeout.connect(self._count_question)

    @property
    def streaming(self) -> bool:
        return self.ask_id != 0

    # ---------------------------------------------------------------- question and budget
    @Slot()
    def on_question_text_changed(self) -> None:
        self.question_tokens = 0
        self.count_timer.start()
        self.w.refresh_controls()

    def _count_question(self) -> None:
        text = self.w.question.toPlainText().strip()
        if text and self.w.info is not None:
            self.count_id = self.w.active_engine().submit(lambda rid: CountText(rid, text))

    @Slot(int, int)
    def on_engine_counted(self, rid: int, tokens: int) -> None:
        if rid == self.count_id:
            self.question_tokens = tokens
            self.w.refresh_budget()

    def budget_figures(self) -> BudgetFigures | None:
        w = self.w
        if w.info is None or w.info.context_window <= 0:
            return None  # a hosted server of unknown size decides what fits
        if w.plan is not None:
            corpus = w.plan.prefix_tokens
        elif w.last_prefix:
            corpus = w.last_prefix  # the previous count, until the new one arrives
        elif w.session.documents:
            corpus = sum(d.tokens for d in w.session.documents if d.included)
        else:
            return None
        return BudgetFigures(
            window=w.info.context_window,
            corpus=corpus,
            conversation=self._conversation_tokens(corpus),
            question=self.question_tokens,
            thinking=self._thinking_reserve(),
            output=w.settings.max_output_tokens,
        )

    def _conversation_tokens(self, corpus: int) -> int:
        """Tokens after the corpus. A hosted request resends the whole conversation, and not
        every server reports cache hits: its last prompt less the corpus, plus its answer."""
        turns = self.w.session.turns
        last = next((t for t in reversed(turns) if t.prompt_tokens), None)
        if self.w.where == WHERE_HOSTED and last is not None and last.where == WHERE_HOSTED:
            return max(0, last.prompt_tokens - corpus) + last.output_tokens
        return conversation_tokens(turns)

    def _thinking_reserve(self) -> int:
        """Reasoning tokens kept free: a hosted plan carries its endpoint's own reserve."""
        w = self.w
        if w.where == WHERE_HOSTED and w.plan is not None:
            return max(0, w.plan.budget.reserved_output - w.settings.max_output_tokens)
        return THINKING_RESERVE[w.model_bar.thinking_mode()]

    def options(self) -> AskOptions:
        return AskOptions(
            thinking=self.w.model_bar.thinking_mode(), max_output_tokens=self.w.settings.max_output_tokens
        )

    # ---------------------------------------------------------------- asking
    @Slot()
    def ask(self) -> None:
        """Send the question (reading the sources first where needed); refused when over budget."""
        w = self.w
        question = w.question.toPlainText().strip()
        if not question or self.streaming or self.pending_question is not None:
            return
        if not w.session.sources:
            w.statusBar().showMessage("Add sources first: drop files or folders on the Sources panel.", 5000)
            return
        figures = self.budget_figures()
        if figures is not None and not figures.fits:
            if w.where != WHERE_HOSTED and w.hosted.offer_fallback(
                FailureKind.CONTEXT, figures.advice(), question
            ):
                w.question.clear()
                return
            w.statusBar().showMessage(figures.advice(), 10_000)
            return
        if w.where != WHERE_HOSTED and w.local.failure is not None:
            kind, reason = w.local.failure
            if w.hosted.offer_fallback(kind, reason, question):
                w.question.clear()
                return
        w.question.clear()
        if w.plan is None or w.info is None:
            # Asked before the sources were counted (or the model loaded): sent once they are.
            self.pending_question = question
            if w.corpus is None and w.sources_glue.ingest is None:
                w.ingest_sources()
            w.statusBar().showMessage("Reading the sources before asking…")
            w.refresh_all()
            return
        self.send(question)

    def send(self, question: str, *, replace_last: bool = False) -> None:
        """Send ``question`` to the active backend; a hosted one asks for consent first."""
        w = self.w
        if w.plan is None:
            return
        if not w.plan.budget.fits:
            w.statusBar().showMessage(w.plan.budget.describe(), 10_000)
            return
        if w.where == WHERE_HOSTED:
            w.hosted.with_consent(
                lambda: self._submit(question, replace_last),
                on_cancel=lambda: self.restore_question(question),
            )
        else:
            self._submit(question, replace_last)

    def restore_question(self, question: str) -> None:
        """Put a question that was not sent back into the box (unless the user typed another)."""
        if not self.w.question.toPlainText().strip():
            self.w.question.setPlainText(question)

    def _submit(self, question: str, replace_last: bool) -> None:
        w = self.w
        plan = w.plan
        if plan is None or self.streaming:
            return
        turns = list(w.session.turns)
        if replace_last and turns:
            turns.pop()
            w.conversation.remove_last()
        hist = history(turns)
        model_name = w.info.name if w.info else ""
        record = TurnRecord(question, "", model=model_name, created=time.time(), where=w.where)
        title = w.session.title
        if not turns and title == "New session":
            title = title_from_question(question)
        w.session = dataclasses.replace(w.session, turns=(*turns, record), title=title)
        self._streaming_index = w.conversation.append_turn(record, streaming=True)
        w.statusBar().clearMessage()
        self._started_answer = False
        self._reading_marked = False
        self._resuming = False
        options = self.options()
        self.ask_id = w.active_engine().submit(lambda rid: AskQuestion(rid, plan, hist, question, options))
        w.activity.start("Waiting for the model…")
        w.refresh_all()

    @Slot(int)
    def continue_answer(self, index: int) -> None:
        """Continue the last answer where a dropped connection cut it (hosted, same consent)."""
        w = self.w
        turns = w.session.turns
        if self.streaming or w.plan is None or index != len(turns) - 1:
            return
        turn = turns[index]
        if turn.stop_reason != "incomplete" or w.where != WHERE_HOSTED or turn.where != WHERE_HOSTED:
            return
        w.hosted.with_consent(lambda: self._resume(index))

    def _resume(self, index: int) -> None:
        w = self.w
        plan = w.plan
        if plan is None or self.streaming:
            return
        turn = w.session.turns[index]
        hist = history(w.session.turns[:index])
        self._streaming_index = index
        self._started_answer = True
        self._resuming = True
        self._update_streaming(stop_reason="stop")
        options, question, partial = self.options(), turn.question, turn.answer
        self.ask_id = w.active_engine().submit(
            lambda rid: AskQuestion(rid, plan, hist, question, options, partial=partial)
        )
        w.activity.start("Continuing the answer…")
        w.refresh_all()

    @Slot(int)
    def regenerate(self, index: int) -> None:
        w = self.w
        if self.streaming or not 0 <= index < len(w.session.turns) or w.plan is None:
            return
        self.send(w.session.turns[index].question, replace_last=index == len(w.session.turns) - 1)

    @Slot()
    def stop(self) -> None:
        """Esc: stop the answer, the reading or the ingestion in progress."""
        w = self.w
        if self.ask_id:
            w.engine.cancel(self.ask_id)
            w.hosted.cancel(self.ask_id)
            w.statusBar().showMessage("Stopping…", 3000)
        if w.sources_glue.ingest is not None:
            w.sources_glue.ingest.cancel()
        self.pending_question = None

    def send_pending(self) -> None:
        """The plan arrived: send the question asked while it was being made."""
        if self.pending_question is not None:
            question, self.pending_question = self.pending_question, None
            self.send(question)

    # ---------------------------------------------------------------- streaming
    def _update_streaming(self, **changes: object) -> None:
        w = self.w
        index = self._streaming_index
        if index < 0 or index >= len(w.session.turns):
            return
        turns = list(w.session.turns)
        turns[index] = dataclasses.replace(turns[index], **changes)  # type: ignore[arg-type]
        w.session = dataclasses.replace(w.session, turns=tuple(turns))
        w.conversation.update_turn(index, turns[index], streaming=True)

    @Slot(int, object)
    def on_engine_progressed(self, rid: int, progress: object) -> None:
        w = self.w
        if rid != self.ask_id or not isinstance(progress, Progress):
            return
        label = _STAGES.get(progress.stage, progress.stage.capitalize())
        w.activity.progress(label, progress.done, progress.total, "tokens", progress.rate, progress.eta_s)
        if progress.stage == "prefill" and not self._reading_marked and w.plan is not None:
            self._reading_marked = True  # once per reading: thousands of rows, ten updates a second
            w.sources.model.set_status({s.doc_id: "reading…" for s in w.plan.spans})

    @Slot(int, object)
    def on_engine_read_finished(self, rid: int, reading: object) -> None:
        w = self.w
        if rid != self.ask_id or not isinstance(reading, Reading):
            return
        if w.where == WHERE_HOSTED:
            host = w.hosted.host()
            self.reading_note = (
                f"{reading.prefix_tokens:,} tokens of sources go to {host} first and unchanged in every "
                "request, so its prefix cache can serve them again"
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
        w.statusBar().showMessage(self.reading_note, 15_000)
        if w.plan is not None and w.where != WHERE_HOSTED:
            state = "read (snapshot)" if reading.restored else "read"
            w.sources.model.set_status({s.doc_id: state for s in w.plan.spans})
        w.activity.start("Answering…")

    @Slot(int, str, str)
    def on_engine_text_streamed(self, rid: int, kind: str, text: str) -> None:
        if rid != self.ask_id:
            return
        turn = self.w.session.turns[self._streaming_index]
        if not self._started_answer:
            self._started_answer = True
            self.w.activity.start("Answering…")
        if kind == "thinking":
            self._update_streaming(thinking=turn.thinking + text)
        else:
            self._update_streaming(answer=turn.answer + text)

    @Slot(int, object)
    def on_engine_usage_reported(self, rid: int, usage: object) -> None:
        if rid != self.ask_id or not isinstance(usage, Usage):
            return
        turns, index = self.w.session.turns, self._streaming_index
        before = turns[index] if self._resuming and 0 <= index < len(turns) else None
        cost = usage.cost
        if before is not None and before.cost is not None and cost is not None:
            cost += before.cost
        self._update_streaming(
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens + (before.output_tokens if before else 0),
            seconds=usage.seconds + (before.seconds if before else 0.0),
            cost=cost,
            currency=usage.currency,
        )

    @Slot(int, object)
    def on_engine_finished(self, rid: int, result: object) -> None:
        if rid != self.ask_id or not isinstance(result, Finished):
            return
        self._end_answer(result.stop_reason, "")

    def on_ask_failed(self, failure: Failed) -> None:
        """The answer failed: a cut stream keeps its text, marked incomplete; local failures
        that a hosted model could serve are offered there."""
        w = self.w
        if failure.kind is FailureKind.CANCELLED:
            self._end_answer("cancelled", failure.message)
            return
        index = self._streaming_index
        turn = w.session.turns[index] if 0 <= index < len(w.session.turns) else None
        question = turn.question if turn is not None else ""
        # Incomplete: part of the answer arrived and can be continued (reasoning alone cannot).
        kept = failure.partial and turn is not None and bool(turn.answer)
        self._end_answer("incomplete" if kept else "failed", failure.message)
        if w.where != WHERE_HOSTED and question:
            w.hosted.offer_fallback(failure.kind, failure.message, question, replace_last=True)

    def _end_answer(self, stop_reason: str, message: str) -> None:
        w = self.w
        index = self._streaming_index
        self.ask_id = 0
        w.activity.finish()
        if 0 <= index < len(w.session.turns):
            turns = list(w.session.turns)
            turn = turns[index]
            if message and not turn.answer:
                turn = dataclasses.replace(turn, answer=f"*{message}*")
            turn = dataclasses.replace(turn, stop_reason=stop_reason)
            turns[index] = turn
            w.session = dataclasses.replace(w.session, turns=tuple(turns))
            w.conversation.update_turn(index, turn, streaming=False)
            if message:
                w.statusBar().showMessage(message, 15_000)
            elif stop_reason == "cancelled":
                w.statusBar().showMessage("Stopped; the partial answer is kept.", 8000)
            w.answer_finished.emit(turn)
        self._streaming_index = -1
        if w.where == WHERE_HOSTED:
            w.hosted.show_costs()
        w.autosave()
        w.refresh_all()

    # ---------------------------------------------------------------- citations
    def citation_context(self) -> tuple[Corpus | None, Mapping[str, DocRef]]:
        """What citations are checked against (local and hosted alike), on the checker thread."""
        return self.w.corpus, self.w.session.refs()
