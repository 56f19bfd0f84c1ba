"""``longdesk batch``: a question list answered unattended over a corpus, with reports.

The corpus is read once per model (or its snapshot restored, or the resident worker's held
state used) and every question is asked as its own thread from that state: the model sees the
corpus and one question, never the answers to the others. Each answer is appended to
``OUT/results.jsonl`` the moment it is finished (``app.batch_store``: a whole record or none),
and ``OUT/report.md`` (and ``OUT/summary.csv`` with ``--csv``) is rewritten atomically after
it (``app.batch_report``). A run killed at any moment and started again with the same
arguments skips what is done and redoes at most the answer that was in flight; a changed
corpus or model is refused unless ``--force`` (mix, marked in the report) or ``--restart``.

``--compare A B …`` answers the same questions with each model or endpoint in turn and writes
one report with the answers side by side. Hosted endpoints are opened, counted and priced, and
asked for consent (``app.cli.batch_hosted``), all before the first question is sent anywhere.

Ctrl-C stops after the answer in progress (it is kept); a second Ctrl-C stops that answer too
(it is not kept). Progress with an ETA goes to stderr; the report paths go to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from longdesk.app.batch_questions import Question, QuestionFileError, read_questions
from longdesk.app.batch_report import ReportInput, csv_summary, markdown_report
from longdesk.app.batch_store import (
    ANSWERED,
    FAILED,
    Outcome,
    ResultsLog,
    RunBusy,
    RunMismatch,
    answer_record,
    corpus_documents,
    corpus_fingerprint,
    exclusive,
    now_iso,
    set_aside,
)
from longdesk.app.citations import DocRef, doc_refs
from longdesk.app.cli import commands as cli
from longdesk.app.cli.batch_targets import Target, targets_from
from longdesk.app.paths import Paths
from longdesk.engine.atomic import atomic_write_text
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    Backend,
    BackendError,
    Event,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    ThinkingDelta,
    ThinkingMode,
    Usage,
)
from longdesk.engine.backends.hosted_presets import PRESETS
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import Stage, StopReason

if TYPE_CHECKING:
    from longdesk.engine.backends.hosted import HostedBackend
    from longdesk.engine.context.plan import ContextPlan

RESULTS = "results.jsonl"
REPORT = "report.md"
SUMMARY = "summary.csv"
# Failures that belong to one question (its own size, its own options): the batch goes on.
_PER_QUESTION = frozenset({FailureKind.CONTEXT, FailureKind.BAD_INPUT})


def _say(line: str) -> None:
    sys.stderr.write(f"longdesk: {line}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------- Ctrl-C
@dataclass(slots=True)
class Stops:
    """Ctrl-C once: stop after this answer (``after``); twice: stop it now (``now``)."""

    after: threading.Event = field(default_factory=threading.Event)
    now: threading.Event = field(default_factory=threading.Event)

    def reading_cancelled(self) -> bool:
        return self.after.is_set() or self.now.is_set()


@contextlib.contextmanager
def ctrl_c_stops() -> Iterator[Stops]:
    stops = Stops()

    def on_sigint(_sig: int, _frame: FrameType | None) -> None:
        if not stops.after.is_set():
            stops.after.set()
            sys.stderr.write("\nlongdesk: stopping after this answer (Ctrl-C again stops it now)\n")
        elif not stops.now.is_set():
            stops.now.set()
            sys.stderr.write("\nlongdesk: stopping now; the answer in progress is not kept\n")
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stops
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------- progress
FAULT_PAUSE_ENV = "LONGDESK_FAULT_ANSWER_PAUSE_S"


class BatchProgress:
    """One line per question on stderr: which, how long, citations, and the ETA of the rest."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.count = 0
        self.seconds: list[float] = []

    def starting(self, label: str, q: Question) -> None:
        self.count += 1
        self.stream.write(f"longdesk: [{self.count}/{self.total}] {label} · {q.qid}: answering…\n")
        self.stream.flush()
        # Fault injection for the kill-and-resume test: widens the time an answer is in flight
        # (the default model answers in a tenth of a second), so a kill can be aimed inside one.
        pause = os.environ.get(FAULT_PAUSE_ENV)
        if pause:
            time.sleep(float(pause))

    def eta(self) -> float | None:
        if not self.seconds:
            return None
        rest = self.seconds[1:] or self.seconds  # the first answer may include a restore
        return (self.total - self.count) * sum(rest) / len(rest)

    def finished(self, label: str, q: Question, record: dict[str, Any]) -> None:
        seconds = float(record.get("seconds", 0.0))
        self.seconds.append(seconds)
        cites = record.get("citations", [])
        located = sum(1 for c in cites if c.get("check") == "located")
        ok = sum(1 for c in cites if c.get("check") == "verified")
        bad = len(cites) - ok - located
        what = "answered" if record.get("status") == ANSWERED else f"FAILED ({record.get('error')})"
        self.stream.write(
            f"longdesk: [{self.count}/{self.total}] {label} · {q.qid}: {what} in {seconds:.1f} s, "
            f"{int(record.get('output_tokens', 0))} tokens, citations {ok} ✓ {bad} ✗"
            f"{f', {located} located' if located else ''}; ETA {cli._duration(self.eta())}\n"
        )
        self.stream.flush()


