"""The Backend protocol and the events every backend streams (architecture §3).

A backend holds a prefix (the packed corpus) and answers questions about it. Local backends
prefill it into a llama.cpp context (restored from a snapshot where one exists); hosted ones
send it first and byte-identical in every request so the provider's prefix cache hits.

Errors are values: ``ask`` and ``read`` report a ``Failed`` event with a kind the UI can
explain instead of raising, except for programming errors.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from longdesk.engine.context.plan import ContextPlan


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


@dataclass(frozen=True, slots=True)
class Progress:
    """Work done on a long step (reading the prefix)."""

    stage: str  # "prefill", "restore", "snapshot", "load"
    done: int
    total: int
    rate: float  # units per second (tokens/s for prefill)
    eta_s: float | None


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
    stop_reason: str  # "stop", "length", "cancelled"


@dataclass(frozen=True, slots=True)
class Failed:
    kind: FailureKind
    message: str  # one line, in words a user understands
    partial: bool = False  # an answer was started and is kept, marked incomplete


Event = Progress | ThinkingDelta | AnswerDelta | Usage | Finished | Failed
EventSink = Callable[[Event], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a backend is, for the model bar, the budget and the consent dialog."""

    name: str  # model name as users know it
    where: str  # "local" or "hosted"
    context_window: int  # tokens the backend will accept in one request/context
    thinking_modes: tuple[ThinkingMode, ...] = (ThinkingMode.OFF,)
    architecture: str = ""
    endpoint: str = ""  # hosted: base URL (what leaves the machine goes there)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AskOptions:
    thinking: ThinkingMode = ThinkingMode.OFF
    max_output_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished question and answer of the conversation."""

    question: str
    answer: str
    thinking: str = ""


@dataclass(slots=True)
class Reading:
    """Handle for a prefix a backend holds. Opaque outside the backend that made it.

    Attributes:
        prefix_tokens: exact tokens of the prefix under this backend's tokenizer.
        restored: the state came from a saved snapshot instead of a fresh prefill.
        seconds: how long reading took.
    """

    prefix_tokens: int
    restored: bool = False
    seconds: float = 0.0
    detail: dict[str, object] = field(default_factory=dict)


class BackendError(Exception):
    """Raised by backend constructors and ``read`` for failures with a known kind."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Backend(Protocol):
    """What the app asks of a model, wherever it runs. One thread owns each instance."""

    def describe(self) -> BackendInfo: ...

    def count_tokens(self, text: str) -> int: ...

    def read(self, plan: ContextPlan, on_event: EventSink, cancelled: CancelCheck) -> Reading: ...

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed: ...

    def close(self) -> None: ...
