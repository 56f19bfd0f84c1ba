"""The events every backend streams and the domain values shared across the engine (a leaf module).

Nothing here imports another Longdesk module, so the corpus, context, models and backends
packages (and the app and ui above them) can all use these types without importing
``engine.backends``. Domain values are enums, never bare strings: ``Where``, ``Stage``,
``StopReason``, ``ThinkingMode`` and ``FailureKind``. They are ``StrEnum``s, so a value still
equals its text (``Stage.PREFILL == "prefill"``) and serialises as that text in JSON.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class ThinkingMode(enum.StrEnum):
    OFF = "off"
    HIGH = "high"
    MAX = "max"


class FailureKind(enum.StrEnum):
    """What went wrong, so that the UI and CLI can explain it and pick an exit code."""

    BAD_INPUT = "bad_input"  # a path, file or request the user gave is unusable
    MODEL = "model"  # the model could not be loaded or run
    MEMORY = "memory"  # would not fit in RAM/VRAM
    CONTEXT = "context"  # the request would not fit the context window
    NETWORK = "network"  # hosted: connection, timeout, cut stream
    AUTH = "auth"  # hosted: key missing or refused
    QUOTA = "quota"  # hosted: balance exhausted, rate limited for too long
    SERVER = "server"  # hosted: the server failed
    CANCELLED = "cancelled"
    CONSENT = "consent"  # hosted: the user has not agreed to send this corpus to this endpoint
    INTERNAL = "internal"


class Where(enum.StrEnum):
    """Where a model runs: on this machine, or on a hosted endpoint (what leaves the machine)."""

    LOCAL = "local"
    HOSTED = "hosted"


class StopReason(enum.StrEnum):
    """Why an answer ended. The last two are the app's: a turn that failed, a stream cut halfway."""

    STOP = "stop"  # the model ended it
    LENGTH = "length"  # the output limit was reached
    REPEATED = "repeated"  # the answer guard stopped a model repeating the source or itself
    CANCELLED = "cancelled"  # the user stopped it
    FAILED = "failed"
    INCOMPLETE = "incomplete"


class Stage(enum.StrEnum):
    """The long step a ``Progress`` event measures."""

    LOAD = "load"  # loading a model
    READ = "read"  # reading source files (bytes)
    COUNT = "count"  # counting a corpus's tokens
    PREFILL = "prefill"  # evaluating the prefix
    QUESTION = "question"  # evaluating a question (and the turns before it)
    RESTORE = "restore"  # restoring a saved snapshot
    RESUME = "resume"  # resuming a prefill from its last checkpoint
    CHECKPOINT = "checkpoint"  # saving a checkpoint during a long prefill
    SNAPSHOT = "snapshot"  # saving the finished prefix state


@dataclass(frozen=True, slots=True)
class Progress:
    """Work done on a long step, with its rate and the time still to go.

    Attributes:
        done, total: units done and to do (tokens unless ``unit`` says otherwise).
        rate: units per second since the step (or this run of it) began; 0 when unknown.
        eta_s: seconds still to go; None when unknown.
        unit: what ``done`` counts: "tokens", "bytes", "files", "pages".
        current: what is being worked on (a file name), or ''.
    """

    stage: Stage
    done: int
    total: int
    rate: float = 0.0
    eta_s: float | None = None
    unit: str = "tokens"
    current: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0


def rate_and_eta(done: int, total: int, elapsed_s: float, *, start: int = 0) -> tuple[float, float | None]:
    """Units per second over ``done - start`` units in ``elapsed_s``, and the seconds left at that rate.

    ``start`` is where this run began (a resumed prefill's checkpoint): units done before it
    took no time now and must not inflate the rate.
    """
    worked = done - start
    if worked <= 0 or elapsed_s <= 0:
        return 0.0, None
    rate = worked / elapsed_s
    return rate, max(0.0, (total - done) / rate)


class RateMeter:
    """Makes ``Progress`` events for one step: the rate and ETA arithmetic in one place.

    Args:
        stage: the step.
        total: units to do.
        start: units already done when the meter starts (a resumed step).
        unit: what the units are.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        stage: Stage,
        total: int,
        *,
        start: int = 0,
        unit: str = "tokens",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage, self.total, self.start, self.unit = stage, total, start, unit
        self._clock = clock
        self._t0 = clock()

    def at(self, done: int, current: str = "") -> Progress:
        """The progress event for ``done`` units now."""
        rate, eta = rate_and_eta(done, self.total, self._clock() - self._t0, start=self.start)
        return Progress(self.stage, done, self.total, rate, eta, self.unit, current)


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token figures of one turn."""

    prompt_tokens: int
    cached_tokens: int
    output_tokens: int
    seconds: float = 0.0
    cost: float | None = None  # hosted only, in the price table's currency
    currency: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Finished:
    stop_reason: StopReason


@dataclass(frozen=True, slots=True)
class Failed:
    kind: FailureKind
    message: str  # one line, in words a user understands
    partial: bool = False  # an answer was started and is kept, marked incomplete


class BackendError(Exception):
    """A failure with a known kind, raised by backend constructors, ``read`` and long engine steps."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


Event = Progress | ThinkingDelta | AnswerDelta | Usage | Finished | Failed
EventSink = Callable[[Event], None]
CancelCheck = Callable[[], bool]