# ---------------------------------------------------------------------------- one answer
def _answer(
    backend: Backend,
    reading: Reading,
    q: Question,
    options: AskOptions,
    stops: Stops,
    where: str,
    usage_reported: Callable[[], bool],
) -> Outcome | None:
    """Ask ``q`` as a new thread; None when it was stopped halfway (nothing to keep).

    ``usage_reported`` says, after the answer, whether its figures came from the server (False:
    a hosted server sent none and they were counted here).
    """
    answer: list[str] = []
    thinking: list[str] = []
    usage: list[Usage] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, AnswerDelta):
            answer.append(ev.text)
        elif isinstance(ev, ThinkingDelta):
            thinking.append(ev.text)
        elif isinstance(ev, Usage):
            usage.append(ev)

    t0 = time.perf_counter()
    result = backend.ask(reading, (), q.text, options, on_event, stops.now.is_set)
    seconds = time.perf_counter() - t0
    if stops.now.is_set() or (isinstance(result, Finished) and result.stop_reason == StopReason.CANCELLED):
        return None
    if isinstance(result, Failed) and result.kind is FailureKind.CANCELLED:
        return None
    u = usage[-1] if usage else Usage(0, 0, 0)
    outcome = Outcome(
        ANSWERED,
        result.stop_reason if isinstance(result, Finished) else "failed",
        answer="".join(answer),
        thinking="".join(thinking),
        seconds=seconds,
        prompt_tokens=u.prompt_tokens,
        cached_tokens=u.cached_tokens,
        output_tokens=u.output_tokens,
        cost=u.cost,
        currency=u.currency,
        where=where,
        usage_reported=usage_reported(),
    )
    if isinstance(result, Failed):
        return dataclasses.replace(
            outcome,
            status=FAILED,
            stop_reason="incomplete" if result.partial else "failed",
            error=result.message,
            error_kind=result.kind.value,
        )
    return outcome


# ---------------------------------------------------------------------------- the run
@dataclass(slots=True)
class Prepared:
    """A hosted target opened, counted and agreed to (before anything is sent)."""

    backend: HostedBackend
    plan: ContextPlan
    thinking: ThinkingMode


