"""How a conversation is written for a model: the prefix, a first question, a follow-up.

A local backend prefills the prefix once (system instructions + corpus), snapshots it, and
then only ever appends: the first question after the prefix, and each follow-up after the
model's previous answer, continuing from the live state. It never re-renders and re-evaluates
the history, and never truncates the cache (DeepSeek-V4 memory cannot be truncated). So a
prompt format is asked for exactly three texts, per thinking mode:

- ``prefix(system_text)``: everything up to where the first question goes;
- ``first_turn(question)``: from there to where the model starts writing;
- ``next_turn(question)``: from the end of the model's previous answer (the end-of-turn
  token was generated but not evaluated) to where the model writes again.

``PromptEncoder`` is the seam: ``JinjaPromptEncoder`` derives the texts from a GGUF chat
template, ``ReadingPromptEncoder`` writes the reading format for base (pretrained, not
instruction-tuned) models, and an architecture with its own encoding (DeepSeek-V4's non-think /
think-high / think-max) can supply its own object to ``LocalBackend``.

Which kind a model is comes from its GGUF (``detect_prompt_kind``): a chat template, a
fine-tune name, tags or a model name that say "instruct"/"chat"/"it" make it an instruction
model; a file with none of these is a base model. A base model wrapped in chat turns after a
long instruction block continues that text instead of answering and never ends its turn (the
embedded Gemma 3 270M did exactly that); in the reading format it reads the corpus, then
``Question: ...`` / ``Answer:``, and its answer ends at the end of the line.

``ThinkingSplitter`` separates reasoning (between the think markers) from the answer in a
stream of text pieces, holding back a piece that may be the start of a marker.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.events import AnswerDelta, ThinkingDelta, ThinkingMode
from longdesk.engine.models.chat_template import RenderJob, TemplateError, render_isolated
from longdesk.engine.models.gguf_header import GGUFHeader

_SYSTEM = "\u2063LD-SYSTEM\u2063"
_Q1 = "\u2063LD-QUESTION-1\u2063"
_A1 = "\u2063LD-ANSWER-1\u2063"
_Q2 = "\u2063LD-QUESTION-2\u2063"


class PromptEncoder(Protocol):
    """A model's conversation format, as the three texts a local backend evaluates."""

    @property
    def thinking_modes(self) -> tuple[ThinkingMode, ...]: ...

    @property
    def think_markers(self) -> tuple[str, str] | None:
        """(open, close) around reasoning in the model's output, or None."""
        ...

    def identity(self) -> str:
        """A digest of everything that shapes the texts (for snapshot keys)."""
        ...

    def prefix(self, system_text: str, thinking: ThinkingMode) -> str: ...

    def first_turn(self, question: str, thinking: ThinkingMode) -> str: ...

    def next_turn(self, question: str, thinking: ThinkingMode) -> str: ...

    def starts_thinking(self, thinking: ThinkingMode) -> bool:
        """True when the text before the answer already opens the reasoning block."""
        ...


@dataclass(frozen=True, slots=True)
class TurnTexts:
    """The fixed glue of one thinking mode, cut out of rendered skeleton conversations."""

    head: str  # before the system text
    after_system: str  # between the system text and the first question
    after_first: str  # after the first question: the generation prompt
    before_next: str  # after an answer, before the next question
    after_next: str  # after a follow-up question: the generation prompt


class PromptKind(enum.StrEnum):
    """How a model is spoken to: a user setting (``auto`` decides from the GGUF) or the outcome."""

    AUTO = "auto"
    READING = "reading"  # base models: corpus, then Question/Answer lines
    CHAT = "chat"  # instruction models: the chat template and the citing contract


# Fine-tune names, tags and model names that mark an instruction-tuned model.
_TUNED = re.compile(
    r"(?:^|[^a-z0-9])(it|instruct(?:ed)?|chat|sft|dpo|rlhf|assistant|conversational)(?:$|[^a-z0-9])"
)
_BASE = re.compile(r"(?:^|[^a-z0-9])(base|pretrain\w*|pt)(?:$|[^a-z0-9])")


def detect_prompt_kind(header: GGUFHeader) -> tuple[PromptKind, str]:
    """``(READING | CHAT, why)`` from what the GGUF says about itself.

    In order: a chat template in the file (instruction model); ``general.finetune``;
    ``general.tags``; ``general.name`` / ``general.basename`` and the file name. A model with
    none of these signs is read as a base model, which the reading format suits best (a chat
    model still answers in it; a base model does not answer in chat turns).
    """
    if header.architecture == "deepseek4":
        return PromptKind.CHAT, "DeepSeek-V4 has its own conversation encoding"
    if header.chat_template:
        return PromptKind.CHAT, "the file carries a chat template"
    finetune = header.metadata.get("general.finetune")
    if isinstance(finetune, str) and finetune.strip():
        low = finetune.casefold()
        if _TUNED.search(low):
            return PromptKind.CHAT, f"general.finetune is {finetune!r}"
        if _BASE.search(low):
            return PromptKind.READING, f"general.finetune is {finetune!r}"
    tags = header.metadata.get("general.tags")
    if isinstance(tags, list):
        tuned = [t for t in tags if isinstance(t, str) and _TUNED.search(t.casefold())]
        if tuned:
            return PromptKind.CHAT, f"tagged {tuned[0]!r}"
    names = [header.metadata.get("general.name"), header.metadata.get("general.basename")]
    names.append(Path(header.path).stem)
    for name in names:
        if isinstance(name, str) and _TUNED.search(name.casefold()):
            return PromptKind.CHAT, f"the name {name!r} says it is instruction-tuned"
    return PromptKind.READING, "a base model: no chat template, no instruction fine-tune named in the file"


