"""The hosted backend: DeepSeek's API or any OpenAI-compatible server, through ``openai``.

Requests are built for the provider's prefix cache (see the DeepSeek context-caching guide):

    system:     the citing instructions                      ┐ byte-identical in every
    user:       <corpus>…</corpus>\\nQuestion: first question ┘ request of a session
    assistant:  first answer
    user:       Question: next question                        (appended, never edited)

The corpus ends with a newline and the question starts with a letter, so the corpus's tokens
are a prefix of every request's tokens (checked in the tests with the V4 vocabulary). The
optional priming request (``HostedConfig.prime_cache``) is ``system + user: corpus`` and ends
exactly at the corpus, where DeepSeek persists a cache unit. ``user_id`` stays constant.
The corpus is never joined into one string to send it: the JSON body is written block by block
(``engine.backends.hosted_body``), the same bytes the ``openai`` client would write.

Nothing is sent before ``permit(fingerprint)`` was called with the fingerprint of exactly this
endpoint, model and prefix: the app calls it once the user has consented (``app.consent``).

One thread owns an instance; ``cancelled`` is polled by a watcher that closes the stream, so a
cancel takes effect even while the server is still reading the corpus.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longdesk.engine.backends.base import (
    AskOptions,
    BackendError,
    BackendInfo,
    CancelCheck,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    Reading,
    StopReason,
    ThinkingMode,
    Turn,
    Usage,
    Where,
)
from longdesk.engine.backends.hosted_body import LeadContent, post_chat
from longdesk.engine.backends.hosted_errors import (
    RETRY_STATUSES,
    RetryPolicy,
    connection_failure,
    retry_after_seconds,
    scrub,
    status_failure,
)
from longdesk.engine.backends.hosted_presets import HostedConfig, request_fingerprint
from longdesk.engine.backends.hosted_prices import PriceTable, TurnCost
from longdesk.engine.backends.hosted_stream import StreamResult, read_stream
from longdesk.engine.backends.hosted_tokens import TokenCounter, deepseek_counter, gguf_counter
from longdesk.engine.context.plan import ContextPlan

QUESTION_LEAD = "Question: "
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, "
    "without repeating what you already wrote."
)
_CANCEL_POLL_S = 0.05

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def request_messages(
    plan: ContextPlan, history: tuple[Turn, ...], question: str | None
) -> list[dict[str, Any]]:
    """``build_messages`` with the corpus message's content left in the plan's blocks
    (``hosted_body.LeadContent``): what is sent, without a joined copy of the corpus."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": plan.instructions}]
    questions = [t.question for t in history] + ([question] if question is not None else [])
    if not questions:
        return [*messages, {"role": "user", "content": LeadContent(plan.corpus_blocks)}]
    for i, q in enumerate(questions):
        text = QUESTION_LEAD + q
        content = LeadContent(plan.corpus_blocks, text) if i == 0 else text
        messages.append({"role": "user", "content": content})
        if i < len(history):
            messages.append({"role": "assistant", "content": history[i].answer})
    return messages


def build_messages(
    plan: ContextPlan, history: tuple[Turn, ...], question: str | None, *, corpus: bool = True
) -> list[dict[str, str]]:
    """The chat messages for ``question`` after ``history``; ``None``: the priming request.

    ``corpus=False`` leaves the corpus out of the first user message (what counting the rest
    of a request needs). Requests themselves are sent from ``request_messages``, which never
    joins the corpus.
    """
    return [
        {**m, "content": m["content"].text() if corpus else m["content"].tail}
        if isinstance(m["content"], LeadContent)
        else m
        for m in request_messages(plan, history, question)
    ]


