"""The conversation: questions, streamed Markdown answers, reasoning, figures and actions.

Each turn is its own widget, so streaming re-renders one answer, never the whole thread. A
long session is shown lazily: only the last ``VISIBLE_TURNS`` turns are built until the user
asks for earlier ones.

Citations are checked off the GUI thread (``CitationChecker``): a render tick only draws the
answer with the verdicts known so far and hands the answer's text to the checker's thread,
which feeds the new part to that answer's one grounding tracker and sends the verdicts back.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from longdesk.app import heap
from longdesk.app.citations import AnswerCitations, Check, Citation, DocRef, shown_answer
from longdesk.app.sessions import TurnRecord
from longdesk.engine import grounding
from longdesk.engine.backends.hosted_prices import format_money
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import StopReason, Where
from longdesk.ui.widgets.safe_browser import SafeBrowser

log = logging.getLogger(__name__)

VISIBLE_TURNS = 30
# Re-render a streaming answer at most this often (the worker already coalesces to ~30/s).
RENDER_INTERVAL_MS = 50

# What citations are checked against: the corpus (None before it is read) and the documents.
CitationContext = Callable[[], tuple[Corpus | None, Mapping[str, DocRef]]]
_KEYS = itertools.count(1)
_SUMMARY_WORDS = {
    Check.VERIFIED: "verified",
    Check.ANCHORED: "place exists, not checked",
    Check.UNVERIFIED: "unverified",
    Check.FAILED: "failed",
    Check.UNRESOLVED: "unresolved",
    Check.LOCATED: "located",
}


@dataclass(frozen=True, slots=True)
class _Job:
    answer: str
    final: bool
    corpus: Corpus | None
    refs: Mapping[str, DocRef]


class _Queue:
    """The jobs between the GUI thread and the checker thread (latest text per answer wins)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jobs: dict[int, _Job | None] = {}  # None: forget that answer
        self.busy = False
        self.closed = False

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class CitationChecker(QObject):
    """Checks the citations of every shown answer on one worker thread.

    ``submit(key, answer, final)`` from the GUI thread returns at once; ``checked(key,
    citations)`` arrives on the GUI thread with grounding's verdicts on every citation so far.
    Each answer has one ``AnswerCitations`` (one grounding tracker) fed only its new text, and
    one grounding index per corpus is shared by all answers. A newer text of an answer replaces
    a waiting older one.

    Signals:
        checked(int, object): the answer's key and its list of Citations.
    """

    checked = Signal(int, object)

    def __init__(self, context: CitationContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._queue = _Queue()
        queue = self._queue
        self.destroyed.connect(lambda *_: queue.close())
        self._thread = threading.Thread(target=self._run, name="citation-checker", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being checked (for tests and benchmarks)."""
        with self._queue.cond:
            return not self._queue.jobs and not self._queue.busy

    def submit(self, key: int, answer: str, *, final: bool) -> None:
        corpus, refs = self._context()
        with self._queue.cond:
            self._queue.jobs[key] = _Job(answer, final, corpus, refs)
            self._queue.cond.notify()

    def forget(self, key: int) -> None:
        with self._queue.cond:
            self._queue.jobs[key] = None
            self._queue.cond.notify()

    def close(self) -> None:
        """Stop the thread (after the check in progress)."""
        self._queue.close()

    def _run(self) -> None:
        queue = self._queue
        answers: dict[int, AnswerCitations] = {}
        index: tuple[Corpus, grounding.CorpusIndex] | None = None
        while True:
            with queue.cond:
                queue.busy = False
                while not queue.jobs and not queue.closed:
                    queue.cond.wait()
                if queue.closed:
                    return
                key = next(iter(queue.jobs))
                job = queue.jobs.pop(key)
                queue.busy = True
            if job is None:
                answers.pop(key, None)
                continue
            state = answers.get(key)
            if state is None or state.corpus is not job.corpus:
                shared = None
                if job.corpus is not None:
                    if index is None or index[0] is not job.corpus:
                        index = (job.corpus, grounding.CorpusIndex(job.corpus))
                    shared = index[1]
                state = answers[key] = AnswerCitations(job.corpus, job.refs, shared)
            try:
                cites = state.update(job.answer, final=job.final)
            except Exception:
                answers.pop(key, None)
                cites = []
                log.exception("citation check failed; the answer is shown without its citations checked")
            if job.final:
                heap.trim()  # the word indexes' building lists, dropped (app.heap)
            try:
                self.checked.emit(key, cites)
            except RuntimeError:  # the view is gone
                return


def turn_figures(turn: TurnRecord) -> str:
    """``42 tokens · 21.3 tok/s · 1,200 of 1,260 prompt tokens cached · $0.0012``."""
    parts = []
    if turn.output_tokens:
        parts.append(f"{turn.output_tokens:,} token{'s' if turn.output_tokens != 1 else ''}")
    if turn.seconds > 0 and turn.output_tokens:
        parts.append(f"{turn.output_tokens / turn.seconds:,.1f} tok/s")
    if turn.prompt_tokens and turn.where == Where.HOSTED:
        miss = max(0, turn.prompt_tokens - turn.cached_tokens)
        parts.append(f"cache hit {turn.cached_tokens:,} / miss {miss:,}")
    elif turn.prompt_tokens:
        parts.append(f"{turn.cached_tokens:,} of {turn.prompt_tokens:,} prompt tokens cached")
    if turn.cost is not None:
        currency = "USD" if turn.currency in ("", "$", "USD") else turn.currency
        parts.append(format_money(turn.cost, currency))
    if turn.stop_reason == StopReason.INCOMPLETE:
        parts.append("INCOMPLETE: the connection dropped; the part received is kept")
    elif turn.stop_reason == StopReason.CANCELLED:
        parts.append("stopped")
    elif turn.stop_reason == StopReason.LENGTH:
        parts.append("cut at the output limit")
    elif turn.stop_reason == StopReason.FAILED:
        parts.append("failed")
    elif turn.stop_reason == StopReason.REPEATED:
        parts.append("stopped: the model repeated the source")
    return " · ".join(parts)


def citation_summary(citations: Sequence[Citation]) -> str:
    if not citations:
        return ""
    counts = {c: sum(1 for x in citations if x.check is c) for c in Check}
    words = [f"{n} {_SUMMARY_WORDS[c]}" for c, n in counts.items() if n]
    return f"{len(citations)} citation{'s' if len(citations) != 1 else ''}: " + ", ".join(words)


class TurnWidget(QFrame):
    """One question and its answer.

    Signals:
        citation_clicked(object): the Citation the user clicked.
        regenerate_requested(): ask this question again.
        continue_requested(): continue an answer that was cut off.
        link_requested(QUrl): a web link in the answer was clicked.
        located_found(object): the located citations (their texts) of the finished answer.
    """

    citation_clicked = Signal(object)
    regenerate_requested = Signal()
    continue_requested = Signal()
    link_requested = Signal(QUrl)
    located_found = Signal(object)

    def __init__(self, turn: TurnRecord, checker: CitationChecker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("turn")
        self.turn = turn
        self.key = next(_KEYS)
        self._checker = checker
        checker.checked.connect(self.on_checker_checked)
        self.citations: list[Citation] = []
        self._dirty = False
        self._streaming = False
        self._posted: tuple[str, bool] | None = None  # the text (and finality) sent to the checker
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)

        layout = QVBoxLayout(self)
        # Spacing comes from layout margins, not stylesheet padding: Qt's size hints do not
        # always see padding applied after a widget was first laid out.
        layout.setContentsMargins(12, 10, 12, 8)
        layout.setSpacing(4)
        bubble = QFrame(self)
        bubble.setObjectName("questionBubble")
        bubble_layout = QVBoxLayout(bubble)
        bubble_layout.setContentsMargins(10, 7, 10, 7)
        self.question_label = QLabel(turn.question, bubble)
        self.question_label.setObjectName("question")
        self.question_label.setWordWrap(True)
        self.question_label.setTextFormat(Qt.TextFormat.PlainText)
        self.question_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bubble_layout.addWidget(self.question_label)
        layout.addWidget(bubble)

        self.thinking_toggle = QToolButton(self)
        self.thinking_toggle.setObjectName("thinkingToggle")
        self.thinking_toggle.setCheckable(True)
        self.thinking_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.thinking_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.thinking_toggle.setText("Reasoning")
        self.thinking_toggle.toggled.connect(self.on_thinking_toggle_toggled)
        self.thinking_view = SafeBrowser(self)
        self.thinking_view.setObjectName("thinking")
        self.thinking_view.setVisible(False)
        layout.addWidget(self.thinking_toggle)
        layout.addWidget(self.thinking_view)

        self.answer_view = SafeBrowser(self)
        self.answer_view.setObjectName("answer")
        self.answer_view.citation_clicked.connect(self.on_answer_view_citation_clicked)
        self.answer_view.link_requested.connect(self.link_requested)
        layout.addWidget(self.answer_view)

        footer = QHBoxLayout()
        footer.setSpacing(6)
        self.figures_label = QLabel("", self)
        self.figures_label.setObjectName("figures")
        self.cites_label = QLabel("", self)
        self.cites_label.setObjectName("citeSummary")
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy the answer as Markdown")
        self.copy_button.clicked.connect(self.on_copy_button_clicked)
        self.regenerate_button = QPushButton("Regenerate", self)
        self.regenerate_button.setToolTip("Ask this question again")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.continue_button = QPushButton("Continue", self)
        self.continue_button.setToolTip("The answer was cut off: continue it where it stopped")
        self.continue_button.clicked.connect(self.continue_requested)
        for b in (self.copy_button, self.continue_button, self.regenerate_button):
            b.setFlat(True)
            b.setCursor(Qt.CursorShape.PointingHandCursor)
        footer.addWidget(self.figures_label)
        footer.addWidget(self.cites_label)
        footer.addStretch(1)
        footer.addWidget(self.copy_button)
        footer.addWidget(self.continue_button)
        footer.addWidget(self.regenerate_button)
        layout.addLayout(footer)
        self.set_turn(turn, streaming=False)

    def set_turn(self, turn: TurnRecord, *, streaming: bool) -> None:
        """Show ``turn``; while streaming, renders are throttled and actions disabled."""
        self.turn = turn
        has_thinking = bool(turn.thinking)
        self.thinking_toggle.setVisible(has_thinking)
        if has_thinking and streaming and not self.thinking_toggle.isChecked() and not turn.answer:
            self.thinking_toggle.setChecked(True)
        self.copy_button.setEnabled(not streaming and bool(turn.answer))
        self.regenerate_button.setEnabled(not streaming)
        self.continue_button.setVisible(not streaming and turn.stop_reason == StopReason.INCOMPLETE)
        self.figures_label.setText("answering…" if streaming else turn_figures(turn))
        self._streaming = streaming
        self._dirty = True
        if streaming:
            if not self._render_timer.isActive():
                self._render_timer.start()
        else:
            self._render_timer.stop()
            self._render()

    def _render(self) -> None:
        """Draw the answer with the verdicts known so far; hand new text to the checker."""
        if not self._dirty:
            return
        self._dirty = False
        turn = self.turn
        if turn.thinking:
            self.thinking_view.set_answer(turn.thinking)
        if not turn.answer:
            self.citations = []
        # Verdicts of an earlier text of this answer: only those that still lie inside it.
        size = len(turn.answer)
        # Located citations (Longdesk's, for a finished answer) sit after the answer's text.
        shown = [
            c for c in self.citations if c.end <= size or (c.check is Check.LOCATED and not self._streaming)
        ]
        self.answer_view.set_answer(shown_answer(turn.answer, shown) or "…", shown)
        self.cites_label.setText(citation_summary(shown))
        posted = (turn.answer, not self._streaming)
        if turn.answer and posted != self._posted:
            self._posted = posted
            self._checker.submit(self.key, turn.answer, final=not self._streaming)

    @Slot(int, object)
    def on_checker_checked(self, key: int, citations: object) -> None:
        if key != self.key or not isinstance(citations, list) or citations == self.citations:
            return  # the same verdicts: nothing to draw again
        self.citations = citations
        self._dirty = True
        if self._streaming:
            if not self._render_timer.isActive():
                self._render_timer.start()
        else:
            self._render()
            located = [c.raw for c in citations if isinstance(c, Citation) and c.check is Check.LOCATED]
            if located:
                self.located_found.emit(located)

    @Slot(bool)
    def on_thinking_toggle_toggled(self, shown: bool) -> None:
        self.thinking_view.setVisible(shown)
        self.thinking_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    @Slot(int)
    def on_answer_view_citation_clicked(self, offset: int) -> None:
        for cite in self.citations:
            if cite.start == offset:
                self.citation_clicked.emit(cite)
                return

    @Slot()
    def on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.turn.answer)


class ConversationView(QScrollArea):
    """The turns of one session, newest at the bottom.

    Signals:
        citation_clicked(object): a Citation was clicked in some answer.
        regenerate_requested(int): the index of the turn to ask again.
        continue_requested(int): the index of a cut-off answer to continue.
        link_requested(QUrl): a web link was clicked.
        located_found(int, object): a turn's index and the located citations of its finished answer.
    """

    citation_clicked = Signal(object)
    regenerate_requested = Signal(int)
    continue_requested = Signal(int)
    link_requested = Signal(QUrl)
    located_found = Signal(int, object)

    def __init__(self, context: CitationContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversation")
        self.citation_checker = CitationChecker(context, self)
        self._checker = self.citation_checker
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._inner = QWidget(self)
        self._inner.setObjectName("conversationInner")
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(24, 12, 24, 12)
        self._layout.setSpacing(8)
        self.earlier_button = QPushButton("Show earlier turns", self._inner)
        self.earlier_button.setFlat(True)
        self.earlier_button.clicked.connect(self.on_earlier_button_clicked)
        self.earlier_button.setVisible(False)
        self._layout.addWidget(self.earlier_button)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self.turns: list[TurnRecord] = []
        self.widgets: dict[int, TurnWidget] = {}
        self._streaming_index = -1
        self._first_shown = 0
        self.verticalScrollBar().rangeChanged.connect(self._stick_to_bottom)
        self._follow = True

    def set_turns(self, turns: Sequence[TurnRecord]) -> None:
        """Show a whole conversation; only the last ``VISIBLE_TURNS`` are built now."""
        for w in self.widgets.values():
            self._checker.forget(w.key)
            w.setParent(None)
            w.deleteLater()
        self.widgets.clear()
        self.turns = list(turns)
        self._streaming_index = -1
        self._first_shown = max(0, len(self.turns) - VISIBLE_TURNS)
        for i in range(self._first_shown, len(self.turns)):
            self._add_widget(i)
        self.earlier_button.setVisible(self._first_shown > 0)
        self._follow = True

    def sync_turns(self, turns: Sequence[TurnRecord], streaming_index: int) -> None:
        """Show ``turns``, redrawing only what differs from the turns shown (the turn at
        ``streaming_index`` streams). A turn asked anew (another question or time) replaces the
        shown one and every turn after it."""
        same = 0
        limit = min(len(self.turns), len(turns))
        while same < limit and (self.turns[same].created, self.turns[same].question) == (
            turns[same].created,
            turns[same].question,
        ):
            same += 1
        while len(self.turns) > same:
            self.remove_last()
        was = self._streaming_index
        self._streaming_index = streaming_index
        for i in range(same):
            if self.turns[i] is not turns[i] or i in (was, streaming_index):
                self.update_turn(i, turns[i], streaming=i == streaming_index)
        for i in range(same, len(turns)):
            self.append_turn(turns[i], streaming=i == streaming_index)

    def append_turn(self, turn: TurnRecord, *, streaming: bool) -> int:
        self.turns.append(turn)
        index = len(self.turns) - 1
        self._add_widget(index).set_turn(turn, streaming=streaming)
        self._follow = True
        return index

    def update_turn(self, index: int, turn: TurnRecord, *, streaming: bool) -> None:
        self.turns[index] = turn
        widget = self.widgets.get(index)
        if widget is not None:
            widget.set_turn(turn, streaming=streaming)

    def remove_last(self) -> None:
        index = len(self.turns) - 1
        if index < 0:
            return
        self.turns.pop()
        widget = self.widgets.pop(index, None)
        if widget is not None:
            self._checker.forget(widget.key)
            widget.setParent(None)
            widget.deleteLater()

    def find_text(self, text: str) -> int:
        """Select the first match of ``text`` in the shown answers; returns how many turns match."""
        hits = 0
        first: TurnWidget | None = None
        for i in sorted(self.widgets):
            w = self.widgets[i]
            view = w.answer_view
            view.moveCursor(view.textCursor().MoveOperation.Start)
            if text and (view.find(text) or text.lower() in w.turn.question.lower()):
                hits += 1
                first = first or w
            elif text and view.find(text, QTextDocument.FindFlag.FindBackward):
                hits += 1
        if first is not None:
            self._follow = False
            self.ensureWidgetVisible(first)
        return hits

    def _add_widget(self, index: int) -> TurnWidget:
        widget = TurnWidget(self.turns[index], self._checker, self._inner)
        widget.citation_clicked.connect(self.citation_clicked)
        widget.link_requested.connect(self.link_requested)
        widget.regenerate_requested.connect(lambda i=index: self.regenerate_requested.emit(i))
        widget.continue_requested.connect(lambda i=index: self.continue_requested.emit(i))
        widget.located_found.connect(lambda located, i=index: self.located_found.emit(i, located))
        # Insert in turn order, before the stretch.
        later = [i for i in self.widgets if i > index]
        position = self._layout.indexOf(self.widgets[min(later)]) if later else self._layout.count() - 1
        self._layout.insertWidget(position, widget)
        self.widgets[index] = widget
        return widget

    @Slot()
    def on_earlier_button_clicked(self) -> None:
        start = max(0, self._first_shown - VISIBLE_TURNS)
        self._follow = False
        for i in range(self._first_shown - 1, start - 1, -1):
            self._add_widget(i)
        self._first_shown = start
        self.earlier_button.setVisible(start > 0)

    def _stick_to_bottom(self, _low: int, high: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(high)

    def scroll_to_end(self) -> None:
        self._follow = True
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
