"""DeepSeek-V4's chat encoding (non-think, think-high, think-max) split into prefix and suffix.

Layout, per the official ``encoding_dsv4.py`` rules and the templates shipped with llama.cpp:
``BOS [max-effort preamble] {system} <｜User｜>{q1}<｜Assistant｜></think>{a1}<｜end▁of▁sentence｜>
… <｜User｜>{q}<｜Assistant｜>`` then ``<think>`` (thinking: the model writes its reasoning,
``</think>``, then the answer) or ``</think>`` (non-think: the answer directly). Earlier
assistant turns drop their reasoning in both modes. Think-max prepends a fixed preamble right
after BOS, so it changes the prefix: a corpus read for think-max is a different prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from longdesk.engine.dsv4.vocab import ASSISTANT, BOS, EOS, THINK_CLOSE, THINK_OPEN, USER

Thinking = Literal["off", "high", "max"]
Variant = Literal["v4", "v4-0731"]

# The model card recommends at least 384K tokens of context for think-max.
THINK_MAX_MIN_CONTEXT = 393216

_EFFORT_ABSOLUTE = (
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve "
    "the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and "
    "adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, "
    "considered alternative, and rejected hypothesis to ensure absolutely no assumption is left "
    "unchecked.\n\n"
)
_EFFORT_BEYOND = (
    "Reasoning Effort: Beyond maximum — exhaustive, relentless, and uncompromising.\n"
    "You MUST reason with the utmost depth and rigor, leaving absolutely nothing to chance: exhaustively "
    "decompose the problem into its most fundamental components, trace every causal chain to its root, "
    "and resolve the underlying cause rather than any surface symptom.\n"
    "Do not stop reasoning until you have independently verified the solution from multiple angles and "
    "are certain that no assumption remains unchecked and no error remains undiscovered.\n\n"
)


def thinking_of(mode: str) -> Thinking:
    """A thinking mode by name ('off', 'high', 'max'; e.g. a ``ThinkingMode`` value)."""
    for known in ("off", "high", "max"):
        if mode == known:
            return known
    raise ValueError(f"unknown thinking mode {mode!r}; DeepSeek-V4 has off, high and max")


def think_max_note(n_ctx: int) -> str:
    """A warning when the context is below what think-max is recommended to have ('' if fine)."""
    if n_ctx >= THINK_MAX_MIN_CONTEXT:
        return ""
    return (
        f"think-max: DeepSeek recommends at least {THINK_MAX_MIN_CONTEXT:,} tokens of context "
        f"(loaded: {n_ctx:,})"
    )


def effort_preamble(thinking: Thinking, variant: Variant = "v4") -> str:
    """The text placed right after BOS for a thinking mode ('' when there is none).

    The April V4 release has one preamble, for think-max. The 0731 release moved that text to
    think-high and gave think-max a stronger one.
    """
    if variant == "v4":
        return _EFFORT_ABSOLUTE if thinking == "max" else ""
    return {"off": "", "high": _EFFORT_ABSOLUTE, "max": _EFFORT_BEYOND}[thinking]


@dataclass(frozen=True, slots=True)
class PastTurn:
    question: str
    answer: str
    thinking: str = ""  # dropped from the prompt: earlier reasoning is never re-sent


def prefix_text(system_text: str, thinking: Thinking = "off", variant: Variant = "v4") -> str:
    """What is read once: BOS, the effort preamble of ``thinking`` (if any), the system text."""
    return BOS + effort_preamble(thinking, variant) + system_text


def suffix_text(history: Sequence[PastTurn], question: str, thinking: Thinking = "off") -> str:
    """What follows the prefix for ``question`` after ``history``; ends where the model writes."""
    parts = [f"{USER}{t.question}{ASSISTANT}{THINK_CLOSE}{t.answer}{EOS}" for t in history]
    opener = THINK_CLOSE if thinking == "off" else THINK_OPEN
    parts.append(f"{USER}{question}{ASSISTANT}{opener}")
    return "".join(parts)


def encode(
    system_text: str,
    history: Sequence[PastTurn],
    question: str,
    thinking: Thinking = "off",
    variant: Variant = "v4",
) -> str:
    """The whole prompt: ``prefix_text + suffix_text``."""
    return prefix_text(system_text, thinking, variant) + suffix_text(history, question, thinking)


def variant_of(chat_template: str) -> Variant:
    """Which release a GGUF's embedded template belongs to (the 0731 one defines a think-high preamble)."""
    return "v4-0731" if "reasoning_effort_high" in chat_template else "v4"


class ThinkingSplitter:
    """Splits streamed model text into reasoning and answer at the first ``</think>``.

    Text arrives in arbitrary pieces; a piece may end inside the marker, so up to
    ``len(</think>) - 1`` characters are held back until the next piece decides.
    """

    def __init__(self, thinking: bool) -> None:
        self.in_thinking = thinking
        self._held = ""

    def feed(self, text: str) -> list[tuple[Literal["thinking", "answer"], str]]:
        """Return ``(kind, text)`` pieces ready to show; kinds come in order, never mixed."""
        if not self.in_thinking:
            return [("answer", text)] if text else []
        buf = self._held + text
        cut = buf.find(THINK_CLOSE)
        if cut >= 0:
            self.in_thinking = False
            self._held = ""
            out: list[tuple[Literal["thinking", "answer"], str]] = []
            if buf[:cut]:
                out.append(("thinking", buf[:cut]))
            rest = buf[cut + len(THINK_CLOSE) :]
            if rest:
                out.append(("answer", rest))
            return out
        keep = 0
        for n in range(min(len(THINK_CLOSE) - 1, len(buf)), 0, -1):
            if THINK_CLOSE.startswith(buf[-n:]):
                keep = n
                break
        ready, self._held = buf[: len(buf) - keep], buf[len(buf) - keep :]
        return [("thinking", ready)] if ready else []

    def flush(self) -> list[tuple[Literal["thinking", "answer"], str]]:
        """What is still held back when the stream ends."""
        held, self._held = self._held, ""
        if not held:
            return []
        return [("thinking" if self.in_thinking else "answer", held)]
