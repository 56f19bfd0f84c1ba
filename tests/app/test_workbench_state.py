"""The workbench state without Qt or a model: each operation's reported changes and the state after it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longdesk.app.sessions import Session, SessionError, SessionStore
from longdesk.app.settings import Settings
from longdesk.app.workbench import Change, Workbench
from longdesk.app.workspace import doc_records
from longdesk.engine.backends.base import BackendInfo
from longdesk.engine.context.plan import Budget, ContextPlan, DocumentSpan
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from longdesk.engine.events import FailureKind, ThinkingMode, Usage, Where

LOCAL = BackendInfo("tiny", Where.LOCAL, 4096)
HOSTED = BackendInfo("deepseek-flash", Where.HOSTED, 1_000_000, endpoint="https://api.example")


def _corpus(tmp_path: Path) -> Corpus:
    docs = tuple(
        Document(
            f"D{n}",
            f"doc{n}.txt",
            str(tmp_path / f"doc{n}.txt"),
            DocumentKind.TEXT,
            "0" * 64,
            (Segment(Anchor(AnchorKind.LINES, 1, 2), f"line one of {n}\nline two of {n}\n"),),
        )
        for n in (1, 2)
    )
    return Corpus(docs)


def _plan(tokens: tuple[int, int] = (30, 50)) -> ContextPlan:
    spans = (
        DocumentSpan("D1", "doc1.txt", 0, 10, tokens[0]),
        DocumentSpan("D2", "doc2.txt", 10, 20, tokens[1]),
    )
    return ContextPlan("Cite.", ("<corpus>", "</corpus>"), 100, spans, Budget(4096, 100))


class Recorder:
    def __init__(self, bench: Workbench) -> None:
        self.seen: list[Change] = []
        bench.subscribe(self.seen.append)


@pytest.fixture
def bench() -> Workbench:
    return Workbench(Settings(max_output_tokens=64))


def _read(bench: Workbench, tmp_path: Path) -> Corpus:
    """Sources added, read and counted, with the local model loaded."""
    corpus = _corpus(tmp_path)
    bench.add_sources([tmp_path / "doc1.txt", tmp_path / "doc2.txt"])
    bench.set_corpus(corpus, doc_records(corpus, {}, ()))
    bench.set_backend(LOCAL)
    bench.apply_plan(_plan())
    return corpus


def test_the_state_imports_neither_qt_nor_the_ui() -> None:
    code = (
        "import sys, longdesk.app.workbench; "
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'longdesk.ui'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adding_sources_reports_sources_once_and_ignores_duplicates(bench: Workbench, tmp_path: Path) -> None:
    rec = Recorder(bench)
    a = tmp_path / "a.txt"
    assert bench.add_sources([a]) == Change.SOURCES
    assert bench.session.sources == (str(a.resolve()),)
    assert bench.has_work
    assert bench.add_sources([a]) == Change.NONE  # already there: nothing to redraw
    assert rec.seen == [Change.SOURCES]


def test_reading_then_applying_a_plan_sets_the_counts(bench: Workbench, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    bench.add_sources([tmp_path / "doc1.txt"])
    assert bench.apply_plan(_plan()) == Change.NONE  # no corpus yet: a stale plan is dropped
    assert bench.plan is None

    change = bench.set_corpus(corpus, doc_records(corpus, {}, ()))
    assert change == Change.CORPUS | Change.SOURCES
    assert bench.corpus is corpus
    assert [d.tokens for d in bench.session.documents] == [0, 0]

    plan = _plan()
    change = bench.apply_plan(plan)
    assert change == Change.PLAN | Change.SOURCES
    assert bench.plan is plan
    assert bench.last_prefix == 100
    assert [d.tokens for d in bench.session.documents] == [30, 50]
    # The same counts again: the plan changed, the document list did not.
    assert bench.apply_plan(_plan()) == Change.PLAN

    assert bench.clear_plan() == Change.PLAN
    assert bench.plan is None
    assert bench.last_prefix == 100  # the previous count stays on show until the new one
    assert bench.clear_plan() == Change.NONE


def test_leaving_a_document_out(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    assert bench.set_excluded(["doc2.txt"]) == Change.SOURCES
    assert bench.session.excluded == ("doc2.txt",)
    assert [d.included for d in bench.session.documents] == [True, False]
    assert bench.set_excluded(["doc2.txt"]) == Change.NONE


def test_a_full_turn_begin_append_usage_end(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    rec = Recorder(bench)
    change = bench.begin_turn("When does the harbour flood?", "tiny")
    assert change == Change.TURNS | Change.META  # the first question names the session
    assert bench.session.title == "When does the harbour flood?"
    assert bench.streaming
    assert bench.streaming_index == 0
    assert bench.session.turns[0].answer == ""
    assert bench.session.turns[0].where == Where.LOCAL

    assert bench.append_delta("thinking", "Tides… ") == Change.STREAM
    assert bench.append_delta("answer", "At noon ") == Change.STREAM
    assert bench.append_delta("answer", "[D1, line 2].") == Change.STREAM
    assert bench.append_delta("answer", "") == Change.NONE
    assert bench.record_usage(Usage(120, 100, 7, seconds=0.5)) == Change.TURNS

    assert bench.end_turn("stop") == Change.TURNS
    assert not bench.streaming
    turn = bench.session.turns[0]
    assert (turn.thinking, turn.answer, turn.stop_reason) == ("Tides… ", "At noon [D1, line 2].", "stop")
    assert (turn.prompt_tokens, turn.cached_tokens, turn.output_tokens) == (120, 100, 7)
    assert bench.append_delta("answer", "late") == Change.NONE  # nothing streams any more
    assert bench.history()[0].answer == "At noon [D1, line 2]."
    assert rec.seen[0] == Change.TURNS | Change.META
    assert rec.seen[-1] == Change.TURNS

    # A second question keeps the title; regenerating it replaces the last turn.
    assert bench.begin_turn("And at dusk?", "tiny") == Change.TURNS
    bench.end_turn("stop")
    assert bench.begin_turn("And at dusk?", "tiny", replace_last=True) == Change.TURNS
    assert len(bench.session.turns) == 2
    assert bench.streaming_index == 1
    assert bench.history(bench.streaming_index) == bench.history()[:1]


def test_a_cancel_mid_turn_keeps_the_partial_answer(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    bench.begin_turn("Long question", "tiny")
    bench.append_delta("answer", "The first half")
    assert bench.fail_turn(FailureKind.CANCELLED, "", partial=True) == Change.TURNS
    turn = bench.session.turns[0]
    assert (turn.answer, turn.stop_reason) == ("The first half", "cancelled")
    assert not bench.streaming


def test_a_cut_stream_is_incomplete_and_can_be_continued(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    bench.set_where(Where.HOSTED, HOSTED)
    bench.apply_plan(_plan())
    bench.begin_turn("Q", "deepseek-flash")
    bench.append_delta("answer", "Part one")
    bench.record_usage(Usage(200, 0, 10, seconds=1.0, cost=0.01, currency="USD"))
    assert bench.fail_turn(FailureKind.NETWORK, "connection dropped", partial=True) == Change.TURNS
    turn = bench.session.turns[0]
    assert (turn.answer, turn.stop_reason, turn.where) == ("Part one", "incomplete", Where.HOSTED)

    assert bench.resume_turn(0) == Change.TURNS
    assert bench.session.turns[0].stop_reason == "stop"
    assert bench.history(bench.streaming_index) == ()
    bench.append_delta("answer", ", part two")
    bench.record_usage(Usage(210, 200, 5, seconds=0.5, cost=0.002, currency="USD"))
    bench.end_turn("stop")
    turn = bench.session.turns[0]
    assert turn.answer == "Part one, part two"
    assert (turn.output_tokens, turn.seconds) == (15, 1.5)  # the continuation adds to the first part
    assert turn.cost == pytest.approx(0.012)


def test_a_failure_before_any_answer_is_shown_as_the_message(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    bench.begin_turn("Q", "tiny")
    bench.append_delta("thinking", "reasoning only")
    assert bench.fail_turn(FailureKind.MEMORY, "out of memory", partial=True) == Change.TURNS
    turn = bench.session.turns[0]
    assert (turn.answer, turn.stop_reason) == ("*out of memory*", "failed")
    assert bench.history() == ()  # a failed turn is not shown to the model again


def test_switching_where_it_runs_clears_the_plan(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    change = bench.set_where(Where.HOSTED, None)
    assert change == Change.WHERE | Change.BACKEND | Change.PLAN
    assert (bench.where, bench.info, bench.plan) == (Where.HOSTED, None, None)
    assert bench.set_backend(HOSTED) == Change.BACKEND
    assert bench.set_backend(HOSTED) == Change.NONE
    assert bench.set_where(Where.HOSTED, HOSTED) == Change.NONE
    change = bench.set_where(Where.LOCAL, LOCAL)
    assert change == Change.WHERE | Change.BACKEND
    assert (bench.where, bench.info) == (Where.LOCAL, LOCAL)
    assert bench.corpus is not None  # the sources stay read


def test_settings_and_thinking_reach_the_ask_options(bench: Workbench) -> None:
    assert bench.set_thinking(ThinkingMode.HIGH) == Change.THINKING
    assert bench.set_thinking(ThinkingMode.HIGH) == Change.NONE
    assert bench.set_settings(Settings(max_output_tokens=99)) == Change.SETTINGS
    assert bench.set_settings(Settings(max_output_tokens=99)) == Change.NONE
    options = bench.ask_options()
    assert (options.thinking, options.max_output_tokens) == (ThinkingMode.HIGH, 99)


def test_a_waiting_question_is_taken_once(bench: Workbench) -> None:
    rec = Recorder(bench)
    assert bench.set_pending("Q?") == Change.PENDING
    assert bench.has_work
    assert bench.take_pending() == "Q?"
    assert bench.take_pending() is None
    assert rec.seen == [Change.PENDING, Change.PENDING]


def test_located_citations_are_saved_with_the_turn(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    bench.begin_turn("Who mends the nets?", "tiny")
    bench.append_delta("answer", "The fishermen.")
    assert bench.save_located(0, ["[D1, line 2]"]) == Change.NONE  # still streaming: not final yet
    bench.end_turn("stop")
    rec = Recorder(bench)
    assert bench.save_located(0, ["[D1, line 2]"]) == Change.LOCATED
    assert bench.session.turns[0].located == ("[D1, line 2]",)
    assert bench.save_located(0, ("[D1, line 2]",)) == Change.NONE  # the same places: no save
    assert bench.save_located(5, ["[D1, line 1]"]) == Change.NONE
    assert rec.seen == [Change.LOCATED]

    store = SessionStore(tmp_path / "sessions")
    store.save(bench.session)
    assert store.load(bench.session.session_id).turns[0].located == ("[D1, line 2]",)
    # A turn with none is saved as before (no key), and a damaged list is refused.
    bench.begin_turn("And the lamps?", "tiny")
    bench.end_turn("stop")
    saved = json.loads(bench.session.to_json())["turns"]
    assert [("located" in t) for t in saved] == [True, False]
    saved[0]["located"] = "[D1, line 2]"
    with pytest.raises(SessionError, match="located"):
        Session.from_json(json.dumps({"session_id": "s", "turns": saved}))


def test_sessions_threads_and_renames(bench: Workbench, tmp_path: Path) -> None:
    _read(bench, tmp_path)
    bench.begin_turn("Q", "tiny")
    bench.end_turn("stop")
    old = bench.session

    change = bench.new_thread()
    assert Change.SESSION in change
    assert bench.session.session_id != old.session_id
    assert (bench.session.sources, bench.session.documents) == (old.sources, old.documents)
    assert bench.session.turns == ()
    assert bench.plan is not None  # the corpus stays read and counted

    assert bench.rename(bench.session.session_id, "  Tides   and nets ") == Change.META
    assert bench.session.title == "Tides and nets"
    assert bench.rename("another", "x") == Change.NONE

    change = bench.open_session(old, keep_corpus=True)
    assert Change.SESSION in change
    assert Change.CORPUS not in change
    assert bench.session is old
    assert bench.corpus is not None

    change = bench.new_session()
    assert Change.SESSION | Change.CORPUS | Change.PLAN in change
    assert (bench.corpus, bench.plan, bench.last_prefix) == (None, None, 0)
    assert bench.session.sources == ()
    assert not bench.has_work
    assert bench.session.title == Session.new().title
