"""The hosted backend, unchanged, against llama-cpp-python's own OpenAI-compatible server running
the default model on 127.0.0.1: streaming, usage (the server sends none in streams), cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from longdesk.engine.backends.base import AnswerDelta, AskOptions, Event, Failed, FailureKind, Finished, Usage
from longdesk.engine.backends.hosted import HostedBackend, build_messages
from longdesk.engine.backends.hosted_presets import make_config
from tests.hosted.conftest import SERVER_CTX, SHORT_INSTRUCTIONS, kitchen_corpus, plan_for

pytestmark = [pytest.mark.network, pytest.mark.model]


def local_server_backend(url: str, gguf: Path, **extra: object) -> HostedBackend:
    config = make_config("openai-compatible", base_url=url, model=str(gguf), tokenizer_gguf=gguf, **extra)
    return HostedBackend(config)


def test_answer_streams_with_usage_counted_when_the_server_sends_none(
    llama_server: str, default_model: Path
) -> None:
    backend = local_server_backend(llama_server, default_model, context_window=SERVER_CTX)
    assert backend.list_models() == (str(default_model),)
    info = backend.describe()
    assert info.where == "hosted"
    assert info.context_window == SERVER_CTX
    plan = plan_for(kitchen_corpus(), backend.count_tokens, SERVER_CTX, SHORT_INSTRUCTIONS)
    backend.permit(backend.fingerprint(plan))
    reading = backend.read(plan, lambda _e: None, lambda: False)
    events: list[Event] = []
    result = backend.ask(
        reading,
        (),
        "What colour is the kettle?",
        AskOptions(max_output_tokens=12),
        events.append,
        lambda: False,
    )
    assert isinstance(result, Finished), result
    assert result.stop_reason in ("stop", "length")
    deltas = [e for e in events if isinstance(e, AnswerDelta)]
    assert len(deltas) >= 2, "the answer did not stream piece by piece"
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1
    assert not backend.last_usage_reported  # llama-cpp-python sends no usage chunk in streams
    # Counted here with the server's own vocabulary: the prompt text plus template tokens.
    messages = build_messages(plan, (), "What colour is the kettle?")
    text_tokens = sum(backend.count_tokens(m["content"]) for m in messages)
    assert text_tokens < usage[0].prompt_tokens < text_tokens + 20
    assert 1 <= usage[0].output_tokens <= 14
    assert usage[0].cost is None  # no price table for a private server
    # The parameters only DeepSeek knows were not sent.
    params = backend.request_params(messages, AskOptions())
    assert "extra_body" not in params
    backend.close()


def test_cancel_stops_the_stream_and_the_server_keeps_serving(llama_server: str, default_model: Path) -> None:
    backend = local_server_backend(llama_server, default_model)
    plan = plan_for(kitchen_corpus(), backend.count_tokens, SERVER_CTX, SHORT_INSTRUCTIONS)
    backend.permit(backend.fingerprint(plan))
    reading = backend.read(plan, lambda _e: None, lambda: False)
    stop = threading.Event()
    got: list[str] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, AnswerDelta):
            got.append(ev.text)
            if len(got) == 2:
                stop.set()

    result = backend.ask(
        reading,
        (),
        "Describe the kitchen in detail.",
        AskOptions(max_output_tokens=200),
        on_event,
        stop.is_set,
    )
    assert result == Finished("cancelled")
    assert len(got) <= 4  # stopped within a few tokens of the cancel, not after 200
    events: list[Event] = []
    again = backend.ask(
        reading, (), "Is the oven broken?", AskOptions(max_output_tokens=4), events.append, lambda: False
    )
    assert isinstance(again, Finished), again
    assert [e for e in events if isinstance(e, AnswerDelta)]
    backend.close()


def test_a_request_over_the_servers_context_is_refused_before_sending(
    llama_server: str, default_model: Path
) -> None:
    backend = local_server_backend(llama_server, default_model, context_window=SERVER_CTX)
    long = "".join(f"Line {i}: the shelf holds jar number {i}.\n" for i in range(40))
    plan = plan_for(kitchen_corpus(long), backend.count_tokens, SERVER_CTX)
    backend.permit(backend.fingerprint(plan))
    reading = backend.read(plan, lambda _e: None, lambda: False)
    result = backend.ask(
        reading, (), "How many jars?", AskOptions(max_output_tokens=400), lambda _e: None, lambda: False
    )
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.CONTEXT
    assert "not sent" in result.message
    backend.close()