def reading_header() -> str:
    """The few words before the corpus in the reading format (``assets/prompts/reading.txt``)."""
    return resources.files("longdesk.assets").joinpath("prompts/reading.txt").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """How an answer ends, per model kind.

    Attributes:
        cap: the longest answer in tokens (``None``: the user's setting alone).
        stops: texts that end the answer where they appear (after its first visible character);
            they are not part of the answer.
        starts_on_its_line: the answer is the rest of the line it is asked on, so until its
            first visible character a token that breaks the line is refused. A base model that
            starts a new line after ``Answer:`` writes what follows a line break in the corpus
            (a ``<L421>`` marker, the next line) instead of an answer.
    """

    cap: int | None = None
    stops: tuple[str, ...] = ()
    starts_on_its_line: bool = False


# A base model answers on one line; 64 tokens hold a long sentence. Instruction models write
# as long as the user allows (the "Longest answer" setting), bounded by the context.
READING_ANSWER_CAP = 64


@dataclass(frozen=True)
class ReadingPromptEncoder:
    """The reading format for base models: corpus first, then a short question/answer frame.

    The prefix is ``<bos>`` + a one-line header + the packed corpus (its anchor markup, no
    citing contract: a base model cannot follow one); each question is appended as
    ``\nQuestion: ...\nAnswer:``; the answer is the rest of that line: it may not start with a
    line break, and it ends at the end of the line (the newline is generated but not evaluated,
    so a follow-up starts with a newline of its own).
    """

    bos_token: str = ""
    header: str = field(default_factory=reading_header)

    @property
    def thinking_modes(self) -> tuple[ThinkingMode, ...]:
        return (ThinkingMode.OFF,)

    @property
    def think_markers(self) -> tuple[str, str] | None:
        return None

    @property
    def kind(self) -> PromptKind:
        return PromptKind.READING

    def policy(self) -> AnswerPolicy:
        return AnswerPolicy(cap=READING_ANSWER_CAP, stops=("\n", "Question:"), starts_on_its_line=True)

    def identity(self) -> str:
        text = (
            "reading-1\n"
            + self.bos_token
            + "\n"
            + self.header
            + "\n"
            + self.first_turn("Q", ThinkingMode.OFF)
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def system_text(self, plan: ContextPlan) -> str:
        """What the prefix holds of ``plan``: the header and the corpus (not the contract)."""
        return "".join([self.header, *plan.corpus_blocks])

    def prefix(self, system_text: str, thinking: ThinkingMode) -> str:  # noqa: ARG002 - one mode
        return self.bos_token + system_text

    def first_turn(self, question: str, thinking: ThinkingMode) -> str:  # noqa: ARG002 - one mode
        return "\nQuestion: " + " ".join(question.split()) + "\nAnswer:"

    def next_turn(self, question: str, thinking: ThinkingMode) -> str:
        return self.first_turn(question, thinking)

    def starts_thinking(self, thinking: ThinkingMode) -> bool:  # noqa: ARG002 - one mode
        return False


def prefix_text(encoder: PromptEncoder, plan: ContextPlan, thinking: ThinkingMode) -> str:
    """The whole prefix a local model evaluates for ``plan`` in ``encoder``'s format."""
    if isinstance(encoder, ReadingPromptEncoder):
        return encoder.prefix(encoder.system_text(plan), thinking)
    return encoder.prefix(plan.system_text, thinking)


def instructions_of(encoder: PromptEncoder, plan: ContextPlan) -> str:
    """The instruction text the model reads before the corpus (what it must not repeat)."""
    return encoder.header if isinstance(encoder, ReadingPromptEncoder) else plan.instructions


def policy_of(encoder: PromptEncoder) -> AnswerPolicy:
    return encoder.policy() if isinstance(encoder, ReadingPromptEncoder) else AnswerPolicy()


def kind_of(encoder: PromptEncoder) -> PromptKind:
    return PromptKind.READING if isinstance(encoder, ReadingPromptEncoder) else PromptKind.CHAT


def _thinking_variables(mode: ThinkingMode) -> dict[str, object]:
    on = mode is not ThinkingMode.OFF
    values: dict[str, object] = {"enable_thinking": on, "thinking": on}
    if on:
        values["reasoning_effort"] = mode.value
    return values


def _between(text: str, start: str, end: str | None) -> str:
    i = text.index(start) + len(start)
    return text[i:] if end is None else text[i : text.index(end, i)]


@dataclass
class JinjaPromptEncoder:
    """Conversation texts derived from a Jinja chat template, rendered in an isolated child.

    The template renders two skeletons per thinking mode with placeholder contents:
    [system, user] and [system, user, assistant, user], each with the generation prompt;
    the glue between the placeholders is cut out once and cached. Contents are inserted
    verbatim (a template that transforms message contents, e.g. trims them, sees already
    clean text from Longdesk).
    """

    template: str
    bos_token: str = ""
    eos_token: str = ""
    _cache: dict[ThinkingMode, TurnTexts] = field(default_factory=dict, repr=False)

    @property
    def thinking_modes(self) -> tuple[ThinkingMode, ...]:
        t = self.template
        if "enable_thinking" not in t and "thinking" not in t:
            return (ThinkingMode.OFF,)
        if "reasoning_effort" in t:
            return (ThinkingMode.OFF, ThinkingMode.HIGH, ThinkingMode.MAX)
        return (ThinkingMode.OFF, ThinkingMode.HIGH)

    @property
    def think_markers(self) -> tuple[str, str] | None:
        return ("<think>", "</think>") if "<think>" in self.template else None

    def identity(self) -> str:
        text = "jinja\n" + self.bos_token + "\n" + self.eos_token + "\n" + self.template
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def texts(self, thinking: ThinkingMode) -> TurnTexts:
        """The glue for ``thinking``, rendered once.

        Raises:
            TemplateError: the template is unsafe, too slow, or does not place the system text
                first and the questions after it.
        """
        cached = self._cache.get(thinking)
        if cached is not None:
            return cached
        extra: Mapping[str, object] = _thinking_variables(thinking)
        first = (
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _Q1},
        )
        follow = (*first, {"role": "assistant", "content": _A1}, {"role": "user", "content": _Q2})
        one, two = render_isolated(
            self.template,
            [RenderJob(first, extra), RenderJob(follow, extra)],
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )
        for needed, text in ((_SYSTEM, one), (_Q1, one), (_A1, two), (_Q2, two)):
            if needed not in text:
                raise TemplateError("chat template drops a message of the conversation")
        if one.index(_SYSTEM) > one.index(_Q1):
            raise TemplateError("chat template does not render the system text before the question")
        if two[: two.index(_Q1)] != one[: one.index(_Q1)]:
            raise TemplateError("chat template renders the system text differently once there is history")
        texts = TurnTexts(
            head=one[: one.index(_SYSTEM)],
            after_system=_between(one, _SYSTEM, _Q1),
            after_first=_between(one, _Q1, None),
            before_next=_between(two, _A1, _Q2),
            after_next=_between(two, _Q2, None),
        )
        self._cache[thinking] = texts
        return texts

    def prefix(self, system_text: str, thinking: ThinkingMode) -> str:
        t = self.texts(thinking)
        return t.head + system_text + t.after_system

    def first_turn(self, question: str, thinking: ThinkingMode) -> str:
        return question + self.texts(thinking).after_first

    def next_turn(self, question: str, thinking: ThinkingMode) -> str:
        t = self.texts(thinking)
        return t.before_next + question + t.after_next

    def starts_thinking(self, thinking: ThinkingMode) -> bool:
        markers = self.think_markers
        if markers is None or thinking is ThinkingMode.OFF:
            return False
        return self.texts(thinking).after_first.rstrip().endswith(markers[0])