@dataclass(frozen=True, slots=True)
class SessionTotals:
    """What a backend instance has spent so far (one instance per session and endpoint)."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


class HostedBackend:
    """An OpenAI-compatible endpoint behind the Backend protocol.

    Args:
        config: endpoint, model, key and timeouts.
        prices: the price table (None: costs are not computed).
        retry: how often to try again on 429/500/503 and connection failures.
        clock: the request time (decides peak or off-peak rates).
        sleep: waits between tries (tests pass a recorder).
        count_cache: the folder of the token-count cache (``engine.context.tokens``); None
            keeps no counts on disk.
    """

    def __init__(
        self,
        config: HostedConfig,
        *,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        count_cache: Path | None = None,
    ) -> None:
        self.config = config
        self.count_cache = count_cache
        self.prices = prices if config.preset.priced or prices is not None else None
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()
        self._client: Any = None
        self._counter: TokenCounter | None = None
        self._permitted: set[str] = set()
        self._plan: ContextPlan | None = None
        self._window = config.context_window or config.preset.window_for(config.model)
        self.totals = SessionTotals()
        self.last_stream: StreamResult | None = None
        self.last_cost: TurnCost | None = None
        self.last_usage_reported = False  # False: the server sent no usage, the figures were counted here
        self._prompt_tokens = 0
        self._memo: tuple[ContextPlan, str, int, int] | None = None

    # ------------------------------------------------------------------ Backend
    def describe(self) -> BackendInfo:
        preset = self.config.preset
        counter = self.counter()
        notes = [n for n in (preset.note_for(self.config.model),) if n]
        if not counter.exact:
            notes.append("token counts are estimates (DeepSeek-V4 vocabulary); name the server's GGUF")
        if not self._window:
            notes.append("context size unknown: the server decides what fits")
        notes.append(
            f"what leaves this machine: the chosen documents and questions, sent to {self.config.host}"
        )
        modes = (
            (ThinkingMode.OFF, ThinkingMode.HIGH, ThinkingMode.MAX)
            if preset.thinking
            else (ThinkingMode.OFF,)
        )
        return BackendInfo(
            name=self.config.model,
            where=Where.HOSTED,
            context_window=self._window,
            thinking_modes=modes,
            architecture=preset.label,
            endpoint=self.config.endpoint,
            notes=tuple(notes),
        )

    def counter(self) -> TokenCounter:
        if self._counter is None:
            if self.config.tokenizer_gguf is not None:
                self._counter = gguf_counter(self.config.tokenizer_gguf, self.count_cache)
            else:
                self._counter = deepseek_counter(self.config.preset.exact_counts, self.count_cache)
        return self._counter

    def count_tokens(self, text: str) -> int:
        return self.counter().count(text)

    def warm(self) -> None:
        """Load what every use of the endpoint needs: the HTTP client library and the vocabulary.

        Called where the endpoint is opened, so that these libraries' hundred thousand
        objects exist before the corpus does (a GUI can then exempt them from later garbage
        collections, see ``ui.interpreter``); connects to nothing.
        """
        self._openai()
        self.counter()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._counter is not None:
            self._counter.close()

    # ------------------------------------------------------------------ consent
    def fingerprint(self, plan: ContextPlan) -> str:
        return self._plan_facts(plan)[0]

    def _plan_facts(self, plan: ContextPlan) -> tuple[str, int, int]:
        """(fingerprint, instruction tokens, corpus tokens), computed once per plan object.

        Hashing and counting a million-token corpus takes a while; a session asks many
        questions about the same plan, so the time to first token must not pay it each time.
        A plan counted by this tokenizer already knows its corpus's tokens (the sum of its
        blocks'), so the corpus is counted again only for a plan counted by another.
        """
        memo = self._memo
        if memo is None or memo[0] is not plan:
            fingerprint = request_fingerprint(self.config.endpoint, self.config.model, plan.system_parts())
            counter = self.counter()
            corpus = plan.corpus_tokens
            if corpus is None or not plan.tokenizer or plan.tokenizer != counter.identity:
                corpus = counter.count(plan.corpus_text)
            memo = (plan, fingerprint, counter.count(plan.instructions), corpus)
            self._memo = memo
        return memo[1], memo[2], memo[3]

    def permit(self, fingerprint: str) -> None:
        """Allow sending the prefix with this fingerprint (called after the user consented)."""
        self._permitted.add(fingerprint)

    def _check_permitted(self, plan: ContextPlan) -> None:
        if self.fingerprint(plan) not in self._permitted:
            raise BackendError(
                FailureKind.CONSENT,
                f"nothing was sent: sending these documents to {self.config.host} was not agreed to",
            )

    # ------------------------------------------------------------------ budget and cost
    def request_tokens(self, plan: ContextPlan, history: tuple[Turn, ...], question: str | None) -> int:
        """Exact prompt tokens of a request (text plus the chat template's tokens)."""
        counter = self.counter()
        messages = request_messages(plan, history, question)
        _fp, instructions, corpus = self._plan_facts(plan)
        # The corpus's tokens are a prefix of the first user message's tokens (it ends with a
        # newline and the question lead starts a new pre-token), so its count adds up exactly:
        # what follows it in that message is counted alone (the corpus is never joined here).
        text_tokens = instructions + corpus
        for m in messages[1:]:
            content = m["content"]
            text_tokens += counter.count(content.tail if isinstance(content, LeadContent) else content)
        return text_tokens + counter.template_overhead(len(messages), answers=len(history))

    def output_reserve(self, options: AskOptions) -> int:
        return options.max_output_tokens + self.config.thinking_budget.reserve(options.thinking)

    def check_fits(self, prompt_tokens: int, options: AskOptions) -> Failed | None:
        """A CONTEXT failure when prompt + output reserve exceed the model's context."""
        if not self._window:
            return None
        need = prompt_tokens + self.output_reserve(options)
        if need <= self._window:
            return None
        return Failed(
            FailureKind.CONTEXT,
            f"not sent: the request needs {need:,} tokens ({prompt_tokens:,} prompt + "
            f"{self.output_reserve(options):,} reserved for the answer) but {self.config.model} "
            f"takes {self._window:,}",
        )

    def turn_cost(self, when: dt.datetime, hit: int, miss: int, output: int) -> TurnCost | None:
        if self.prices is None:
            return None
        return self.prices.cost(self.config.model, when, cache_hit=hit, cache_miss=miss, output=output)

    def estimate(
        self, plan: ContextPlan, options: AskOptions, when: dt.datetime | None = None
    ) -> TurnCost | None:
        """Upper estimate of the first question of a session (priming included when enabled).

        The prefix is counted as a cache miss once; with priming the question then hits it.
        Output is the whole reserve (answer + thinking), so the real cost is usually lower.
        """
        at = when or self._clock()
        prefix = self.request_tokens(plan, (), None)
        question = self.request_tokens(plan, (), "x" * 200) - prefix
        out = self.output_reserve(options)
        if self.config.prime_cache:
            first = self.turn_cost(at, 0, prefix, 1)
            second = self.turn_cost(at, prefix, question, out)
            if first is None or second is None:
                return None
            return TurnCost(first.amount + second.amount, first.currency, first.peak)
        return self.turn_cost(at, 0, prefix + question, out)

    # ------------------------------------------------------------------ models
    def list_models(self) -> tuple[str, ...]:
        """Model ids from the server's ``/models`` (no document leaves the machine).

        Raises:
            BackendError: the server cannot be reached, refuses the key, or has no such list.
        """
        client = self._openai()
        import openai

        try:
            page = client.models.list()
            return tuple(sorted(m.id for m in page.data))
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405):
                raise BackendError(
                    FailureKind.BAD_INPUT,
                    f"{self.config.host} does not list its models ({exc.status_code}); name the model",
                ) from None
            failed = status_failure(
                exc.status_code, exc.body, self._safe(str(exc)), host=self.config.host, model="", tries=1
            )
            raise BackendError(failed.kind, failed.message) from None
        except openai.APIConnectionError as exc:
            failed = self._connection_failed(exc, 1)
            raise BackendError(failed.kind, failed.message) from None

    # ------------------------------------------------------------------ read / ask
    def read(
        self,
        plan: ContextPlan,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        thinking: ThinkingMode = ThinkingMode.OFF,
        keep_held: bool = False,
    ) -> Reading:
        """Check the budget and consent; with ``prime_cache``, send the priming request.

        ``thinking`` and ``keep_held`` change nothing here: a hosted request always sends the
        corpus first, whatever the mode (the priming request uses the endpoint's own mode),
        and there is no held state to keep.

        Raises:
            BackendError: not agreed to, does not fit, or the priming request failed.
        """
        del thinking, keep_held
        t0 = time.perf_counter()
        self._check_permitted(plan)
        tokens = self.request_tokens(plan, (), None)
        too_big = self.check_fits(tokens, AskOptions(max_output_tokens=1))
        if too_big is not None:
            raise BackendError(too_big.kind, too_big.message)
        self._plan = plan
        primed = False
        if self.config.prime_cache:
            messages = request_messages(plan, (), None)
            result = self._request(
                messages,
                AskOptions(thinking=self.config.thinking, max_output_tokens=1),
                on_event,
                cancelled,
                prompt_tokens=tokens,
                max_tokens=1,
                quiet=True,
            )
            if isinstance(result, Failed):
                raise BackendError(result.kind, result.message)
            if result.stop_reason is StopReason.CANCELLED:
                raise BackendError(FailureKind.CANCELLED, "cancelled while the corpus was being sent")
            primed = True
        detail: dict[str, object] = {"fingerprint": self.fingerprint(plan), "primed": primed}
        return Reading(prefix_tokens=tokens, restored=False, seconds=time.perf_counter() - t0, detail=detail)

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        plan = self._plan
        if plan is None or reading.detail.get("fingerprint") != self.fingerprint(plan):
            return Failed(FailureKind.INTERNAL, "ask() before read(): the corpus has not been read")
        try:
            self._check_permitted(plan)
        except BackendError as exc:
            return Failed(exc.kind, exc.message)
        prompt_tokens = self.request_tokens(plan, history, question)
        too_big = self.check_fits(prompt_tokens, options)
        if too_big is not None:
            return too_big
        messages = request_messages(plan, history, question)  # the corpus stays in its blocks
        return self._request(messages, options, on_event, cancelled, prompt_tokens=prompt_tokens)

    def resume(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        partial_answer: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        """Continue an answer that was cut off; the corpus prefix stays the same (cache hit).

        The new text streams as AnswerDelta events to be appended to ``partial_answer``.
        """
        cut = Turn(question=question, answer=partial_answer)
        return self.ask(reading, (*history, cut), CONTINUE_PROMPT, options, on_event, cancelled)

    # ------------------------------------------------------------------ requests
    def _openai(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self.config.api_key or "unused",
                base_url=self.config.base_url,
                max_retries=0,
                timeout=openai.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s),
            )
        return self._client

    def request_params(
        self, messages: Sequence[Mapping[str, Any]], options: AskOptions, max_tokens: int | None = None
    ) -> dict[str, Any]:
        """The keyword arguments of the request; only parameters the preset supports.

        ``max_tokens`` defaults to the answer plus the thinking reserve (DeepSeek counts
        reasoning in it); the priming request passes 1.
        """
        preset = self.config.preset
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens or self.output_reserve(options),
            "temperature": options.temperature,
        }
        if preset.max_output:
            params["max_tokens"] = min(params["max_tokens"], preset.max_output)
        if preset.stream_usage:
            params["stream_options"] = {"include_usage": True}
        if preset.seed:
            params["seed"] = options.seed
        extra: dict[str, Any] = {}
        if preset.thinking:
            if options.thinking is ThinkingMode.OFF:
                extra["thinking"] = {"type": "disabled"}
            else:
                extra["thinking"] = {"type": "enabled"}
                extra["reasoning_effort"] = options.thinking.value
        if preset.user_id and self.config.user_id:
            extra["user_id"] = self.config.user_id
        if extra:
            params["extra_body"] = extra
        return params

    def _safe(self, text: str) -> str:
        return scrub(text, self.config.api_key)

    def _connection_failed(self, exc: Exception, tries: int) -> Failed:
        import openai

        kind = "timeout" if isinstance(exc, openai.APITimeoutError) else "connect"
        cause = exc.__cause__ or exc.__context__
        reason = self._safe(str(cause) if cause else "")
        return connection_failure(
            kind, reason[:200], host=self.config.host, tries=tries, timeout_s=self.config.read_timeout_s
        )

    def _request(
        self,
        messages: list[dict[str, Any]],
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        prompt_tokens: int,
        max_tokens: int | None = None,
        quiet: bool = False,
    ) -> Finished | Failed:
        """Send one request with retries before the first byte; stream it into events."""
        import openai

        client = self._openai()
        params = self.request_params(messages, options, max_tokens)
        attempt = 0
        while True:
            attempt += 1
            if cancelled():
                return Finished(StopReason.CANCELLED)
            sent_at = self._clock()
            t0 = time.perf_counter()
            retry_after: float | None = None
            try:
                stream = post_chat(client, params)
            except openai.APIStatusError as exc:
                failed = status_failure(
                    exc.status_code,
                    exc.body,
                    self._safe(exc.message),
                    host=self.config.host,
                    model=self.config.model,
                    tries=attempt,
                )
                if exc.status_code not in RETRY_STATUSES:
                    return Failed(failed.kind, self._safe(failed.message))
                retry_after = retry_after_seconds(exc.response.headers)
            except openai.APIConnectionError as exc:
                failed = self._connection_failed(exc, attempt)
            else:
                self._prompt_tokens = prompt_tokens
                return self._consume(stream, sent_at, t0, on_event, cancelled, quiet=quiet)
            if attempt >= self.retry.attempts:
                return Failed(failed.kind, self._safe(failed.message))
            pause = self.retry.delay(attempt, retry_after, self._rng)
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                if cancelled():
                    return Finished(StopReason.CANCELLED)
                self._sleep(min(_CANCEL_POLL_S, max(0.0, deadline - time.monotonic())))

    def _consume(
        self,
        stream: Any,
        sent_at: dt.datetime,
        t0: float,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        quiet: bool,
    ) -> Finished | Failed:
        got = StreamResult()
        self.last_stream = got
        result = read_stream(
            stream,
            got,
            on_event,
            cancelled,
            t0=t0,
            quiet=quiet,
            host=self.config.host,
            read_timeout_s=self.config.read_timeout_s,
            scrub=self._safe,
        )
        self._report_usage(got, sent_at, t0, on_event)
        return result

    def _report_usage(self, got: StreamResult, sent_at: dt.datetime, t0: float, on_event: EventSink) -> None:
        """Usage of the request: the server's figures, else counted here (no cache figures)."""
        usage = got.usage
        self.last_usage_reported = usage is not None
        if usage is not None:
            prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
            output = int(getattr(usage, "completion_tokens", 0) or 0)
            hit = getattr(usage, "prompt_cache_hit_tokens", None)
            if hit is None:
                details = getattr(usage, "prompt_tokens_details", None)
                hit = getattr(details, "cached_tokens", None) if details is not None else None
            cached = int(hit or 0)
        else:
            # Some servers (llama-cpp-python's) send no usage in streams: count what we have.
            prompt = self._prompt_tokens
            output = self.count_tokens("".join(got.answer)) + self.count_tokens("".join(got.thinking))
            cached = 0
        cost = self.turn_cost(sent_at, cached, max(0, prompt - cached), output)
        self.last_cost = cost
        t = self.totals
        self.totals = SessionTotals(
            t.requests + 1,
            t.prompt_tokens + prompt,
            t.cached_tokens + cached,
            t.output_tokens + output,
            t.cost + (cost.amount if cost else 0.0),
        )
        on_event(
            Usage(
                prompt_tokens=prompt,
                cached_tokens=cached,
                output_tokens=output,
                seconds=max(time.perf_counter() - t0, 1e-9),
                cost=cost.amount if cost else None,
                currency=cost.currency if cost else "",
            )
        )
