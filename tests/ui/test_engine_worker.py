"""EngineWorker with a fake backend: thread ownership, coalescing, cancel, stale ids, errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    BackendInfo,
    CancelCheck,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    Turn,
    Usage,
)
from longdesk.engine.backends.local import LocalSettings
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.formats import text_document
from longdesk.engine.corpus.model import Corpus
from longdesk.ui.workers.engine_worker import (
    STREAM_INTERVAL_S,
    AskQuestion,
    EngineController,
    LoadModel,
    PlanCorpus,
    _Coalescer,
)

pytestmark = pytest.mark.gui


class FakeBackend:
    """Follows the Backend protocol: words as tokens, a fixed pace, a cancel check per token."""

    def __init__(self, tokens: int = 200, pace_s: float = 0.002) -> None:
        self.tokens = tokens
        self.pace_s = pace_s
        self.threads: set[int] = set()
        self.reads = 0
        self.closed = False

    def _mark(self) -> None:
        assert threading.current_thread() is not threading.main_thread()
        self.threads.add(threading.get_ident())

    def describe(self) -> BackendInfo:
        self._mark()
        return BackendInfo(name="fake", where="local", context_window=8192)

    def count_tokens(self, text: str) -> int:
        self._mark()
        return len(text.split())

    def read(self, plan: ContextPlan, on_event: EventSink, cancelled: CancelCheck) -> Reading:
        self._mark()
        self.reads += 1
        for done in range(0, 1001, 100):
            if cancelled():
                raise BackendError(FailureKind.CANCELLED, "cancelled")
            on_event(Progress("prefill", done, 1000, 1000.0, 0.0))
        return Reading(prefix_tokens=plan.prefix_tokens)

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        self._mark()
        if question == "boom":
            raise RuntimeError("kaput")
        produced = 0
        for _ in range(self.tokens):
            if cancelled():
                on_event(Usage(1, 0, produced, 1.0))
                return Finished("cancelled")
            time.sleep(self.pace_s)
            on_event(AnswerDelta("w "))
            produced += 1
        on_event(Usage(1, 0, produced, 1.0))
        return Finished("stop")

    def close(self) -> None:
        self.closed = True


def _controller(qtbot: QtBot, backend: FakeBackend) -> EngineController:
    ctl = EngineController(lambda _p, _s: backend)
    with qtbot.waitSignal(ctl.model_loaded, timeout=5000):
        ctl.submit(lambda rid: LoadModel(rid, Path("fake.gguf"), LocalSettings()))
    return ctl


def _plan(qtbot: QtBot, ctl: EngineController) -> ContextPlan:
    corpus = Corpus.of([text_document("a.txt", "/a.txt", b"one two three\nfour\n", "D1")])
    with qtbot.waitSignal(ctl.planned, timeout=5000) as got:
        ctl.submit(lambda rid: PlanCorpus(rid, corpus, 64))
    plan = got.args[1]
    assert isinstance(plan, ContextPlan)
    return plan


def test_streamed_text_is_coalesced_to_the_interval_in_order_and_by_kind() -> None:
    """300 tokens 2 ms apart (0.6 s on the coalescer's clock): about 30 emits a second, not 300."""
    now = [100.0]
    emitted: list[tuple[str, str]] = []
    stream = _Coalescer(lambda kind, text: emitted.append((kind, text)), clock=lambda: now[0])
    for i in range(300):
        stream.add("thinking" if i < 30 else "answer", "w ")
        now[0] += 0.002
    stream.flush()
    assert "".join(text for kind, text in emitted if kind == "thinking") == "w " * 30
    assert "".join(text for kind, text in emitted if kind == "answer") == "w " * 270
    kinds = [kind for kind, _ in emitted]
    assert kinds == sorted(kinds, key=lambda k: k == "answer")  # thinking first, never interleaved back
    # One emit at the first token, then one per interval, one for the change of kind and the last.
    assert len(emitted) <= 0.6 / STREAM_INTERVAL_S + 3
    assert len(emitted) >= 0.6 / STREAM_INTERVAL_S - 1  # it does emit while the stream runs


def test_answers_stream_coalesced_from_the_worker_thread(qtbot: QtBot) -> None:
    backend = FakeBackend(tokens=300, pace_s=0.002)
    ctl = _controller(qtbot, backend)
    try:
        plan = _plan(qtbot, ctl)
        assert plan.spans[0].tokens > 0
        chunks: list[str] = []
        ctl.text_streamed.connect(lambda _rid, _kind, text: chunks.append(text))
        with qtbot.waitSignal(ctl.finished, timeout=10_000) as done:
            rid = ctl.submit(lambda r: AskQuestion(r, plan, (), "q", AskOptions()))
        assert done.args == [rid, Finished("stop")]
        assert "".join(chunks) == "w " * 300
        # How often the text may come is _Coalescer's test, on its own clock.
        assert threading.get_ident() not in backend.threads
        assert len(backend.threads) == 1
    finally:
        assert ctl.shutdown()
    assert backend.closed


def test_cancel_stops_mid_answer_and_reading_is_reused(qtbot: QtBot) -> None:
    backend = FakeBackend(tokens=100_000, pace_s=0.001)
    ctl = _controller(qtbot, backend)
    try:
        plan = _plan(qtbot, ctl)
        with qtbot.waitSignal(ctl.text_streamed, timeout=5000):
            rid = ctl.submit(lambda r: AskQuestion(r, plan, (), "q", AskOptions()))
        with qtbot.waitSignal(ctl.finished, timeout=5000) as done:
            ctl.cancel(rid)
        assert done.args == [rid, Finished("cancelled")]
        backend.tokens = 3
        with qtbot.waitSignal(ctl.finished, timeout=5000):
            ctl.submit(lambda r: AskQuestion(r, plan, (), "again", AskOptions()))
        assert backend.reads == 1
    finally:
        assert ctl.shutdown()


def test_errors_are_values(qtbot: QtBot) -> None:
    backend = FakeBackend(tokens=3)
    ctl = _controller(qtbot, backend)
    try:
        plan = _plan(qtbot, ctl)
        with qtbot.waitSignal(ctl.failed, timeout=5000) as got:
            rid = ctl.submit(lambda r: AskQuestion(r, plan, (), "boom", AskOptions()))
        assert got.args[0] == rid
        failure = got.args[1]
        assert isinstance(failure, Failed)
        assert failure.kind is FailureKind.INTERNAL
        assert "kaput" in failure.message
        # The worker is still alive afterwards.
        with qtbot.waitSignal(ctl.finished, timeout=5000):
            ctl.submit(lambda r: AskQuestion(r, plan, (), "fine", AskOptions()))
    finally:
        assert ctl.shutdown()


def test_a_request_cancelled_while_queued_never_runs(qtbot: QtBot) -> None:
    backend = FakeBackend(tokens=100_000, pace_s=0.001)
    ctl = _controller(qtbot, backend)
    try:
        plan = _plan(qtbot, ctl)
        with qtbot.waitSignal(ctl.text_streamed, timeout=5000):
            first = ctl.submit(lambda r: AskQuestion(r, plan, (), "q", AskOptions()))
        second = ctl.submit(lambda r: AskQuestion(r, plan, (), "q2", AskOptions()))
        ctl.cancel(second)
        failures: list[object] = []
        ctl.failed.connect(lambda rid, f: failures.append((rid, f)))
        with qtbot.waitSignal(ctl.failed, timeout=5000):
            ctl.cancel(first)
        assert failures[0][0] == second
        assert "before it started" in failures[0][1].message
    finally:
        assert ctl.shutdown()


def test_a_long_count_stops_on_cancel(qtbot: QtBot) -> None:
    class HeldCounter(FakeBackend):
        """Counts five documents, then waits (on the worker thread) until the test lets it go."""

        def __init__(self) -> None:
            super().__init__()
            self.counted = 0
            self.release = threading.Event()

        def count_tokens(self, text: str) -> int:
            self.counted += 1
            if self.counted == 5:
                self.release.wait(10)
            return super().count_tokens(text)

    backend = HeldCounter()
    ctl = _controller(qtbot, backend)
    try:
        docs = [
            text_document(f"d{i}.txt", f"/d{i}.txt", b"some words here\n", f"D{i:05d}") for i in range(2000)
        ]
        corpus = Corpus.of(docs)
        rid = ctl.submit(lambda r: PlanCorpus(r, corpus, 64))
        qtbot.waitUntil(lambda: backend.counted >= 5, timeout=5000)  # counting has begun
        with qtbot.waitSignal(ctl.failed, timeout=5000) as got:
            ctl.cancel(rid)
            backend.release.set()
        assert got.args[0] == rid
        assert got.args[1].kind is FailureKind.CANCELLED
        assert "cancelled while counting (5 documents counted)" in got.args[1].message
        assert backend.counted == 5  # not one document more after the cancel
    finally:
        backend.release.set()
        assert ctl.shutdown()
