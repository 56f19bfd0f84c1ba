"""``longdesk ask --backend hosted``: consent, then the answer streamed from a hosted endpoint.

The CLI's side of the hosted backend. It resolves the endpoint from the flags (preset, base
URL, model) and the key from the keyring or the environment, shows what will be sent and the
estimated cost, and asks for consent on a terminal (``--yes`` agrees without asking, for
scripts). Nothing is sent without that yes. Thinking text goes to stderr, the answer to
stdout, then a usage line with the cache hits and the cost of the turn and the session.

Each request's usage (never the key, never the text) is appended to
``LOGS/hosted-usage.jsonl``, so that what a session cost can be looked up later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from longdesk.app.cli.verdicts import print_citations
from longdesk.app.consent import ConsentLedger, ConsentRequest, prepare_consent
from longdesk.app.hosted_endpoint import HostedSpec, hosted_config, price_table, with_listed_model
from longdesk.app.paths import Paths
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    Failed,
    FailureKind,
    Finished,
    Progress,
    ThinkingDelta,
    ThinkingMode,
    Usage,
)
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_presets import PRESETS, HostedConfig
from longdesk.engine.backends.hosted_prices import format_money
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import StopReason
from longdesk.engine.grounding import CitationTracker

USAGE_LOG = "hosted-usage.jsonl"


def _say(line: str) -> None:
    """One line for the user on stderr (the answer has stdout to itself)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class HostedCliError(Exception):
    """A failure with its kind; the CLI maps the kind to an exit code."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def preset_key(ns: argparse.Namespace) -> str:
    """The chosen preset: explicit, else ``openai-compatible`` with a base URL, else DeepSeek."""
    if ns.preset:
        return str(ns.preset)
    return "openai-compatible" if ns.base_url else "deepseek"


def hosted_wanted(ns: argparse.Namespace) -> bool:
    """Whether the user set up a hosted endpoint (flags, or a key in the environment)."""
    if ns.preset or ns.base_url:
        return True
    return any(os.environ.get(n) for n in PRESETS["deepseek"].key_env)


def endpoint_label(ns: argparse.Namespace) -> str:
    preset = PRESETS[preset_key(ns)]
    return f"{preset.label} at {ns.base_url or preset.base_url}"


def config_from_args(ns: argparse.Namespace) -> HostedConfig:
    """The endpoint config from the flags, with the key from the keyring or the environment.

    Raises:
        HostedCliError: unknown preset, missing base URL, or no key where one is required.
    """
    try:
        spec = HostedSpec(
            preset=preset_key(ns),
            base_url=ns.base_url or "",
            model=ns.api_model or "",
            context_window=max(0, ns.api_context),
            tokenizer_gguf=Path(ns.api_tokenizer) if ns.api_tokenizer else None,
            thinking=ThinkingMode(ns.thinking),
        )
        return hosted_config(spec)
    except ValueError as exc:
        raise HostedCliError(FailureKind.BAD_INPUT, str(exc)) from exc
    except BackendError as exc:
        raise HostedCliError(exc.kind, exc.message) from exc


def ask_consent(request: ConsentRequest, *, assume_yes: bool, stdin: TextIO, stderr: TextIO) -> bool:
    """Show the consent and get the answer: ``--yes``, or y on a terminal; otherwise no."""
    for line in request.summary_lines():
        stderr.write(f"longdesk: {line}\n")
    if assume_yes:
        stderr.write("longdesk: agreed with --yes\n")
        return True
    if not stdin.isatty():
        return False
    stderr.write(f"longdesk: send these documents to {request.host}? [y/N] ")
    stderr.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _append_usage(logs: Path, record: dict[str, object]) -> None:
    """One JSON line per request; an unwritable log folder costs the line, never the answer."""
    try:
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / USAGE_LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        _say(f"longdesk: could not record usage in {logs}: {exc.strerror or exc}")


def _usage_line(u: Usage, backend: HostedBackend) -> str:
    miss = max(0, u.prompt_tokens - u.cached_tokens)
    if not backend.last_usage_reported:
        return (
            f"prompt {u.prompt_tokens:,} tokens, output {u.output_tokens:,} (counted here: the server "
            f"sent no usage), {u.seconds:.1f} s"
        )
    line = (
        f"prompt {u.prompt_tokens:,} tokens (cache hit {u.cached_tokens:,}, miss {miss:,}), "
        f"output {u.output_tokens:,}, {u.seconds:.1f} s"
    )
    cost = backend.last_cost
    if cost is not None:
        line += f"; cost {cost.describe()}, session {format_money(backend.totals.cost, cost.currency)}"
    return line


def run_hosted(ns: argparse.Namespace, out: TextIO, corpus: Corpus, cancel: threading.Event) -> int:
    """Consent, read, ask; returns 0 or 130 (stopped); raises HostedCliError on failure."""
    paths = Paths.default()
    config = config_from_args(ns)
    prices, warning = price_table(paths.config)
    if warning:
        _say(f"longdesk: {warning}")
    backend = HostedBackend(config, prices=prices if config.preset.priced else None, count_cache=paths.cache)
    try:
        if not config.model:
            backend, model = with_listed_model(backend)
            _say(f"longdesk: using model {model} (listed by {config.host})")
        return _consent_and_ask(ns, out, corpus, backend, paths, cancel)
    except BackendError as exc:
        raise HostedCliError(exc.kind, exc.message) from exc
    finally:
        backend.close()


def _consent_and_ask(
    ns: argparse.Namespace,
    out: TextIO,
    corpus: Corpus,
    backend: HostedBackend,
    paths: Paths,
    cancel: threading.Event,
) -> int:
    thinking = backend.config.thinking
    if thinking not in backend.describe().thinking_modes:
        _say(
            f"longdesk: the {backend.config.preset.label} preset sends no thinking controls; "
            "asking without them (the server's own default applies)"
        )
        thinking = ThinkingMode.OFF
    options = AskOptions(thinking=thinking, max_output_tokens=ns.max_tokens)
    session_id = uuid.uuid4().hex
    request = prepare_consent(session_id, corpus, backend, options)
    if not request.included:
        raise HostedCliError(FailureKind.BAD_INPUT, "every document was left out; nothing to send")
    if not request.fits:
        for line in request.summary_lines():
            _say(f"longdesk: {line}")
        raise HostedCliError(FailureKind.CONTEXT, request.budget)
    if not ask_consent(request, assume_yes=ns.yes, stdin=sys.stdin, stderr=sys.stderr):
        raise HostedCliError(
            FailureKind.CONSENT,
            f"nothing was sent to {request.host}: agree on a terminal, or pass --yes to agree in advance",
        )
    ConsentLedger().grant(request, backend)
    tracker = CitationTracker(corpus)  # checked as they stream, as a local answer's are
    on_event = _printer(out, backend, paths.logs, session_id, tracker)
    reading = backend.read(request.plan, on_event, cancel.is_set)
    result = backend.ask(reading, (), ns.question, options, on_event, cancel.is_set)
    partial = ""
    while isinstance(result, Failed) and result.partial and _want_continue(result.message):
        # The part received stays on screen; the continuation streams right after it.
        partial += "".join(backend.last_stream.answer) if backend.last_stream else ""
        result = backend.resume(reading, (), ns.question, partial, options, on_event, cancel.is_set)
    out.write("\n")
    out.flush()
    tracker.finish()
    print_citations(tracker, sys.stderr)  # a cut answer's citations are checked too
    if isinstance(result, Failed):
        if result.partial:
            _say("longdesk: the text above is INCOMPLETE (cut off)")
        raise HostedCliError(result.kind, result.message)
    assert isinstance(result, Finished)
    _say(f"longdesk: stop: {result.stop_reason}")
    return 130 if result.stop_reason == StopReason.CANCELLED else 0


def _want_continue(message: str) -> bool:
    """On a terminal, offer to continue a cut answer; elsewhere the partial answer stands."""
    if not sys.stdin.isatty():
        return False
    sys.stderr.write(f"\nlongdesk: {message}\nlongdesk: continue the answer? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _printer(
    out: TextIO, backend: HostedBackend, logs: Path, session_id: str, tracker: CitationTracker
) -> Callable[[Event], None]:
    state = {"thinking": False}

    def on_event(ev: Event) -> None:
        if isinstance(ev, ThinkingDelta):
            if not state["thinking"]:
                sys.stderr.write("longdesk: thinking: ")
                state["thinking"] = True
            sys.stderr.write(ev.text)
            sys.stderr.flush()
        elif isinstance(ev, AnswerDelta):
            if state["thinking"]:
                sys.stderr.write("\n")
                state["thinking"] = False
            out.write(ev.text)
            out.flush()
            tracker.feed(ev.text)
        elif isinstance(ev, Usage):
            if state["thinking"]:
                sys.stderr.write("\n")
                state["thinking"] = False
            _say(f"longdesk: {_usage_line(ev, backend)}")
            cost = backend.last_cost
            _append_usage(
                logs,
                {
                    "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "session": session_id,
                    "endpoint": backend.config.endpoint,
                    "model": backend.config.model,
                    "prompt_tokens": ev.prompt_tokens,
                    "cache_hit_tokens": ev.cached_tokens,
                    "output_tokens": ev.output_tokens,
                    "cost": ev.cost,
                    "currency": ev.currency,
                    "peak": cost.peak if cost else None,
                },
            )
        elif isinstance(ev, Progress):
            pass

    return on_event


def cmd_key(ns: argparse.Namespace, stdin: TextIO) -> int:
    """``longdesk key set|forget``: keep an endpoint's key in the OS keyring (read from stdin).

    On a terminal the key is typed without echo; otherwise the first line of stdin is used,
    so that ``pass show deepseek | longdesk key set`` works. The key is never printed.
    """
    from longdesk.app.secrets import forget_key, store_key

    preset = PRESETS[preset_key(ns)]
    base_url = ns.base_url or preset.base_url
    if ns.action == "forget":
        problem = forget_key(base_url)
        if problem:
            raise HostedCliError(FailureKind.AUTH, problem)
        _say(f"longdesk: the key for {base_url} is no longer in the keyring")
        return 0
    if stdin.isatty():
        import getpass

        key = getpass.getpass(f"API key for {base_url}: ")
    else:
        key = stdin.readline()
    problem = store_key(base_url, key)
    if problem:
        raise HostedCliError(FailureKind.AUTH, problem)
    _say(f"longdesk: the key for {base_url} is in the OS keyring")
    return 0
