"""The ``longdesk`` command line: ask, batch, inspect, models (the headless path scripts use).

Exit codes (stable, for scripts):
    0  success
    2  bad input: a missing path, an empty folder, a file that is not a usable model
    3  the model failed to load or run
    4  does not fit: the corpus exceeds the context, or the model exceeds memory
    5  hosted endpoint failure (network, auth, quota)
    130 interrupted (Ctrl-C)
    1  an internal error (a bug): the message names its entry in the log file
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from longdesk.app import __version__, logs
from longdesk.app.cli.verdicts import print_citations
from longdesk.app.models import known_models, resolve_model
from longdesk.app.paths import Paths
from longdesk.app.settings import load_settings
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    Failed,
    FailureKind,
    Progress,
    ThinkingDelta,
    ThinkingMode,
    Usage,
)
from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.load import LoadProgress, SourceError, load_sources
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import Stage, StopReason
from longdesk.engine.grounding import CitationTracker
from longdesk.engine.models.answer_guard import REPEATED_NOTE
from longdesk.engine.models.default_model import DefaultModelError
from longdesk.engine.models.prompt_encoder import PromptKind, detect_prompt_kind, reading_header

if TYPE_CHECKING:
    from longdesk.app.resident import RemoteBackend
    from longdesk.engine.backends.local import LocalBackend
    from longdesk.engine.backends.local_load import LocalSettings, Tokenizer
    from longdesk.engine.models.gguf_header import GGUFHeader

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: the message names the log entry that holds its traceback
EXIT_BAD_INPUT = 2
EXIT_MODEL = 3
EXIT_FIT = 4
EXIT_HOSTED = 5
EXIT_INTERRUPTED = 130

_EXIT_FOR_KIND = {
    FailureKind.BAD_INPUT: EXIT_BAD_INPUT,
    FailureKind.MODEL: EXIT_MODEL,
    FailureKind.INTERNAL: EXIT_MODEL,
    FailureKind.MEMORY: EXIT_FIT,
    FailureKind.CONTEXT: EXIT_FIT,
    FailureKind.NETWORK: EXIT_HOSTED,
    FailureKind.AUTH: EXIT_HOSTED,
    FailureKind.QUOTA: EXIT_HOSTED,
    FailureKind.SERVER: EXIT_HOSTED,
    FailureKind.CANCELLED: EXIT_INTERRUPTED,
    FailureKind.CONSENT: EXIT_HOSTED,
}


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _fail(exc: BackendError) -> CliError:
    return CliError(_EXIT_FOR_KIND.get(exc.kind, EXIT_MODEL), exc.message)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressPrinter:
    """Prefill progress on stderr: a rewritten line on a terminal, a line every 2 s otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        done = p.done >= p.total
        if not self.tty and not done and now - self.last < 2.0:
            return
        self.last = now
        pct = 100.0 * p.done / p.total if p.total else 100.0
        line = (
            f"{p.stage}: {p.done:,}/{p.total:,} tokens ({pct:.0f}%), "
            f"{p.rate:,.0f} tok/s, ETA {_duration(p.eta_s)}"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


_FIRST_LINE_S = 0.5  # reading progress shows once reading has taken this long


def _load_progress(stream: TextIO) -> Callable[[LoadProgress], None]:
    """Reading progress on stderr from the first second on: a rewritten line on a terminal
    (twice a second), a line every 2 s otherwise. A load done within half a second prints nothing."""
    start = time.monotonic()
    last = [start - 2.0]
    printed = [False]

    def show(p: LoadProgress) -> None:
        now = time.monotonic()
        done = p.files_done >= p.files_total
        early = now - start < _FIRST_LINE_S
        if (done and not printed[0]) or (
            not done and (early or now - last[0] < (0.5 if stream.isatty() else 2.0))
        ):
            return
        last[0] = now
        printed[0] = True
        current = ""
        if p.current and not done:
            page_done, page_total = p.doc_pages
            current = f"{p.current} p. {page_done:,}/{page_total:,}, " if page_total else f"{p.current}, "
        pages = f", {p.page_rate:,.0f} pages/s" if p.pages_done and p.page_rate > 0 else ""
        line = (
            f"reading: {current}{p.files_done:,}/{p.files_total:,} files, "
            f"{p.bytes_done / 1e6:,.1f}/{p.bytes_total / 1e6:,.1f} MB, "
            f"{p.rate / 1e6:,.1f} MB/s{pages}, ETA {_duration(p.eta_s)}"
        )
        stream.write(("\r" + line + ("\n" if done else "")) if stream.isatty() else line + "\n")
        stream.flush()

    return show


def _load_corpus(paths: Sequence[str], include: Sequence[str] = ()) -> Corpus:
    from longdesk.engine.corpus.options import LoadOptions

    try:
        return load_sources(
            [Path(p) for p in paths],
            options=LoadOptions(force_include=tuple(include)),
            cache_dir=Paths.default().cache,
            progress=_load_progress(sys.stderr),
        )
    except SourceError as exc:
        raise CliError(EXIT_BAD_INPUT, str(exc)) from exc


def _model_path(ns: argparse.Namespace, app_paths: Paths) -> Path:
    settings, warning = load_settings(app_paths.config)
    if warning:
        print(f"longdesk: {warning}", file=sys.stderr)
    try:
        return resolve_model(app_paths, settings, ns.model)
    except DefaultModelError as exc:
        raise CliError(EXIT_MODEL, str(exc)) from exc


def _prompt_kind(header: GGUFHeader, wanted: str) -> PromptKind:
    try:
        kind = PromptKind(wanted or "auto")
    except ValueError:
        kind = PromptKind.AUTO  # the backend refuses it with a clear error when it loads
    return detect_prompt_kind(header)[0] if kind is PromptKind.AUTO else kind


def _plan(
    corpus: Corpus, model: Path, reserved_output: int, prompt_format: str = "auto"
) -> tuple[ContextPlan, int]:
    """Pack and count exactly with the model's own tokenizer, counts cached by content.

    The vocabulary (about a second to load for 262K tokens) is loaded only when a count is not
    in the cache, so a second run on the same corpus and model loads nothing.
    """
    from longdesk.engine.backends.local_load import Tokenizer, inspect_model
    from longdesk.engine.context.tokens import ExactCounter, gguf_identity

    try:
        header = inspect_model(model)
    except BackendError as exc:
        raise _fail(exc) from exc
    loaded: list[Tokenizer] = []

    def tokenizer() -> Tokenizer:
        if not loaded:
            try:
                loaded.append(Tokenizer(model))
            except BackendError as exc:
                raise _fail(exc) from exc
        return loaded[0]

    counter = ExactCounter(
        lambda text: tokenizer().count(text),
        gguf_identity(model),
        cache_dir=Paths.default().cache,
        vocabulary=lambda: tokenizer().pieces(),
    )
    try:
        window = header.context_length or 4096
        # A base model reads the reading format's header, not the citing contract: count that.
        instructions = reading_header() if _prompt_kind(header, prompt_format) is PromptKind.READING else None
        plan = pack(corpus, counter, window, instructions=instructions, reserved_output=reserved_output)
    finally:
        counter.close()
        for t in loaded:
            t.close()
    return plan, window


def cmd_inspect(ns: argparse.Namespace, out: TextIO) -> int:
    app_paths = Paths.default()
    corpus = _load_corpus(ns.paths, ns.include)
    model = _model_path(ns, app_paths)
    plan, _window = _plan(corpus, model, ns.max_tokens)
    tokens = {s.doc_id: s.tokens for s in plan.spans}
    print(f"Corpus: {len(corpus.documents)} document(s); tokens counted with {model.name}", file=out)
    width = max((len(d.name) for d in corpus.documents), default=10)
    print(f"  {'id':<7} {'document':<{width}}  {'kind':<9} {'extent':>12} {'tokens':>10}", file=out)
    for doc in corpus.documents:
        flags = f"  [{', '.join(sorted(doc.flags))}]" if doc.flags else ""
        print(
            f"  {doc.doc_id:<7} {doc.name:<{width}}  {doc.kind.value:<9} {doc.extent():>12} "
            f"{tokens[doc.doc_id]:>10,}{flags}",
            file=out,
        )
        for note in doc.notes:
            print(f"          note: {note}", file=out)
    if corpus.issues:
        print(f"Left out: {len(corpus.issues)} file(s)", file=out)
        for issue in corpus.issues:
            print(f"  {issue.problem.value:<8} {issue.source}: {issue.reason}", file=out)
    print(
        f"Total: {plan.prefix_tokens:,} tokens (packed corpus with instructions and anchor markup)", file=out
    )
    print(f"Budget: {plan.budget.describe()}", file=out)
    for line in plan.describe_overflow():
        print(f"  {line}", file=out)
    if ns.show_packed:
        out.write(plan.system_text)
    return EXIT_OK if plan.budget.fits or not ns.strict else EXIT_FIT


def cmd_models(ns: argparse.Namespace, out: TextIO) -> int:
    app_paths = Paths.default()
    settings, warning = load_settings(app_paths.config)
    if warning:
        print(f"longdesk: {warning}", file=sys.stderr)
    try:
        entries = known_models(app_paths, settings, ns.model or [])
    except DefaultModelError as exc:
        raise CliError(EXIT_MODEL, str(exc)) from exc
    bad = 0
    for e in entries:
        if e.error:
            bad += 1
            print(f"{e.path}  [{e.origin}]\n  error: {e.error}", file=out)
            continue
        assert e.memory is not None
        print(f"{e.path}  [{e.origin}]", file=out)
        print(
            f"  {e.name}: {e.architecture}, {e.quantization}, {e.size_bytes / 1e6:,.0f} MB, "
            f"context {e.context_length:,} tokens",
            file=out,
        )
        print(f"  memory: {e.memory.describe()}", file=out)
    from longdesk.engine.kernels import active_ops

    print(f"ops: {active_ops().describe()}", file=out)
    return EXIT_BAD_INPUT if bad and ns.model else EXIT_OK


def _local_settings(ns: argparse.Namespace, app_paths: Paths, n_ctx: int) -> LocalSettings:
    from longdesk.engine.backends.local_load import LocalSettings

    settings, _warning = load_settings(app_paths.config)
    return LocalSettings(
        prompt_format=getattr(ns, "prompt_format", None) or settings.prompt_format,
        n_ctx=n_ctx,
        n_threads=max(0, ns.threads),
        snapshot_dir=None if ns.no_snapshot else app_paths.snapshots,
        snapshot_budget_bytes=int(settings.snapshot_budget_gb * (1 << 30)),
    )


def _check_memory(model: Path, settings: LocalSettings) -> None:
    """Refuse, before anything is loaded, a context the memory planner says will not fit."""
    from longdesk.engine.backends.local_load import inspect_model, resolve_settings
    from longdesk.engine.models.memory import plan_placement

    try:
        header = inspect_model(model)
        s = resolve_settings(settings, header)
    except BackendError as exc:
        raise _fail(exc) from exc
    placement = plan_placement(header, s.n_ctx, s.n_gpu_layers or 0, swa_full=s.full_swa())
    if not placement.memory.fits:
        raise CliError(EXIT_FIT, f"{model.name} does not fit in memory: {placement.refusal()}")


def cmd_ask(ns: argparse.Namespace, out: TextIO) -> int:
    from longdesk.app.cli import hosted_ask

    corpus = _load_corpus(ns.paths, ns.include)
    if ns.backend == "hosted" or (ns.backend is None and (ns.preset or ns.base_url)):
        return _ask_hosted(ns, out, corpus)
    try:
        return _ask_local(ns, out, corpus)
    except CliError as exc:
        # The local backend cannot serve (no model, does not fit, load failed): offer the
        # hosted one, through the same consent, when the user has set one up.
        if exc.code not in (EXIT_MODEL, EXIT_FIT) or not hosted_ask.hosted_wanted(ns):
            raise
        print(f"longdesk: the local model cannot serve this: {exc.message}", file=sys.stderr)
        print(f"longdesk: offering {hosted_ask.endpoint_label(ns)} instead", file=sys.stderr)
        return _ask_hosted(ns, out, corpus)


def _ask_hosted(ns: argparse.Namespace, out: TextIO, corpus: Corpus) -> int:
    from longdesk.app.cli import hosted_ask

    with sigint_cancels() as cancel:
        try:
            return hosted_ask.run_hosted(ns, out, corpus, cancel)
        except hosted_ask.HostedCliError as exc:
            raise CliError(_EXIT_FOR_KIND.get(exc.kind, EXIT_HOSTED), exc.message) from exc


def _open_local(model: Path, settings: LocalSettings, app_paths: Paths) -> LocalBackend | RemoteBackend:
    """The model through the resident worker (loaded once, kept between runs), else in this process.

    Raises:
        BackendError: the model cannot be loaded.
    """
    from longdesk.app import resident
    from longdesk.engine.backends.local import LocalBackend

    keep = resident.keep_alive_s()
    if keep > 0 and resident.supported():
        try:
            conn = resident.connect(
                app_paths.config, start=True, keep_alive=keep, log=app_paths.logs / logs.WORKER_LOG_FILE
            )
        except resident.ResidentUnavailable as exc:
            print(f"longdesk: no resident worker ({exc}); loading the model here", file=sys.stderr)
        else:
            remote = resident.RemoteBackend(conn, model, settings)
            if remote.kept:
                print(
                    f"longdesk: {model.name} is already loaded in the worker (pid {remote.pid})",
                    file=sys.stderr,
                )
            else:
                print(
                    f"longdesk: loaded {model.name} in a worker (pid {remote.pid}) that keeps it for "
                    f"{keep:.0f} s after the last question ({resident.KEEP_ALIVE_ENV}=0 turns this off; "
                    "`longdesk worker stop` ends it)",
                    file=sys.stderr,
                )
            return remote
    return LocalBackend(model, settings)


def _ask_local(ns: argparse.Namespace, out: TextIO, corpus: Corpus) -> int:
    app_paths = Paths.default()
    model = _model_path(ns, app_paths)
    if ns.ctx:
        _check_memory(model, _local_settings(ns, app_paths, ns.ctx))
    user_settings, _warning = load_settings(app_paths.config)
    plan, window = _plan(corpus, model, ns.max_tokens, ns.prompt_format or user_settings.prompt_format)
    if not plan.budget.fits:
        raise CliError(
            EXIT_FIT,
            f"the corpus does not fit {model.name}: {plan.budget.describe()}; "
            "leave documents out or choose a model with a larger context",
        )
    # Context: prefix + template + question + answer, rounded up; never above the trained size.
    wanted = plan.prefix_tokens + ns.max_tokens + 1024
    n_ctx = ns.ctx or min(window, (wanted + 1023) // 1024 * 1024)
    settings = _local_settings(ns, app_paths, n_ctx)
    with sigint_cancels() as cancel:
        print(
            f"longdesk: {len(corpus.documents)} document(s), {plan.prefix_tokens:,} tokens; "
            f"loading {model.name} (context {n_ctx:,})",
            file=sys.stderr,
        )
        try:  # the backend refuses a context that will not fit before loading anything
            backend = _open_local(model, settings, app_paths)
        except BackendError as exc:
            raise _fail(exc) from exc
        try:
            return _run_ask(backend, plan, ns, out, cancel, corpus)
        finally:
            backend.close()


@contextlib.contextmanager
def sigint_cancels() -> Iterator[threading.Event]:
    """Ctrl-C sets the yielded event (work stops between chunks); a second Ctrl-C quits at once."""
    cancel = threading.Event()

    def on_sigint(_sig: int, _frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nlongdesk: stopping (Ctrl-C again to quit at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_ask(
    backend: LocalBackend | RemoteBackend,
    plan: ContextPlan,
    ns: argparse.Namespace,
    out: TextIO,
    cancel: threading.Event,
    corpus: Corpus | None = None,
) -> int:
    progress = ProgressPrinter(sys.stderr)
    failures: list[Failed] = []
    usage: list[Usage] = []
    tracker = CitationTracker(corpus) if corpus is not None else None

    def on_event(ev: Event) -> None:
        if isinstance(ev, Progress):
            if ev.stage == Stage.PREFILL:
                progress(ev)
            elif ev.stage == Stage.RESUME:
                print(f"longdesk: resuming from a checkpoint at {ev.done:,} tokens", file=sys.stderr)
        elif isinstance(ev, AnswerDelta):
            out.write(ev.text)
            out.flush()
            if tracker is not None:
                tracker.feed(ev.text)
        elif isinstance(ev, ThinkingDelta):
            sys.stderr.write(ev.text)
        elif isinstance(ev, Usage):
            usage.append(ev)
        elif isinstance(ev, Failed):
            failures.append(ev)

    thinking = ThinkingMode(getattr(ns, "thinking", ThinkingMode.OFF.value))
    offered = backend.describe().thinking_modes
    if thinking not in offered:
        raise CliError(
            EXIT_BAD_INPUT,
            f"{backend.path.name} has no thinking mode {thinking.value!r} (it offers: "
            + ", ".join(m.value for m in offered)
            + ")",
        )
    try:  # the mode is given to read(): think-max puts its preamble before the corpus
        reading = backend.read(plan, on_event, cancel.is_set, thinking=thinking)
    except BackendError as exc:
        raise _fail(exc) from exc
    if reading.detail.get("snapshot") == "held":
        print(
            f"longdesk: the worker already holds the reading of {reading.prefix_tokens:,} tokens",
            file=sys.stderr,
        )
    elif reading.restored:
        print(
            f"longdesk: restored the reading of {reading.prefix_tokens:,} tokens from a snapshot "
            f"in {reading.seconds:.1f} s",
            file=sys.stderr,
        )
    else:
        note = reading.detail.get("snapshot_note", "")
        print(
            f"longdesk: read {reading.prefix_tokens:,} tokens in {reading.seconds:.1f} s; "
            f"snapshot {reading.detail.get('snapshot', 'none')}" + (f" ({note})" if note else ""),
            file=sys.stderr,
        )
    result = backend.ask(
        reading,
        (),
        ns.question,
        AskOptions(thinking=thinking, max_output_tokens=ns.max_tokens),
        on_event,
        cancel.is_set,
    )
    out.write("\n")
    out.flush()
    if tracker is not None:
        tracker.finish()
        print_citations(tracker, sys.stderr)
    if isinstance(result, Failed):
        raise CliError(_EXIT_FOR_KIND.get(result.kind, EXIT_MODEL), result.message)
    for u in usage:
        print(
            f"longdesk: {u.output_tokens} tokens in {u.seconds:.1f} s ({u.tokens_per_s:.1f} tok/s), "
            f"stop: {result.stop_reason}",
            file=sys.stderr,
        )
    if result.stop_reason == StopReason.REPEATED:
        print(f"longdesk: {REPEATED_NOTE}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.stop_reason == StopReason.CANCELLED else EXIT_OK


def cmd_key(ns: argparse.Namespace, _out: TextIO) -> int:
    from longdesk.app.cli import hosted_ask

    try:
        return hosted_ask.cmd_key(ns, sys.stdin)
    except hosted_ask.HostedCliError as exc:
        raise CliError(EXIT_HOSTED, exc.message) from exc


def cmd_worker(ns: argparse.Namespace, out: TextIO) -> int:
    from longdesk.app import resident

    reply = resident.request(Paths.default().config, "stop" if ns.action == "stop" else "ping")
    if reply is None:
        print("longdesk: no worker is running", file=out)
        return EXIT_OK
    if ns.action == "stop":
        print(f"longdesk: the worker (pid {reply.get('pid')}) is stopping", file=out)
    else:
        model = reply.get("model") or "no model yet"
        print(f"longdesk: a worker is running (pid {reply.get('pid')}): {model}", file=out)
    return EXIT_OK


def cmd_batch(ns: argparse.Namespace, out: TextIO) -> int:
    from longdesk.app.cli import batch

    return batch.cmd_batch(ns, out)


def _add_include(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="read files matching this gitignore-style pattern even where a default rule leaves them "
        "out (e.g. 'build/', '*.svg' whole instead of its words only); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longdesk",
        description="Read whole books, document sets and codebases with one long-context model. "
        "With no command, opens the desktop window; `longdesk PATH...` opens it on those files and "
        "folders (`longdesk -- ask` for a file named like a command).",
    )
    parser.add_argument("--version", action="version", version=f"longdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer a question about files and folders, streamed to stdout")
    ask.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to read")
    ask.add_argument("-q", "--question", required=True, help="the question")
    ask.add_argument("--model", help="a GGUF model file (default: the embedded Gemma 3 270M)")
    ask.add_argument("--max-tokens", type=int, default=512, help="longest answer, in tokens")
    ask.add_argument(
        "--prompt-format",
        choices=("auto", "reading", "chat"),
        help="how the local model is asked: reading (base models), chat (instruction models); "
        "default: the settings' choice, else auto (from the model file)",
    )
    ask.add_argument("--threads", type=int, default=0, help="CPU threads (default: physical cores)")
    ask.add_argument(
        "--thinking",
        choices=[m.value for m in ThinkingMode],
        default=ThinkingMode.OFF.value,
        help="reasoning before the answer, where the model has it (DeepSeek-V4: off, high, max)",
    )
    hosted = ask.add_argument_group("hosted endpoint (documents leave this machine only after consent)")
    hosted.add_argument(
        "--backend",
        choices=("local", "hosted"),
        help="where the model runs (default: hosted when --preset or --base-url is given, else local; "
        "a local model that cannot serve offers a hosted endpoint that is set up)",
    )
    hosted.add_argument("--preset", choices=("deepseek", "openai-compatible"), help="kind of endpoint")
    hosted.add_argument("--base-url", help="endpoint base URL, e.g. http://127.0.0.1:8000/v1")
    hosted.add_argument(
        "--api-model", help="model name at the endpoint (default: the preset's, or the first listed)"
    )
    hosted.add_argument("--api-context", type=int, default=0, help="the endpoint's context size in tokens")
    hosted.add_argument("--api-tokenizer", help="the GGUF the server runs, for exact token counts")
    hosted.add_argument("--yes", action="store_true", help="agree to sending the documents without asking")
    _add_include(ask)
    ask.add_argument("--ctx", type=int, default=0, help="context size in tokens (default: corpus + answer)")
    ask.add_argument("--no-snapshot", action="store_true", help="neither restore nor save a snapshot")
    ask.set_defaults(func=cmd_ask)

    from longdesk.app.cli.batch import add_arguments as batch_arguments

    batch = sub.add_parser(
        "batch", help="answer a list of questions about a corpus unattended, with a report"
    )
    batch_arguments(batch)
    batch.set_defaults(func=cmd_batch)

    insp = sub.add_parser("inspect", help="list documents and exact token counts, and whether they fit")
    insp.add_argument("paths", nargs="+", metavar="PATH")
    insp.add_argument("--model", help="count with this GGUF's tokenizer")
    insp.add_argument("--max-tokens", type=int, default=512, help="output reserve in the budget")
    insp.add_argument("--show-packed", action="store_true", help="print the packed text after the table")
    insp.add_argument("--strict", action="store_true", help="exit 4 when the corpus does not fit")
    _add_include(insp)
    insp.set_defaults(func=cmd_inspect)

    models = sub.add_parser("models", help="list known GGUF models and whether they fit this machine")
    models.add_argument("--model", action="append", help="also describe this GGUF file (repeatable)")
    models.set_defaults(func=cmd_models)

    key = sub.add_parser("key", help="keep a hosted endpoint's API key in the OS keyring (read from stdin)")
    key.add_argument("action", choices=("set", "forget"))
    key.add_argument("--preset", choices=("deepseek", "openai-compatible"), help="kind of endpoint")
    key.add_argument("--base-url", help="endpoint base URL (default: the preset's)")
    key.set_defaults(func=cmd_key)

    work = sub.add_parser(
        "worker", help="the background process that keeps a local model loaded between `ask` runs"
    )
    work.add_argument("action", choices=("status", "stop"))
    work.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        print("longdesk: the window is started by the `longdesk` launcher; see --help", file=sys.stderr)
        return EXIT_BAD_INPUT
    logs.configure(Paths.default().logs)
    try:
        code: int = ns.func(ns, sys.stdout)
    except CliError as exc:
        print(f"longdesk: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\nlongdesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the log
        print(f"longdesk: {logs.internal_error(f'running `{ns.command}`', exc)}", file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    raise SystemExit(main())
