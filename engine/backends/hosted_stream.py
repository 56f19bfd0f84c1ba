"""Reading one streamed chat completion into events, with cancel, cuts and stalls as values.

``delta.reasoning_content`` (DeepSeek; ``delta.reasoning`` on some vLLM builds) becomes
ThinkingDelta, ``delta.content`` AnswerDelta. The stream counts as complete only when a
choice carried a ``finish_reason``: a connection that ends without one (dropped, or closed
by a proxy) is a cut, and what arrived before it is kept and marked partial. SSE comments
such as DeepSeek's ``: keep-alive`` are skipped by the SSE decoder and reset the read timeout.

A watcher thread polls ``cancelled`` and closes the response, so that a cancel takes effect
even while no chunk arrives (the server still reading a long prompt).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from longdesk.engine.backends.base import (
    AnswerDelta,
    CancelCheck,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    ThinkingDelta,
)
from longdesk.engine.backends.hosted_errors import cut_failure, stall_failure
from longdesk.engine.events import StopReason

CANCEL_POLL_S = 0.05


@dataclass(slots=True)
class StreamResult:
    """What one streamed response delivered."""

    answer: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    finish: str | None = None
    usage: Any = None
    first_token_s: float | None = None

    @property
    def received(self) -> bool:
        return bool(self.answer or self.thinking)


def _take(chunk: Any, got: StreamResult, t0: float, on_event: EventSink, quiet: bool) -> None:
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        got.usage = usage
    for choice in getattr(chunk, "choices", None) or ():
        delta = choice.delta
        thinking = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
        if thinking:
            got.thinking.append(thinking)
            if got.first_token_s is None:
                got.first_token_s = time.perf_counter() - t0
            if not quiet:
                on_event(ThinkingDelta(thinking))
        if delta.content:
            got.answer.append(delta.content)
            if got.first_token_s is None:
                got.first_token_s = time.perf_counter() - t0
            if not quiet:
                on_event(AnswerDelta(delta.content))
        if choice.finish_reason:
            got.finish = str(choice.finish_reason)


def read_stream(
    stream: Any,
    got: StreamResult,
    on_event: EventSink,
    cancelled: CancelCheck,
    *,
    t0: float,
    quiet: bool,
    host: str,
    read_timeout_s: float,
    scrub: Callable[[str], str],
) -> Finished | Failed:
    """Stream ``stream`` (an ``openai`` Stream of chunks) into ``got`` and events.

    Args:
        stream: the response of ``chat.completions.create(stream=True)``.
        got: filled with the text, finish reason and usage received.
        on_event: receives ThinkingDelta and AnswerDelta (none when ``quiet``).
        cancelled: polled between chunks and by the watcher.
        t0: when the request was sent (for the time to first token).
        quiet: the priming request: nothing to show.
        host: for messages.
        read_timeout_s: for the message when the server went silent.
        scrub: removes the key from anything a server echoed.

    Returns:
        Finished (stop reason, or ``cancelled``) or Failed (``partial`` when text was kept).
    """
    import openai

    stop_watch = threading.Event()
    cancel_seen = threading.Event()

    def watch() -> None:
        while not stop_watch.wait(CANCEL_POLL_S):
            if cancelled():
                cancel_seen.set()
                stream.response.close()
                return

    watcher = threading.Thread(target=watch, name="longdesk-hosted-cancel", daemon=True)
    watcher.start()
    failure: Failed | None = None
    try:
        for chunk in stream:
            if cancel_seen.is_set() or cancelled():
                cancel_seen.set()
                break
            _take(chunk, got, t0, on_event, quiet)
    except openai.APITimeoutError:
        failure = stall_failure(host, read_timeout_s, got.received)
    except openai.APIConnectionError:
        failure = cut_failure(host, got.received)
    except openai.APIError as exc:  # an error object in the middle of the stream
        failure = Failed(
            FailureKind.SERVER,
            f"{host} reported an error in the middle of the answer: {scrub(exc.message)}",
            partial=got.received,
        )
    except OSError:  # the socket, closed under the reader by the cancel watcher
        failure = cut_failure(host, got.received)
    except ValueError:  # a piece that is not JSON
        failure = Failed(
            FailureKind.SERVER, f"{host} sent a malformed piece of the answer", partial=got.received
        )
    finally:
        stop_watch.set()
        watcher.join()
        stream.response.close()
    if cancel_seen.is_set() or cancelled():
        return Finished(StopReason.CANCELLED)
    if failure is not None:
        return failure
    if got.finish is None:
        return cut_failure(host, got.received)
    # "length" is the output limit; "stop" and anything else a server may say end the answer.
    return Finished(StopReason.LENGTH if got.finish == "length" else StopReason.STOP)