class BatchRun:
    """The state of one ``longdesk batch`` invocation."""

    def __init__(self, ns: argparse.Namespace, out: TextIO) -> None:
        self.ns = ns
        self.out = out
        self.app_paths = Paths.default()
        self.out_dir = Path(ns.out) if ns.out else Path(f"{Path(ns.questions).stem}.batch")
        self.questions: list[Question] = []
        self.targets: list[Target] = []
        self.corpus: Corpus | None = None
        self.refs: dict[str, DocRef] = {}
        self.fingerprint = ""
        self.log = ResultsLog(self.out_dir / RESULTS)
        self.progress = BatchProgress(0, sys.stderr)
        self.failures: list[FailureKind] = []

    # ------------------------------------------------------------ setup
    def options_for(self, q: Question, target: Target, thinking: ThinkingMode | None = None) -> AskOptions:
        return AskOptions(
            thinking=q.thinking or thinking or target.thinking,
            max_output_tokens=q.max_tokens or self.ns.max_tokens,
        )

    def identity(self, target: Target) -> tuple[dict[str, Any], dict[str, Any]]:
        """What must not change under a label's answers (model file or endpoint, options), and
        what the report says about it. Known without loading or contacting anything."""
        from longdesk.engine.context.tokens import gguf_identity

        if target.where == "local":
            assert target.model is not None
            try:
                where = {"model": gguf_identity(target.model)}
            except OSError as exc:
                raise cli.CliError(
                    cli.EXIT_BAD_INPUT, f"cannot open {target.model}: {exc.strerror or exc}"
                ) from exc
            info = {"name": target.model.name, "where": "local"}
        else:
            url = target.base_url or PRESETS[target.preset].base_url
            where = {"endpoint": url.rstrip("/"), "model": target.api_model or "(the server's)"}
            info = {"name": target.api_model or "(the server's)", "where": "hosted", "endpoint": url}
        identity = {
            **where,
            "thinking": target.thinking.value,
            "max_tokens": self.ns.max_tokens,
            "temperature": 0.0,
        }
        return identity, info

    def pending(self, target: Target) -> list[Question]:
        done = self.log.done(target.label, {q.qid: q.key for q in self.questions})
        return [q for q in self.questions if q.qid not in done]

    def write_reports(self) -> None:
        inp = ReportInput(
            Path(self.ns.questions).name,
            self.questions,
            [t.label for t in self.targets],
            self.log,
            self.fingerprint,
        )
        try:
            atomic_write_text(self.out_dir / REPORT, markdown_report(inp))
            if self.ns.csv:
                atomic_write_text(self.out_dir / SUMMARY, csv_summary(inp))
        except OSError as exc:
            raise cli.CliError(
                cli.EXIT_BAD_INPUT, f"cannot write the report in {self.out_dir}: {exc}"
            ) from exc

    def run(self) -> int:
        try:
            self.questions = read_questions(Path(self.ns.questions))
        except QuestionFileError as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, str(exc)) from exc
        self.targets = targets_from(self.ns)
        try:
            with exclusive(self.out_dir):
                return self._run()
        except RunBusy as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, str(exc)) from exc
        except OSError as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, f"cannot use {self.out_dir}: {exc}") from exc

    def _run(self) -> int:
        results = self.out_dir / RESULTS
        try:
            if self.ns.restart:
                aside = set_aside(results)
                if aside is not None:
                    _say(f"earlier results set aside as {aside}")
            self.log = ResultsLog.open(results)
        except OSError as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, f"cannot use {results}: {exc}") from exc
        if self.log.repaired:
            _say(f"cut off a record torn by an earlier interruption ({self.log.repaired} bytes)")
        self.corpus = corpus = cli._load_corpus(self.ns.paths)
        self.refs = doc_refs(corpus)
        self.fingerprint = corpus_fingerprint(corpus)
        try:
            self.log.check_corpus(self.fingerprint, corpus_documents(corpus), mix=self.ns.force)
        except RunMismatch as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, str(exc)) from exc
        except OSError as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, f"cannot write {results}: {exc}") from exc
        for target in self.targets:  # before anything is counted: answers of other settings are refused
            identity, info = self.identity(target)
            self._check_model(target, identity, info)
        work = [(t, self.pending(t)) for t in self.targets]
        total = sum(len(p) for _t, p in work)
        already = len(self.questions) * len(self.targets) - total
        _say(
            f"{len(self.questions)} question(s) × {len(self.targets)} model(s); "
            + (f"{already} already answered in {results}, " if already else "")
            + f"{total} to ask; results in {self.out_dir}"
        )
        self.progress = BatchProgress(total, sys.stderr)
        prepared: dict[str, Prepared] = {}
        code = cli.EXIT_OK
        try:
            for target, pending in work:  # every endpoint priced and agreed to before anything starts
                if target.where == "hosted" and pending:
                    prepared[target.label] = self.prepare_hosted(target, pending)
            with ctrl_c_stops() as stops:
                for target, pending in work:
                    if not pending:
                        continue
                    if stops.after.is_set():
                        break
                    if target.where == "hosted":
                        code = self.run_hosted(target, pending, prepared[target.label], stops)
                    else:
                        code = self.run_local(target, pending, stops)
                    if code != cli.EXIT_OK:
                        break
                stopped = stops.after.is_set() or stops.now.is_set()
        finally:
            for p in prepared.values():
                p.backend.close()
            self.write_reports()
        print(f"report: {self.out_dir / REPORT}", file=self.out)
        print(f"results: {results}", file=self.out)
        if self.ns.csv:
            print(f"summary: {self.out_dir / SUMMARY}", file=self.out)
        if code == cli.EXIT_OK and stopped:
            left = sum(len(self.pending(t)) for t in self.targets)
            _say(f"stopped; {left} question(s) left: run the same command again to go on")
            return cli.EXIT_INTERRUPTED
        if code == cli.EXIT_OK and self.failures:
            _say(f"{len(self.failures)} question(s) could not be answered (see the report); "
                 "the same command asks them again")  # fmt: skip
            return cli._EXIT_FOR_KIND.get(self.failures[0], cli.EXIT_MODEL)
        return code

    # ------------------------------------------------------------ local
    def run_local(self, target: Target, pending: list[Question], stops: Stops) -> int:
        assert target.model is not None
        assert self.corpus is not None
        model = target.model
        max_out = max([self.ns.max_tokens, *(q.max_tokens for q in pending)])
        if self.ns.ctx:
            cli._check_memory(model, cli._local_settings(self.ns, self.app_paths, self.ns.ctx))
        prompt_format = cli._local_settings(self.ns, self.app_paths, 0).prompt_format
        plan, window = cli._plan(self.corpus, model, max_out, prompt_format)
        if not plan.budget.fits:
            raise cli.CliError(
                cli.EXIT_FIT, f"the corpus does not fit {model.name}: {plan.budget.describe()}"
            )
        longest = max(len(q.text.encode()) for q in pending) // 2 + 64  # tokens, generously
        wanted = plan.prefix_tokens + max_out + longest + 1024
        n_ctx = self.ns.ctx or min(window, (wanted + 1023) // 1024 * 1024)
        settings = cli._local_settings(self.ns, self.app_paths, n_ctx)
        _say(f"{len(self.corpus.documents)} document(s), {plan.prefix_tokens:,} tokens; loading {model.name} "
             f"(context {n_ctx:,})")  # fmt: skip
        try:
            backend = cli._open_local(model, settings, self.app_paths)
        except BackendError as exc:
            raise cli._fail(exc) from exc
        try:
            offered = backend.describe().thinking_modes
            if target.thinking not in offered:
                raise cli.CliError(
                    cli.EXIT_BAD_INPUT,
                    f"{model.name} has no thinking mode {target.thinking.value!r} (it offers: "
                    + ", ".join(m.value for m in offered) + ")",
                )  # fmt: skip
            reading = self._read(target, backend, plan, target.thinking, stops)
            if reading is None:
                return cli.EXIT_OK
            return self._ask_all(target, backend, reading, pending, stops, "local")
        finally:
            backend.close()

    # ------------------------------------------------------------ hosted
    def prepare_hosted(self, target: Target, pending: list[Question]) -> Prepared:
        """Open the endpoint, count and price the batch, and ask for consent. Sends nothing."""
        from longdesk.app.cli.batch_hosted import ask_batch_consent, price_batch
        from longdesk.app.consent import ConsentLedger, prepare_consent
        from longdesk.app.hosted_endpoint import HostedSpec, open_hosted
        from longdesk.engine.backends.hosted import HostedBackend

        assert self.corpus is not None
        spec = HostedSpec(
            preset=target.preset,
            base_url=target.base_url,
            model=target.api_model,
            context_window=target.api_context,
            tokenizer_gguf=Path(target.api_tokenizer) if target.api_tokenizer else None,
            thinking=target.thinking,
        )
        try:
            backend, note = open_hosted(spec, self.app_paths.config, self.app_paths.cache)
        except BackendError as exc:
            raise cli._fail(exc) from exc
        if len(pending) > 1 and not backend.config.prime_cache:
            # Each question is its own request, so nothing after the corpus is shared: a first
            # request that ends exactly at the corpus makes the provider keep it as a cache unit
            # that every question then hits (DeepSeek persists units at the end of user input).
            primed = HostedBackend(
                dataclasses.replace(backend.config, prime_cache=True),
                prices=backend.prices,
                count_cache=backend.count_cache,
            )
            backend.close()
            backend = primed
        try:
            if note:
                _say(f"{target.label}: {note}")
            thinking = target.thinking
            if thinking not in backend.describe().thinking_modes:
                _say(f"{target.label}: the {backend.config.preset.label} preset sends no thinking controls; "
                     "asking without them")  # fmt: skip
                thinking = ThinkingMode.OFF
            options = AskOptions(thinking=thinking, max_output_tokens=self.ns.max_tokens)
            request = prepare_consent(f"batch-{self.fingerprint}", self.corpus, backend, options)
            if not request.included:
                raise cli.CliError(cli.EXIT_BAD_INPUT, "every document was left out; nothing to send")
            if not request.fits:
                raise cli.CliError(cli.EXIT_FIT, f"{target.label}: {request.budget}")
            price = price_batch(
                backend, request, [(q.text, self.options_for(q, target, thinking)) for q in pending]
            )
            if not ask_batch_consent(
                request, price, assume_yes=self.ns.yes, stdin=sys.stdin, stderr=sys.stderr
            ):
                raise cli.CliError(
                    cli.EXIT_HOSTED,
                    f"nothing was sent to {request.host}: agree on a terminal, "
                    "or pass --yes to agree in advance",
                )
            ConsentLedger().grant(request, backend)
        except BaseException:
            backend.close()
            raise
        return Prepared(backend, request.plan, thinking)

    def run_hosted(self, target: Target, pending: list[Question], prepared: Prepared, stops: Stops) -> int:
        backend = prepared.backend
        reading = self._read(target, backend, prepared.plan, prepared.thinking, stops)
        if reading is None:
            return cli.EXIT_OK
        return self._ask_all(
            target,
            backend,
            reading,
            pending,
            stops,
            "hosted",
            prepared.thinking,
            usage_reported=lambda: backend.last_usage_reported,
        )

    # ------------------------------------------------------------ shared
    def _check_model(self, target: Target, identity: dict[str, Any], info: dict[str, Any]) -> None:
        try:
            self.log.check_model(target.label, identity, info, mix=self.ns.force)
        except RunMismatch as exc:
            raise cli.CliError(cli.EXIT_BAD_INPUT, str(exc)) from exc

    def _read(
        self,
        target: Target,
        backend: Backend,
        plan: ContextPlan,
        thinking: ThinkingMode,
        stops: Stops,
    ) -> Reading | None:
        printer = cli.ProgressPrinter(sys.stderr)

        def on_event(ev: Event) -> None:
            if isinstance(ev, Progress) and ev.stage == Stage.PREFILL:
                printer(ev)

        try:
            reading = backend.read(plan, on_event, stops.reading_cancelled, thinking=thinking)
        except BackendError as exc:
            if exc.kind is FailureKind.CANCELLED:
                return None
            raise cli._fail(exc) from exc
        how = reading.detail.get("snapshot")
        if how == "held":
            _say(f"{target.label}: the worker already holds the reading of {reading.prefix_tokens:,} tokens")
        elif reading.restored:
            _say(
                f"{target.label}: restored the reading of {reading.prefix_tokens:,} tokens "
                f"in {reading.seconds:.1f} s"
            )
        elif target.where == "local":
            _say(
                f"{target.label}: read {reading.prefix_tokens:,} tokens in {reading.seconds:.1f} s; "
                f"snapshot {how}"
            )
        self.log.append(
            {
                "type": "reading",
                "label": target.label,
                "prefix_tokens": reading.prefix_tokens,
                "restored": reading.restored,
                "seconds": reading.seconds,
                "model_name": backend.describe().name,
                "at": now_iso(),
            }
        )
        return reading

    def _ask_all(
        self,
        target: Target,
        backend: Backend,
        reading: Reading,
        pending: Sequence[Question],
        stops: Stops,
        where: str,
        thinking: ThinkingMode | None = None,
        usage_reported: Callable[[], bool] = lambda: True,
    ) -> int:
        for q in pending:
            if stops.after.is_set():
                return cli.EXIT_OK
            self.progress.starting(target.label, q)
            outcome = _answer(
                backend, reading, q, self.options_for(q, target, thinking), stops, where, usage_reported
            )
            if outcome is None:
                return cli.EXIT_OK  # stopped halfway: not kept, asked again by the next run
            record = answer_record(
                target.label, q.qid, q.key, q.text, outcome, self.fingerprint, self.corpus, self.refs
            )
            try:
                self.log.append(record)
            except OSError as exc:
                raise cli.CliError(cli.EXIT_BAD_INPUT, f"cannot write {self.log.path}: {exc}") from exc
            self.progress.finished(target.label, q, record)
            if outcome.status == FAILED:
                self.failures.append(FailureKind(outcome.error_kind))
            self.write_reports()
            if outcome.status == FAILED and FailureKind(outcome.error_kind) not in _PER_QUESTION:
                _say(f"{target.label}: {outcome.error}; stopping (run the same command again to retry)")
                return cli._EXIT_FOR_KIND.get(FailureKind(outcome.error_kind), cli.EXIT_MODEL)
        return cli.EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``longdesk batch`` flags (ask's model and endpoint flags, plus the batch's own)."""
    p.add_argument("paths", nargs="+", metavar="CORPUS", help="files and folders to read")
    p.add_argument(
        "--questions",
        required=True,
        metavar="FILE",
        help="the questions: text (one a line), .jsonl (id, question, max_tokens, thinking) or .yaml",
    )
    p.add_argument(
        "-o", "--out", metavar="DIR", help="where results and reports go (default: ./QUESTIONS.batch)"
    )
    p.add_argument("--csv", action="store_true", help="also write summary.csv")
    p.add_argument("--compare", nargs="+", metavar="MODEL",
                   help="answer with each of two or more models: default, FILE.gguf, http(s)://HOST/v1 or "
                   "deepseek, with options after commas (thinking=high, label=NAME, model=NAME, context=N, "
                   "tokenizer=FILE.gguf)")  # fmt: skip
    p.add_argument(
        "--force", action="store_true", help="keep answers about another corpus or model and add to them"
    )
    p.add_argument("--restart", action="store_true", help="set earlier results aside and start again")
    p.add_argument("--model", help="a GGUF model file (default: the embedded Gemma 3 270M)")
    p.add_argument("--max-tokens", type=int, default=512, help="longest answer, in tokens")
    p.add_argument("--prompt-format", choices=("auto", "reading", "chat"),
                   help="how a local model is asked: reading (base models), chat (instruction models); "
                   "default: the settings' choice, else auto (from the model file)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: physical cores)")
    p.add_argument("--thinking", choices=[m.value for m in ThinkingMode], default=ThinkingMode.OFF.value,
                   help="reasoning before each answer, where the model has it")  # fmt: skip
    p.add_argument("--ctx", type=int, default=0, help="context size in tokens (default: corpus + answer)")
    p.add_argument("--no-snapshot", action="store_true", help="neither restore nor save a snapshot")
    hosted = p.add_argument_group("hosted endpoint (documents leave this machine only after consent)")
    hosted.add_argument("--backend", choices=("local", "hosted"), help="where the model runs")
    hosted.add_argument("--preset", choices=tuple(PRESETS), help="kind of endpoint")
    hosted.add_argument("--base-url", help="endpoint base URL, e.g. http://127.0.0.1:8000/v1")
    hosted.add_argument("--api-model", help="model name at the endpoint")
    hosted.add_argument("--api-context", type=int, default=0, help="the endpoint's context size in tokens")
    hosted.add_argument("--api-tokenizer", help="the GGUF the server runs, for exact token counts")
    hosted.add_argument("--yes", action="store_true", help="agree to sending the documents without asking")


def cmd_batch(ns: argparse.Namespace, out: TextIO) -> int:
    if ns.force and ns.restart:
        raise cli.CliError(cli.EXIT_BAD_INPUT, "--force and --restart cannot go together")
    return BatchRun(ns, out).run()
