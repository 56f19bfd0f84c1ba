"""The Backend protocol, its optional capabilities, and the records a backend exchanges (architecture §3).

A backend holds a prefix (the packed corpus) and answers questions about it. Local backends
prefill it into a llama.cpp context (restored from a snapshot where one exists); hosted ones
send it first and byte-identical in every request so the provider's prefix cache hits.

Errors are values: ``ask`` and ``read`` report a ``Failed`` event with a kind the UI can
explain instead of raising, except for programming errors.

The events and domain enums live in the leaf module ``engine.events`` (re-exported here).
Beside ``Backend``, three small optional protocols name what only some backends do; the code
that opens a backend checks them once (``capabilities``) and keeps the answer, so nothing
else asks a backend what class it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.events import (
    AnswerDelta,
    BackendError,
    CancelCheck,
    Event,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Stage,
    StopReason,
    ThinkingDelta,
    ThinkingMode,
    Usage,
    Where,
)

__all__ = [
    "AnswerDelta",
    "AskOptions",
    "Backend",
    "BackendError",
    "BackendInfo",
    "CancelCheck",
    "Capabilities",
    "Event",
    "EventSink",
    "Failed",
    "FailureKind",
    "Finished",
    "NeedsPermit",
    "PacksInstructions",
    "Progress",
    "Reading",
    "Resumable",
    "Rewindable",
    "Stage",
    "StopReason",
    "ThinkingDelta",
    "ThinkingMode",
    "Turn",
    "Usage",
    "Where",
    "capabilities",
]


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a backend is, for the model bar, the budget and the consent dialog."""

    name: str  # model name as users know it
    where: Where
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


class Backend(Protocol):
    """What the app asks of a model, wherever it runs. One thread owns each instance."""

    def describe(self) -> BackendInfo: ...

    def count_tokens(self, text: str) -> int: ...

    def read(
        self,
        plan: ContextPlan,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        thinking: ThinkingMode = ThinkingMode.OFF,
        keep_held: bool = False,
    ) -> Reading:
        """Make the model hold ``plan``'s prefix.

        Args:
            thinking: the mode the prefix is read for (a model may write it before the corpus).
            keep_held: keep a prefix this backend already holds as it is (a resident worker's
                next client) instead of restoring or reading it again.

        Raises:
            BackendError: with the kind of the failure (CANCELLED when ``cancelled`` turned true).
        """
        ...

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


@runtime_checkable
class Resumable(Protocol):
    """A backend that can continue an answer that was cut off (hosted streams)."""

    def resume(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        partial_answer: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed: ...


@runtime_checkable
class NeedsPermit(Protocol):
    """A backend that sends the corpus off the machine only once the user agreed to it."""

    def fingerprint(self, plan: ContextPlan) -> str: ...

    def permit(self, fingerprint: str) -> None: ...


@runtime_checkable
class Rewindable(Protocol):
    """A backend whose context can go back to the bare prefix ahead of the next thread."""

    def rewind(self) -> None: ...


@runtime_checkable
class PacksInstructions(Protocol):
    """A backend whose prompt format decides what is packed before the corpus (a base model's
    reading header instead of the citing contract)."""

    @property
    def instructions(self) -> str | None:
        """The text to pack before the corpus; None: the citing contract."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an opened backend can do beyond ``Backend``: each is the backend itself, or None."""

    resumable: Resumable | None = None
    needs_permit: NeedsPermit | None = None
    rewindable: Rewindable | None = None
    packs_instructions: PacksInstructions | None = None

    @property
    def instructions(self) -> str | None:
        """What to pack before the corpus for this backend (None: the citing contract)."""
        return self.packs_instructions.instructions if self.packs_instructions is not None else None


def capabilities(backend: Backend) -> Capabilities:
    """Check the optional protocols once, where a backend is opened."""
    return Capabilities(
        resumable=backend if isinstance(backend, Resumable) else None,
        needs_permit=backend if isinstance(backend, NeedsPermit) else None,
        rewindable=backend if isinstance(backend, Rewindable) else None,
        packs_instructions=backend if isinstance(backend, PacksInstructions) else None,
    )
