"""The workbench state: one Qt-free owner of what the window shows, whose operations say what changed.

A ``Workbench`` holds the session (sources, documents, conversation), the corpus read from the
sources, the plan counted for the active backend, that backend's info, where it runs, the
settings, the thinking mode and the answer in flight. The UI flows change it only through its
operations; each returns a ``Change`` (the parts that changed, ``Change.NONE`` when nothing did)
and reports the same value to every subscriber, so the window redraws only those parts (as
Anki's ``OpChanges`` and napari's events do). Nothing here knows about Qt, threads or models:
the ask/answer state machine is tested without either (tests/app/test_workbench_state.py).

Design: architecture.md §4 (UI flows get the state, never the window) and style.md §6.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from longdesk.app.sessions import DocRecord, Session, TurnRecord, title_from_question
from longdesk.app.settings import Settings
from longdesk.app.workspace import add_sources, history, plan_tokens, with_tokens
from longdesk.engine.backends.base import AskOptions, BackendInfo, Turn, Usage
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import FailureKind, StopReason, ThinkingMode, Where

NEW_TITLE = "New session"


class Change(enum.Flag):
    """What an operation changed; views redraw the parts named."""

    NONE = 0
    SESSION = enum.auto()  # another session (or thread) as a whole: every view starts again
    SOURCES = enum.auto()  # the session's sources, its document list or what is left out
    CORPUS = enum.auto()  # the corpus read from the sources (or forgotten)
    PLAN = enum.auto()  # the counted plan (cleared while counting)
    BACKEND = enum.auto()  # the active backend's info
    WHERE = enum.auto()  # local or hosted
    TURNS = enum.auto()  # a turn added, removed, ended, or its figures changed
    STREAM = enum.auto()  # more text of the answer in flight
    LOCATED = enum.auto()  # located citations saved on a turn
    META = enum.auto()  # the session's title or model
    PENDING = enum.auto()  # the question waiting for the plan
    SETTINGS = enum.auto()
    THINKING = enum.auto()
    ALL = (
        SESSION | SOURCES | CORPUS | PLAN | BACKEND | WHERE | TURNS | STREAM | LOCATED | META | PENDING
        | SETTINGS | THINKING
    )  # fmt: skip


Listener = Callable[[Change], None]


class Workbench:
    """The window's state and the only way to change it.

    Attributes (read them freely; change them only through the methods):
        session: the Session shown (sources, documents, turns).
        corpus: the Corpus read from the sources; None until read, or after they changed.
        plan: the ContextPlan of the corpus for the active backend; None while counting.
        last_prefix: the last plan's prefix tokens, kept while a new count runs.
        info: the active backend's BackendInfo; None while it loads or connects.
        where: where the active backend runs.
        settings: the user's settings.
        thinking: the thinking mode chosen.
        pending_question: a question asked before the plan was ready, sent once it is.
        streaming_index: the turn an answer streams into; -1 when none does.
    """

    def __init__(self, settings: Settings | None = None, session: Session | None = None) -> None:
        self.session = session or Session.new()
        self.corpus: Corpus | None = None
        self.plan: ContextPlan | None = None
        self.last_prefix = 0
        self.info: BackendInfo | None = None
        self.where = Where.LOCAL
        self.settings = settings or Settings()
        self.thinking = ThinkingMode.OFF
        self.pending_question: str | None = None
        self.streaming_index = -1
        self._resuming = False
        self._listeners: list[Listener] = []

    # ---------------------------------------------------------------- subscribers
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(change)`` after every operation that changed something."""
        self._listeners.append(listener)

    def _report(self, change: Change) -> Change:
        if change:
            for listener in list(self._listeners):
                listener(change)
        return change

    # ---------------------------------------------------------------- derived values
    @property
    def streaming(self) -> bool:
        return self.streaming_index >= 0

    @property
    def has_work(self) -> bool:
        """Sources, turns or a waiting question: the work page shows, not the welcome."""
        return bool(self.session.sources or self.session.turns or self.pending_question is not None)

    def streaming_turn(self) -> TurnRecord | None:
        index = self.streaming_index
        return self.session.turns[index] if 0 <= index < len(self.session.turns) else None

    def ask_options(self) -> AskOptions:
        return AskOptions(thinking=self.thinking, max_output_tokens=self.settings.max_output_tokens)

    def history(self, before: int | None = None) -> tuple[Turn, ...]:
        """The turns the model sees before turn ``before`` (all of them when None)."""
        turns = self.session.turns if before is None else self.session.turns[:before]
        return history(turns)

    # ---------------------------------------------------------------- settings and choices
    def set_settings(self, settings: Settings) -> Change:
        if settings == self.settings:
            return Change.NONE
        self.settings = settings
        return self._report(Change.SETTINGS)

    def set_thinking(self, mode: ThinkingMode) -> Change:
        if mode is self.thinking:
            return Change.NONE
        self.thinking = mode
        return self._report(Change.THINKING)

    def set_model(self, path: Path) -> Change:
        """The session answers with the model at ``path`` (recorded with the session)."""
        if self.session.model == str(path):
            return Change.NONE
        self.session = dataclasses.replace(self.session, model=str(path))
        return self._report(Change.META)

    # ---------------------------------------------------------------- sources, corpus and plan
    def add_sources(self, paths: Iterable[Path]) -> Change:
        """Append ``paths`` to the sources (no duplicates). The corpus is read again by the caller."""
        session = add_sources(self.session, paths)
        if session.sources == self.session.sources:
            return Change.NONE
        self.session = session
        return self._report(Change.SOURCES)

    def set_corpus(self, corpus: Corpus, records: Sequence[DocRecord]) -> Change:
        """The sources were read: the corpus and its document list."""
        self.corpus = corpus
        self.session = dataclasses.replace(self.session, documents=tuple(records))
        return self._report(Change.CORPUS | Change.SOURCES)

    def set_excluded(self, excluded: Iterable[str]) -> Change:
        """Leave the documents named ``excluded`` out of the context (and include the rest)."""
        names = tuple(sorted(set(excluded)))
        docs = tuple(dataclasses.replace(d, included=d.name not in names) for d in self.session.documents)
        if names == self.session.excluded and docs == self.session.documents:
            return Change.NONE
        self.session = dataclasses.replace(self.session, excluded=names, documents=docs)
        return self._report(Change.SOURCES)

    def forget_corpus(self) -> Change:
        """The sources changed wholesale: nothing read or counted is kept."""
        if self.corpus is None and self.plan is None and not self.last_prefix:
            return Change.NONE
        self.corpus = None
        self.plan = None
        self.last_prefix = 0
        return self._report(Change.CORPUS | Change.PLAN)

    def clear_plan(self) -> Change:
        """A new count began (or the backend changed): the old plan no longer holds."""
        if self.plan is None:
            return Change.NONE
        self.plan = None
        return self._report(Change.PLAN)

    def apply_plan(self, plan: ContextPlan) -> Change:
        """The corpus was counted: the plan, and each document's tokens in the list."""
        if self.corpus is None:
            return Change.NONE
        self.plan = plan
        self.last_prefix = plan.prefix_tokens
        records = with_tokens(self.session.documents, plan_tokens(plan))
        change = Change.PLAN
        if records != self.session.documents:
            self.session = dataclasses.replace(self.session, documents=records)
            change |= Change.SOURCES
        return self._report(change)

    # ---------------------------------------------------------------- the backend
    def set_backend(self, info: BackendInfo | None) -> Change:
        """The active backend is ready (info) or loading (None)."""
        if info == self.info:
            return Change.NONE
        self.info = info
        return self._report(Change.BACKEND)

    def set_where(self, where: Where, info: BackendInfo | None) -> Change:
        """Answer with the backend at ``where`` (its info when already known); the plan is
        counted again for it."""
        change = Change.NONE
        if where is not self.where:
            self.where = where
            change |= Change.WHERE
        if info != self.info:
            self.info = info
            change |= Change.BACKEND
        if self.plan is not None:
            self.plan = None
            change |= Change.PLAN
        return self._report(change)

    # ---------------------------------------------------------------- asking and answering
    def set_pending(self, question: str | None) -> Change:
        if question == self.pending_question:
            return Change.NONE
        self.pending_question = question
        return self._report(Change.PENDING)

    def take_pending(self) -> str | None:
        """The waiting question, no longer waiting."""
        question = self.pending_question
        self.set_pending(None)
        return question

    def begin_turn(self, question: str, model: str, *, replace_last: bool = False) -> Change:
        """A new turn for ``question`` that the answer streams into (the last one replaced when
        regenerating it). The first question names a new session."""
        turns = list(self.session.turns)
        if replace_last and turns:
            turns.pop()
        record = TurnRecord(question, "", model=model, created=time.time(), where=self.where)
        change = Change.TURNS
        title = self.session.title
        if not turns and title == NEW_TITLE:
            title = title_from_question(question)
            change |= Change.META
        self.session = dataclasses.replace(self.session, turns=(*turns, record), title=title)
        self.streaming_index = len(turns)
        self._resuming = False
        return self._report(change)

    def resume_turn(self, index: int) -> Change:
        """Continue the answer of turn ``index`` (a cut stream); its usage adds to what it had."""
        if not 0 <= index < len(self.session.turns):
            return Change.NONE
        self.streaming_index = index
        self._resuming = True
        return self._report(self._update(index, stop_reason=StopReason.STOP.value) | Change.TURNS)

    def append_delta(self, kind: str, text: str) -> Change:
        """More of the answer in flight: ``kind`` is "thinking" or "answer"."""
        turn = self.streaming_turn()
        if turn is None or not text:
            return Change.NONE
        if kind == "thinking":
            change = self._update(self.streaming_index, thinking=turn.thinking + text)
        else:
            change = self._update(self.streaming_index, answer=turn.answer + text)
        return self._report(change and Change.STREAM)

    def record_usage(self, usage: Usage) -> Change:
        """The answer's token figures (added to the earlier ones of a continued answer)."""
        before = self.streaming_turn() if self._resuming else None
        if self.streaming_turn() is None:
            return Change.NONE
        cost = usage.cost
        if before is not None and before.cost is not None and cost is not None:
            cost += before.cost
        change = self._update(
            self.streaming_index,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens + (before.output_tokens if before else 0),
            seconds=usage.seconds + (before.seconds if before else 0.0),
            cost=cost,
            currency=usage.currency,
        )
        return self._report(change)

    def end_turn(self, stop_reason: str, message: str = "") -> Change:
        """The answer ended: the turn keeps what arrived (a message stands in for no answer)."""
        index = self.streaming_index
        self.streaming_index = -1
        self._resuming = False
        if not 0 <= index < len(self.session.turns):
            return self._report(Change.TURNS) if index >= 0 else Change.NONE
        turn = self.session.turns[index]
        answer = f"*{message}*" if message and not turn.answer else turn.answer
        self._update(index, answer=answer, stop_reason=str(stop_reason))
        return self._report(Change.TURNS)

    def fail_turn(self, kind: FailureKind, message: str, *, partial: bool) -> Change:
        """The answer failed: stopped by the user it is "cancelled"; a cut stream that brought
        part of the answer is "incomplete" (it can be continued); else "failed"."""
        if kind is FailureKind.CANCELLED:
            return self.end_turn(StopReason.CANCELLED, message)
        turn = self.streaming_turn()
        kept = partial and turn is not None and bool(turn.answer)
        return self.end_turn(StopReason.INCOMPLETE if kept else StopReason.FAILED, message)

    def save_located(self, index: int, located: Sequence[str]) -> Change:
        """Keep the located citations found for the finished answer of turn ``index``."""
        if not 0 <= index < len(self.session.turns) or index == self.streaming_index:
            return Change.NONE
        return self._report(self._update(index, located=tuple(located)) and Change.LOCATED)

    def _update(self, index: int, **changes: object) -> Change:
        turns = list(self.session.turns)
        new = dataclasses.replace(turns[index], **changes)  # type: ignore[arg-type]
        if new == turns[index]:
            return Change.NONE
        turns[index] = new
        self.session = dataclasses.replace(self.session, turns=tuple(turns))
        return Change.TURNS

    # ---------------------------------------------------------------- sessions
    def open_session(self, session: Session, *, keep_corpus: bool) -> Change:
        """Show ``session``; the corpus (and its plan) stay only when ``keep_corpus``."""
        self.session = session
        self.streaming_index = -1
        self._resuming = False
        change = Change.SESSION | Change.SOURCES | Change.TURNS | Change.META
        if not keep_corpus and (self.corpus is not None or self.plan is not None or self.last_prefix):
            self.corpus = None
            self.plan = None
            self.last_prefix = 0
            change |= Change.CORPUS | Change.PLAN
        return self._report(change)

    def new_session(self) -> Change:
        return self.open_session(Session.new(), keep_corpus=False)

    def new_thread(self) -> Change:
        """A new conversation on the same sources (the corpus stays read)."""
        old = self.session
        fresh = Session.new(sources=old.sources)
        self.session = dataclasses.replace(
            fresh, excluded=old.excluded, documents=old.documents, model=old.model
        )
        self.streaming_index = -1
        return self._report(Change.SESSION | Change.TURNS | Change.META)

    def rename(self, session_id: str, title: str) -> Change:
        """Rename the shown session when it is ``session_id`` (the store is the caller's)."""
        if session_id != self.session.session_id:
            return Change.NONE
        title = " ".join(title.split()) or self.session.title
        if title == self.session.title:
            return Change.NONE
        self.session = dataclasses.replace(self.session, title=title)
        return self._report(Change.META)
