"""DeepSeek's own behaviour through the hosted backend, against the emulating server on 127.0.0.1:
thinking text apart from the answer, cache hits, cost, each error code, keep-alives, a cut stream."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    Failed,
    FailureKind,
    Finished,
    Reading,
    ThinkingDelta,
    ThinkingMode,
    Usage,
)
from longdesk.engine.backends.hosted import CONTINUE_PROMPT, HostedBackend
from longdesk.engine.backends.hosted_errors import RetryPolicy
from longdesk.engine.backends.hosted_presets import make_config
from longdesk.engine.backends.hosted_prices import load_price_table
from tests.hosted.conftest import kitchen_corpus, plan_for
from tests.hosted.deepseek_emulator import Emulator

pytestmark = pytest.mark.network

OFF_PEAK = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # a Saturday
PEAK = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # Monday 02:00 UTC


def backend_for(url: str, emu: Emulator, when: dt.datetime = OFF_PEAK, **extra: object) -> HostedBackend:
    config = make_config("deepseek", base_url=url, api_key=emu.api_key, **extra)
    return HostedBackend(
        config,
        prices=load_price_table()[0],
        retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.05),
        clock=lambda: when,
    )


def started(backend: HostedBackend) -> Reading:
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    backend.permit(backend.fingerprint(plan))
    return backend.read(plan, lambda _e: None, lambda: False)


def ask(
    backend: HostedBackend, reading: Reading, question: str = "What colour is the kettle?", **opts: object
) -> tuple[Finished | Failed, list[Event]]:
    events: list[Event] = []
    result = backend.ask(reading, (), question, AskOptions(**opts), events.append, lambda: False)  # type: ignore[arg-type]
    return result, events


def text_of(events: list[Event], kind: type) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


def test_thinking_streams_apart_from_the_answer_with_deepseek_parameters(
    emulator: tuple[str, Emulator],
) -> None:
    url, emu = emulator
    backend = backend_for(url, emu)
    reading = started(backend)
    result, events = ask(backend, reading, thinking=ThinkingMode.MAX)
    assert result == Finished("stop")
    assert text_of(events, ThinkingDelta) == emu.thinking_text
    assert text_of(events, AnswerDelta) == emu.answer_text
    first_answer = next(i for i, e in enumerate(events) if isinstance(e, AnswerDelta))
    assert all(not isinstance(e, ThinkingDelta) for e in events[first_answer:])
    sent = emu.requests[-1]
    assert sent["thinking"] == {"type": "enabled"}
    assert sent["reasoning_effort"] == "max"
    assert sent["user_id"] == "longdesk-user"
    assert sent["stream"] is True

    result, events = ask(backend, reading, thinking=ThinkingMode.OFF)
    assert emu.requests[-1]["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in emu.requests[-1]
    assert text_of(events, ThinkingDelta) == ""
    backend.close()


def test_priming_makes_the_first_question_hit_the_cache_and_costs_follow_the_prices(
    emulator: tuple[str, Emulator],
) -> None:
    url, emu = emulator
    backend = backend_for(url, emu, prime_cache=True)
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    backend.permit(backend.fingerprint(plan))
    primed: list[Event] = []
    reading = backend.read(plan, primed.append, lambda: False)
    assert reading.detail["primed"] is True
    priming = emu.requests[0]
    assert priming["max_tokens"] == 1
    assert priming["messages"][-1]["content"] == plan.corpus_text  # ends exactly at the corpus
    prime_usage = next(e for e in primed if isinstance(e, Usage))
    assert prime_usage.cached_tokens == 0

    turns = []
    for q in ("What colour is the kettle?", "Is the oven working?"):
        result, events = ask(backend, reading, q)
        assert result == Finished("stop")
        turns.append(next(e for e in events if isinstance(e, Usage)))
    for usage in turns:
        # The whole priming prompt (system + corpus) is a cache hit for every question.
        assert usage.cached_tokens == prime_usage.prompt_tokens
        assert 0 < usage.prompt_tokens - usage.cached_tokens < 20
        hit, miss = usage.cached_tokens, usage.prompt_tokens - usage.cached_tokens
        expected = (hit * 0.003 + miss * 0.15 + usage.output_tokens * 0.60) / 1e6
        assert usage.cost == pytest.approx(expected)
        assert usage.currency == "USD"
    # The corpus part of every request is byte-identical, the question comes last.
    firsts = [r["messages"][1]["content"] for r in emu.requests]
    assert all(f.startswith(plan.corpus_text) for f in firsts)
    assert [r["messages"][0] for r in emu.requests] == [emu.requests[0]["messages"][0]] * 3
    assert {r["user_id"] for r in emu.requests} == {"longdesk-user"}
    assert backend.totals.requests == 3
    assert backend.totals.cost == pytest.approx(sum(u.cost or 0 for u in [prime_usage, *turns]))
    backend.close()


def test_peak_hours_double_the_cost(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    costs = []
    for when in (OFF_PEAK, PEAK):
        emu.units.clear()  # the same cache misses both times
        backend = backend_for(url, emu, when)
        reading = started(backend)
        _result, events = ask(backend, reading)
        costs.append(next(e for e in events if isinstance(e, Usage)).cost)
        assert backend.last_cost is not None
        assert backend.last_cost.peak is (when is PEAK)
        backend.close()
    assert costs[1] == pytest.approx(2 * costs[0])


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("402", FailureKind.QUOTA, "the account balance is exhausted"),
        ("401", FailureKind.AUTH, "refused the API key"),
        ("422", FailureKind.BAD_INPUT, "rejected a parameter"),
        ("400", FailureKind.BAD_INPUT, "malformed"),
    ],
)
def test_refusals_are_not_retried_and_say_what_happened(
    emulator: tuple[str, Emulator], code: str, kind: FailureKind, words: str
) -> None:
    url, emu = emulator
    backend = backend_for(url, emu)
    reading = started(backend)
    emu.faults.append(code)
    before = len(emu.requests)
    result, events = ask(backend, reading)
    assert isinstance(result, Failed)
    assert result.kind is kind
    assert words in result.message
    assert not result.partial
    assert len(emu.requests) - before == 1
    assert not [e for e in events if isinstance(e, AnswerDelta)]
    backend.close()


def test_rate_limit_and_overload_are_retried_then_answered(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    backend = backend_for(url, emu)
    reading = started(backend)
    emu.faults += ["429", "503"]
    before = len(emu.requests)
    result, events = ask(backend, reading)
    assert result == Finished("stop")
    assert len(emu.requests) - before == 3
    assert text_of(events, AnswerDelta) == emu.answer_text

    emu.faults += ["503"] * 3
    result, _events = ask(backend, reading)
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.SERVER
    assert "overloaded (503) after 3 tries" in result.message
    emu.faults += ["429"] * 3
    result, _events = ask(backend, reading)
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.QUOTA
    assert "429" in result.message
    backend.close()


def test_keep_alive_comments_are_tolerated(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    backend = backend_for(url, emu)
    reading = started(backend)
    emu.faults.append("keepalive")
    result, events = ask(backend, reading)
    assert result == Finished("stop")
    assert text_of(events, AnswerDelta) == emu.answer_text
    backend.close()


def test_a_stream_cut_halfway_keeps_the_partial_answer_and_can_be_continued(
    emulator: tuple[str, Emulator],
) -> None:
    url, emu = emulator
    emu.thinking_text = ""
    backend = backend_for(url, emu)
    reading = started(backend)
    emu.faults.append("cut")
    before = len(emu.requests)
    result, events = ask(backend, reading)
    assert isinstance(result, Failed)
    assert result.partial
    assert result.kind is FailureKind.NETWORK
    assert "dropped in the middle of the answer" in result.message
    assert len(emu.requests) - before == 1  # a cut is not silently retried (it would charge twice)
    partial = text_of(events, AnswerDelta)
    assert partial
    assert emu.answer_text.startswith(partial)
    assert len(partial) < len(emu.answer_text)

    more: list[Event] = []
    again = backend.resume(
        reading, (), "What colour is the kettle?", partial, AskOptions(), more.append, lambda: False
    )
    assert again == Finished("stop")
    assert text_of(more, AnswerDelta)
    sent = emu.requests[-1]["messages"]
    assert sent[-2] == {"role": "assistant", "content": partial}
    assert sent[-1]["content"].endswith(CONTINUE_PROMPT)
    usage = next(e for e in more if isinstance(e, Usage))
    assert usage.cached_tokens > 0  # the corpus prefix still hits the cache
    backend.close()


def test_a_silent_server_times_out_and_keeps_the_partial_answer(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    emu.thinking_text = ""
    emu.stall_s = 2.0
    backend = backend_for(url, emu, read_timeout_s=0.5)
    reading = started(backend)
    emu.faults += ["keepalive", "stall"]
    result, _events = ask(backend, reading)  # keep-alive comments alone do not time out
    assert result == Finished("stop")
    done_before = emu.streams_done
    result, events = ask(backend, reading)
    assert emu.streams_done == done_before  # it gave up while the server was still silent
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.NETWORK
    assert result.partial
    assert "sent nothing for 0.5 s" in result.message
    assert emu.answer_text.startswith(text_of(events, AnswerDelta))
    assert len(text_of(events, AnswerDelta)) < len(emu.answer_text)  # the half before the silence
    backend.close()


def test_unreachable_endpoint_is_retried_with_a_clear_message() -> None:
    config = make_config("deepseek", base_url="http://127.0.0.1:9/v1", api_key="sk-test-unreachable")
    pauses: list[float] = []
    backend = HostedBackend(
        config, retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.02), sleep=pauses.append
    )
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    backend.permit(backend.fingerprint(plan))
    reading = backend.read(plan, lambda _e: None, lambda: False)
    result = backend.ask(reading, (), "hi", AskOptions(), lambda _e: None, lambda: False)
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.NETWORK
    assert "could not reach 127.0.0.1:9 after 3 tries" in result.message
    assert pauses  # it waited between tries
    backend.close()


def test_cancel_stops_a_slow_stream_promptly(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    emu.chunk_delay_s = 0.3
    backend = backend_for(url, emu)
    reading = started(backend)
    stop = threading.Event()
    events: list[Event] = []

    def on_event(ev: Event) -> None:
        events.append(ev)
        if isinstance(ev, ThinkingDelta):
            stop.set()

    done_before = emu.streams_done
    result = backend.ask(reading, (), "hi", AskOptions(thinking=ThinkingMode.HIGH), on_event, stop.is_set)
    assert result == Finished("cancelled")
    assert emu.streams_done == done_before  # back while the server still had most of it to send (6 s)
    assert len([e for e in events if isinstance(e, ThinkingDelta)]) <= 2
    backend.close()


def test_nothing_is_sent_without_consent_and_oversized_requests_are_refused(
    emulator: tuple[str, Emulator],
) -> None:
    url, emu = emulator
    backend = backend_for(url, emu, context_window=400)
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    with pytest.raises(BackendError) as info:
        backend.read(plan, lambda _e: None, lambda: False)
    assert info.value.kind is FailureKind.CONSENT
    assert "nothing was sent" in info.value.message

    backend.permit(backend.fingerprint(plan))
    reading = backend.read(plan, lambda _e: None, lambda: False)
    result, _events = ask(backend, reading, max_output_tokens=300)
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.CONTEXT
    assert "takes 400" in result.message

    bigger = plan_for(kitchen_corpus("The sink is white.\n"), backend.count_tokens)
    with pytest.raises(BackendError) as info:
        backend.read(bigger, lambda _e: None, lambda: False)  # another corpus: no consent yet
    assert info.value.kind is FailureKind.CONSENT
    assert emu.requests == []
    backend.close()


def test_models_are_listed_and_a_key_echoed_by_the_server_is_scrubbed(emulator: tuple[str, Emulator]) -> None:
    url, emu = emulator
    backend = backend_for(url, emu)
    assert backend.list_models() == ("deepseek-flash", "deepseek-v4-pro")
    wrong = HostedBackend(make_config("deepseek", base_url=url, api_key="sk-wrong-key-0123456789"))
    with pytest.raises(BackendError) as info:
        wrong.list_models()
    assert info.value.kind is FailureKind.AUTH
    assert "0123456789" not in info.value.message
    elsewhere = HostedBackend(
        make_config("openai-compatible", base_url=url + "/nothing", api_key=emu.api_key)
    )
    with pytest.raises(BackendError) as info:
        elsewhere.list_models()
    assert "does not list its models (404)" in info.value.message
    for b in (backend, wrong, elsewhere):
        b.close()