@dataclass
class ThinkingSplitter:
    """Route streamed text to ``ThinkingDelta`` or ``AnswerDelta`` by the think markers."""

    markers: tuple[str, str] | None
    thinking: bool = False
    _held: str = ""

    def feed(self, text: str) -> list[ThinkingDelta | AnswerDelta]:
        """Events for ``text``; a trailing piece that may start a marker is held back."""
        if self.markers is None:
            return [AnswerDelta(text)] if text else []
        out: list[ThinkingDelta | AnswerDelta] = []
        buf = self._held + text
        self._held = ""
        while buf:
            marker = self.markers[1] if self.thinking else self.markers[0]
            i = buf.find(marker)
            if i >= 0:
                self._emit(out, buf[:i])
                buf = buf[i + len(marker) :]
                self.thinking = not self.thinking
                if not self.thinking:
                    buf = buf.lstrip("\n")
                continue
            longest = min(len(marker) - 1, len(buf))
            keep = next((k for k in range(longest, 0, -1) if marker.startswith(buf[-k:])), 0)
            self._emit(out, buf[: len(buf) - keep])
            self._held = buf[len(buf) - keep :]
            break
        return out

    def flush(self) -> list[ThinkingDelta | AnswerDelta]:
        out: list[ThinkingDelta | AnswerDelta] = []
        self._emit(out, self._held)
        self._held = ""
        return out

    def _emit(self, out: list[ThinkingDelta | AnswerDelta], text: str) -> None:
        if text:
            out.append(ThinkingDelta(text) if self.thinking else AnswerDelta(text))
