"""The answer guard: stop sequences, and a stop (never shown) when the model repeats the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdesk.engine.backends.base import AnswerDelta, AskOptions, Event, Finished, Usage
from longdesk.engine.backends.local import LocalBackend, LocalSettings
from longdesk.engine.context.pack import default_instructions, pack
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.models.answer_guard import RUN_WORDS, AnswerGuard, GuardStop

CONTRACT = default_instructions()


def _stream(guard: AnswerGuard, text: str, step: int = 3) -> str:
    shown = "".join(guard.feed(text[i : i + step]) for i in range(0, len(text), step))
    return shown + guard.flush()


def test_a_plain_answer_passes_whole_and_its_leading_space_goes() -> None:
    guard = AnswerGuard(CONTRACT)
    answer = "The keeper is Tobias Venn [D1, line 1]. The documents do not contain his age."
    assert _stream(guard, "  " + answer) == answer
    assert guard.stopped is None


def test_a_stop_sequence_ends_the_answer_and_is_not_shown() -> None:
    guard = AnswerGuard("", ("\n", "Question:"))
    assert _stream(guard, " Tobias Venn.\nQuestion: Who else?\nAnswer:") == "Tobias Venn."
    assert guard.stopped is GuardStop.STOP
    guard = AnswerGuard("", ("\n", "Question:"))
    assert _stream(guard, "Question: Who keeps the lighthouse?") == ""
    assert guard.stopped is GuardStop.STOP


def test_repeating_the_instructions_stops_and_none_of_them_is_shown() -> None:
    guard = AnswerGuard(CONTRACT)
    shown = _stream(guard, "Sure. " + CONTRACT)
    assert guard.stopped is GuardStop.REPEATED
    assert shown == "Sure."
    guard = AnswerGuard(CONTRACT)
    assert _stream(guard, CONTRACT, step=1) == ""  # a character at a time, from the first word
    assert guard.stopped is GuardStop.REPEATED


def test_corpus_markup_stops_the_answer() -> None:
    for echo in ('<doc id="D1" name="a.txt" kind="text">', "<L11>\nmore", "</doc>", "<v Genesis 1>\n1 In"):
        guard = AnswerGuard(CONTRACT)
        shown = _stream(guard, "Tobias Venn. " + echo)
        assert guard.stopped is GuardStop.REPEATED, echo
        assert shown == "Tobias Venn.", echo


def test_an_answer_that_quotes_its_line_keeps_the_line_but_not_the_marker() -> None:
    guard = AnswerGuard("", ("\n", "Question:"))
    assert _stream(guard, " <L12> def iterdump(connection):\n<L13>", step=2) == "def iterdump(connection):"
    assert guard.stopped is GuardStop.STOP
    # Only the opening marker goes: a second one is the model copying the source.
    guard = AnswerGuard(CONTRACT)
    assert _stream(guard, "<p3> The harbour floods at noon. <p4> At dusk") == "The harbour floods at noon."
    assert guard.stopped is GuardStop.REPEATED


def test_the_model_repeating_its_own_lines_stops() -> None:
    guard = AnswerGuard(CONTRACT)
    line = "The keeper of the lighthouse is a man of the island.\n"
    shown = _stream(guard, "Answer first.\n" + line * 5)
    assert guard.stopped is GuardStop.REPEATED
    assert shown == "Answer first.\n" + line.strip()
    guard = AnswerGuard(CONTRACT)
    shown = _stream(guard, "Venn, " + "Tobias Venn, " * 20)
    assert guard.stopped is GuardStop.REPEATED
    assert shown.count("Tobias Venn") <= 6  # a loop is seen for at most 12 words, then ends
    guard = AnswerGuard(CONTRACT)  # a short repetition in a real sentence is fine
    assert _stream(guard, "It is very, very, very old.") == "It is very, very, very old."


def test_a_short_phrase_of_the_contract_is_not_a_repeat() -> None:
    phrase = "The documents do not contain the answer"
    assert len(phrase.split()) < RUN_WORDS
    guard = AnswerGuard(CONTRACT)
    assert _stream(guard, phrase + ".") == phrase + "."
    assert guard.stopped is None


@pytest.mark.model
def test_generation_stops_when_the_model_repeats_the_source(default_model: Path, tmp_path: Path) -> None:
    """The bug of the issue, on purpose: the base model in chat turns after the contract."""
    (tmp_path / "keeper.txt").write_text("The lighthouse keeper on Skerry Island is named Tobias Venn.\n")
    settings = LocalSettings(n_ctx=2048, n_threads=2, checkpoint_interval_s=0, prompt_format="chat")
    backend = LocalBackend(default_model, settings)
    try:
        plan = pack(load_sources([tmp_path]), backend.count_tokens, 2048)
        reading = backend.read(plan, lambda _e: None, lambda: False)
        events: list[Event] = []
        options = AskOptions(max_output_tokens=400)
        result = backend.ask(reading, (), "Who keeps the lighthouse?", options, events.append, lambda: False)
    finally:
        backend.close()
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert result == Finished("repeated"), answer
    assert usage.output_tokens < 100  # not the 400 allowed: the guard ended it
    words = CONTRACT.split()
    runs = {" ".join(words[i : i + 6]) for i in range(len(words) - 5)}
    assert not any(run in answer for run in runs)
    assert "<doc" not in answer
    assert "</doc>" not in answer
