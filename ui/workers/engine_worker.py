"""The engine worker: the one thread that owns the model, and the controller that feeds it.

Design (``style.md`` §2, ``architecture.md`` §4): the window sends immutable requests with
ids; ``EngineWorker`` runs them one at a time on its private ``QThread`` and is the only
caller of the Backend. Cancel is a ``threading.Event`` set from the GUI thread and checked by
the backend between prefill chunks and tokens. Streamed text is coalesced to at most ~30
signals a second and progress to ~10. Failures are values (``failed(id, Failed)``); the
window drops every signal whose id is not the one it waits for.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from PySide6.QtCore import QObject, QThread, Signal, Slot

from longdesk.app import heap
from longdesk.app.consent import looks_secret, prepare_consent
from longdesk.app.hosted_endpoint import HostedSpec, open_hosted
from longdesk.app.logs import internal_error
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    Backend,
    BackendError,
    Capabilities,
    Event,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    StopReason,
    ThinkingDelta,
    Turn,
    Usage,
    capabilities,
)
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Corpus

_log = logging.getLogger(__name__)
STREAM_INTERVAL_S = 1 / 30
PROGRESS_INTERVAL_S = 0.1

if TYPE_CHECKING:  # the local backend imports numpy and llama.cpp: not needed to open a window
    from longdesk.engine.backends.local import LocalSettings
    from longdesk.engine.context.tokens import ExactCounter

BackendFactory = Callable[[Path, "LocalSettings"], Backend]


def local_backend(path: Path, settings: LocalSettings) -> Backend:
    """The default factory: a llama.cpp model loaded in-process."""
    from longdesk.engine.backends.local import LocalBackend

    return LocalBackend(path, settings)


@dataclass(frozen=True, slots=True)
class LoadModel:
    request_id: int
    path: Path
    settings: LocalSettings


@dataclass(frozen=True, slots=True)
class PlanCorpus:
    """Pack and count ``corpus`` with the loaded model's tokenizer.

    With ``cache_dir`` the counts are the CLI's: cut into pieces where that is provably exact,
    and cached by content there (a corpus counted once is counted again in no time).
    """

    request_id: int
    corpus: Corpus
    reserved_output: int
    reserved_thinking: int = 0
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class CountText:
    request_id: int
    text: str


@dataclass(frozen=True, slots=True)
class AskQuestion:
    """Read ``plan`` unless it is already held, then answer ``question`` after ``history``.

    With ``partial`` (a hosted answer that was cut off), continue that answer instead: only
    the new text streams.
    """

    request_id: int
    plan: ContextPlan
    history: tuple[Turn, ...]
    question: str
    options: AskOptions
    partial: str = ""


@dataclass(frozen=True, slots=True)
class OpenHosted:
    """Open a hosted endpoint (its key is looked up here, on the worker); prices in ``config_dir``,
    token counts cached in ``cache_dir``."""

    request_id: int
    spec: HostedSpec
    config_dir: Path
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class PrepareConsent:
    """Pack and count ``corpus`` for the hosted backend and say what sending it means.

    Secret-looking documents are left out unless ``send_secrets``; the result's plan is what
    an ``AskQuestion`` on this worker sends once ``Permit`` has unlocked its fingerprint.
    """

    request_id: int
    session_id: str
    corpus: Corpus
    options: AskOptions
    send_secrets: bool = False


@dataclass(frozen=True, slots=True)
class Permit:
    """The user agreed: let the hosted backend send the prefix with this fingerprint."""

    request_id: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    request_id: int


Request = LoadModel | OpenHosted | PlanCorpus | PrepareConsent | Permit | CountText | AskQuestion | Shutdown


class EngineSignals(QObject):
    """The signals a worker emits and its controller re-emits on the GUI thread (see below)."""

    model_loaded = Signal(int, object)
    consent_prepared = Signal(int, object)
    note_reported = Signal(int, str)
    planned = Signal(int, object)
    counted = Signal(int, int)
    progressed = Signal(int, object)
    read_finished = Signal(int, object)
    text_streamed = Signal(int, str, str)
    usage_reported = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, object)

    RELAYED = (
        "model_loaded",
        "consent_prepared",
        "note_reported",
        "planned",
        "counted",
        "progressed",
        "read_finished",
        "text_streamed",
        "usage_reported",
        "finished",
        "failed",
    )


class EngineWorker(EngineSignals):
    """Owns the Backend on a private QThread; the only object that ever calls it.

    Signals:
        model_loaded(int, object): BackendInfo of the model now loaded.
        planned(int, object): the ContextPlan of a corpus.
        counted(int, int): tokens of a text.
        progressed(int, object): Progress of a long step (prefill, restore), throttled.
        read_finished(int, object): the Reading once the corpus is held (``restored`` says how).
        text_streamed(int, str, str): coalesced text; the kind is "answer" or "thinking".
        usage_reported(int, object): Usage of a turn.
        finished(int, object): Finished of an answer.
        failed(int, object): Failed, for any request (never an uncaught exception).
        consent_prepared(int, object): the ConsentRequest of a PrepareConsent.
        note_reported(int, str): something the user should read (e.g. which model was listed).
    """

    def __init__(self, factory: BackendFactory = local_backend) -> None:
        super().__init__()
        self._factory = factory
        self._backend: Backend | None = None
        self._caps = Capabilities()  # what the open backend can do beyond Backend, checked once
        self._hosted: HostedBackend | None = None  # the same object, when it was opened as hosted
        self._model_path: Path | None = None
        self._counter: ExactCounter | None = None
        self._reading: Reading | None = None
        self._read_prefix = ""  # system_digest() of the plan the backend has read
        self._events: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- GUI-thread API
    def arm(self, request_id: int) -> None:
        """Create the cancel flag of a request before it is queued (GUI thread)."""
        with self._lock:
            self._events[request_id] = threading.Event()

    def cancel(self, request_id: int) -> None:
        """Ask a running or queued request to stop (thread-safe; takes effect within a chunk)."""
        with self._lock:
            event = self._events.get(request_id)
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        with self._lock:
            events = list(self._events.values())
        for event in events:
            event.set()

    # ---------------------------------------------------------------- worker thread
    @Slot(object)
    def run(self, req: Request) -> None:
        """Run one request on the worker thread; every outcome is a signal."""
        with self._lock:
            event = self._events.setdefault(req.request_id, threading.Event())
        try:
            if event.is_set() and not isinstance(req, Shutdown):
                self.failed.emit(req.request_id, Failed(FailureKind.CANCELLED, "cancelled before it started"))
                return
            self._dispatch(req, event)
        except BackendError as exc:
            self.failed.emit(req.request_id, Failed(exc.kind, exc.message))
        except Exception as exc:  # noqa: BLE001 - errors are values: shown to the user, never lost
            what = f"running {type(req).__name__}"
            self.failed.emit(
                req.request_id, Failed(FailureKind.INTERNAL, internal_error(what, exc, logger=_log))
            )
        finally:
            with self._lock:
                self._events.pop(req.request_id, None)
            if isinstance(req, _LARGE_WORK):
                heap.trim()  # what the request built and dropped goes back to the system

    def _dispatch(self, req: Request, event: threading.Event) -> None:
        """One handler per request type; mypy proves that every ``Request`` has one."""
        match req:
            case LoadModel():
                self._load_model(req)
            case OpenHosted():
                self._open_hosted(req)
            case PrepareConsent():
                self._prepare_consent(req)
            case Permit():
                self._permit(req)
            case PlanCorpus():
                self._plan_corpus(req, event)
            case CountText():
                self.counted.emit(req.request_id, self._need_backend().count_tokens(req.text))
            case AskQuestion():
                self._ask(req, event)
            case Shutdown():
                self._shutdown()
            case _:
                assert_never(req)

    def _load_model(self, req: LoadModel) -> None:
        self._close_backend()
        self._backend = self._factory(req.path, req.settings)
        self._caps = capabilities(self._backend)
        self._model_path = req.path
        self.model_loaded.emit(req.request_id, self._backend.describe())

    def _open_hosted(self, req: OpenHosted) -> None:
        self._close_backend()
        hosted, note = open_hosted(req.spec, req.config_dir, req.cache_dir)
        hosted.warm()
        self._backend, self._hosted, self._caps = hosted, hosted, capabilities(hosted)
        if note:
            self.note_reported.emit(req.request_id, note)
        self.model_loaded.emit(req.request_id, hosted.describe())

    def _prepare_consent(self, req: PrepareConsent) -> None:
        hosted = self._need_hosted()
        docs = req.corpus.documents
        include = frozenset(d.doc_id for d in docs if looks_secret(d)) if req.send_secrets else frozenset()
        request = prepare_consent(req.session_id, req.corpus, hosted, req.options, include=include)
        self.consent_prepared.emit(req.request_id, request)

    def _permit(self, req: Permit) -> None:
        self._need_backend()
        if self._caps.needs_permit is None:
            raise BackendError(FailureKind.INTERNAL, "this backend sends nothing off the machine")
        self._caps.needs_permit.permit(req.fingerprint)

    def _plan_corpus(self, req: PlanCorpus, event: threading.Event) -> None:
        backend = self._need_backend()
        window = backend.describe().context_window
        count = self._exact_counter(req.cache_dir) if req.cache_dir is not None else backend.count_tokens
        plan = pack(
            req.corpus,
            count,
            window,
            instructions=self._caps.instructions,  # a base model's reading header
            reserved_output=req.reserved_output,
            reserved_thinking=req.reserved_thinking,
            cancelled=event.is_set,  # a long count stops on cancel or shutdown
        )
        if self._counter is not None:
            self._counter.flush()
        self.planned.emit(req.request_id, plan)

    def _shutdown(self) -> None:
        self._close_backend()
        thread = self.thread()
        if thread is not None:
            thread.quit()

    def _need_backend(self) -> Backend:
        if self._backend is None:
            raise BackendError(FailureKind.MODEL, "no model is loaded yet")
        return self._backend

    def _exact_counter(self, cache_dir: Path) -> Callable[[str], int]:
        """The loaded model's count, exact and fast on long texts (``engine.context.tokens``).

        Whether texts can be cut after newlines is proven once per model from its vocabulary
        (loaded on its own, vocabulary only, the first time), and remembered in the cache.
        """
        backend, path = self._need_backend(), self._model_path
        if self._counter is None and path is not None and path.is_file():
            from longdesk.engine.context.tokens import ExactCounter, gguf_identity

            def pieces() -> Iterator[bytes]:
                from longdesk.engine.backends.local_load import Tokenizer

                tokenizer = Tokenizer(path)
                try:
                    yield from tokenizer.pieces()
                finally:
                    tokenizer.close()

            self._counter = ExactCounter(
                backend.count_tokens, gguf_identity(path), cache_dir=cache_dir, vocabulary=pieces
            )
        return self._counter if self._counter is not None else backend.count_tokens

    def _need_hosted(self) -> HostedBackend:
        self._need_backend()
        if self._hosted is None:
            raise BackendError(FailureKind.INTERNAL, "this worker holds no hosted backend")
        return self._hosted

    def _close_backend(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            self._hosted, self._caps = None, Capabilities()
            if self._counter is not None:
                self._counter.close()
                self._counter = None
            self._reading = None
            self._read_prefix = ""
            backend.close()

    def _ask(self, req: AskQuestion, event: threading.Event) -> None:
        backend = self._need_backend()
        rid = req.request_id
        stream = _Coalescer(lambda kind, text: self.text_streamed.emit(rid, kind, text))
        last_progress = [0.0]

        def on_event(ev: Event) -> None:
            match ev:
                case AnswerDelta():
                    stream.add("answer", ev.text)
                case ThinkingDelta():
                    stream.add("thinking", ev.text)
                case Progress():
                    now = time.monotonic()
                    if ev.done >= ev.total or now - last_progress[0] >= PROGRESS_INTERVAL_S:
                        last_progress[0] = now
                        self.progressed.emit(rid, ev)
                case Usage():
                    stream.flush()
                    self.usage_reported.emit(rid, ev)
                case Failed():
                    stream.flush()
                    self.failed.emit(rid, ev)
                case Finished():
                    pass  # the answer's end comes back as ask's result, below
                case _:
                    assert_never(ev)

        prefix = req.plan.system_digest()  # not the text itself: 16 MB kept for a million tokens
        if self._reading is None or self._read_prefix != prefix:
            self._reading = None
            reading = backend.read(req.plan, on_event, event.is_set)
            self._reading, self._read_prefix = reading, prefix
            self.read_finished.emit(rid, reading)
        if req.partial and self._caps.resumable is not None:
            result = self._caps.resumable.resume(
                self._reading, req.history, req.question, req.partial, req.options, on_event, event.is_set
            )
        else:
            result = backend.ask(
                self._reading, req.history, req.question, req.options, on_event, event.is_set
            )
        stream.flush()
        if isinstance(result, Failed):
            self.failed.emit(rid, result)
        else:
            self.finished.emit(rid, result if not event.is_set() else Finished(StopReason.CANCELLED))


# Requests that build and drop tens of megabytes on a million-token corpus (``app.heap``).
_LARGE_WORK = (PlanCorpus, PrepareConsent, AskQuestion)


class _Coalescer:
    """Buffers streamed text per kind and emits it at most every ``STREAM_INTERVAL_S``.

    Args:
        emit: called with (kind, text) for each run of one kind, in order.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, emit: Callable[[str, str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._clock = clock
        self._parts: list[tuple[str, str]] = []
        self._last = 0.0

    def add(self, kind: str, text: str) -> None:
        if self._parts and self._parts[-1][0] == kind:
            self._parts[-1] = (kind, self._parts[-1][1] + text)
        else:
            self._parts.append((kind, text))
        if self._clock() - self._last >= STREAM_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._last = self._clock()
        parts, self._parts = self._parts, []
        for kind, text in parts:
            if text:
                self._emit(kind, text)


class EngineController(EngineSignals):
    """Creates the worker's thread, numbers and queues requests, and shuts it down in order.

    It lives on the GUI thread and re-emits the worker's signals there (queued), so the window
    and tests connect to the controller and never run code on the worker thread by accident.

    Signals:
        requested(object): a Request for the worker (queued across threads).
        model_loaded, consent_prepared, note_reported, planned, counted, progressed,
        read_finished, text_streamed, usage_reported, finished, failed: the worker's signals,
        on the GUI thread.
    """

    requested = Signal(object)

    def __init__(
        self,
        factory: BackendFactory = local_backend,
        parent: QObject | None = None,
        *,
        ids: Iterator[int] | None = None,
        name: str = "longdesk-engine",
    ) -> None:
        super().__init__(parent)
        # Controllers of one window share ``ids``, so that an id names one request of one worker.
        self._ids = ids if ids is not None else itertools.count(1)
        self.engine_thread = QThread()
        self.engine_thread.setObjectName(name)
        self.worker = EngineWorker(factory)
        self.worker.moveToThread(self.engine_thread)
        self.requested.connect(self.worker.run)
        for signal in self.RELAYED:
            getattr(self.worker, signal).connect(getattr(self, signal))
        self.engine_thread.start()

    def next_id(self) -> int:
        return next(self._ids)

    def submit(self, make: Callable[[int], Request]) -> int:
        """Number a request, arm its cancel flag and queue it; returns its id."""
        rid = self.next_id()
        self.worker.arm(rid)
        self.requested.emit(make(rid))
        return rid

    def cancel(self, request_id: int) -> None:
        self.worker.cancel(request_id)

    def shutdown(self, wait_ms: int = 10_000) -> bool:
        """Cancel everything, close the backend on its own thread, stop the thread."""
        if not self.engine_thread.isRunning():
            return True
        self.worker.cancel_all()
        self.submit(Shutdown)
        finished = bool(self.engine_thread.wait(wait_ms))
        if not finished:
            self.engine_thread.quit()
            finished = bool(self.engine_thread.wait(1000))
        return finished
