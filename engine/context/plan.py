"""ContextPlan: the exact prefix a model reads and the token budget around it (architecture §3)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocumentSpan:
    """Where one document's block sits in the packed corpus text, and what it costs."""

    doc_id: str
    name: str
    start: int  # character offset in ``ContextPlan.corpus_text``
    end: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Budget:
    """``context = prefix + history + question + reserved thinking + reserved output``."""

    context_window: int
    prefix: int
    history: int = 0
    question: int = 0
    reserved_thinking: int = 0
    reserved_output: int = 512

    @property
    def used(self) -> int:
        return self.prefix + self.history + self.question + self.reserved_thinking + self.reserved_output

    @property
    def free(self) -> int:
        return self.context_window - self.used

    @property
    def fits(self) -> bool:
        return self.used <= self.context_window

    @property
    def over_by(self) -> int:
        return max(0, -self.free)

    def describe(self) -> str:
        """One line with the exact numbers, e.g. for ``longdesk inspect``."""
        parts = [f"corpus+instructions {self.prefix:,}"]
        if self.history:
            parts.append(f"conversation {self.history:,}")
        if self.question:
            parts.append(f"question {self.question:,}")
        if self.reserved_thinking:
            parts.append(f"thinking reserve {self.reserved_thinking:,}")
        parts.append(f"output reserve {self.reserved_output:,}")
        verdict = "fits" if self.fits else f"does NOT fit: over by {self.over_by:,} tokens"
        return f"{' + '.join(parts)} = {self.used:,} of {self.context_window:,} tokens; {verdict}"


@dataclass(frozen=True, slots=True)
class Overflow:
    """A document that does not (wholly) fit: ``over`` of its ``tokens`` lie past the window."""

    doc_id: str
    name: str
    tokens: int
    over: int


@dataclass(frozen=True, slots=True)
class ContextPlan:
    """The packed prefix text, its exact token count, and where each document sits in it.

    Attributes:
        instructions: the system instructions (the citing contract), first in the prefix.
        corpus_blocks: the packed corpus with anchor markup, as ``<corpus>``, one block per
            document, ``</corpus>``; ``corpus_text`` is their join, byte-stable for the same
            sources. The documents' segment texts live inside these blocks (see
            ``engine.context.pack.pack``), so the corpus is held once until a backend asks
            for the one string.
        prefix_tokens: tokens of ``instructions + corpus_text`` under the backend's tokenizer
            (chat-template tokens are the backend's business and are added when it reads).
        spans: one per document, in order.
        budget: the budget with this prefix; ``budget.fits`` is False when it does not fit.
        tokenizer: the identity of the tokenizer whose counts these are ('' when it has none).
        corpus_tokens: tokens of ``corpus_text`` alone, when the tokenizer's counts add up
            across lines (then they are the sum of the blocks'); None when not known.
    """

    instructions: str
    corpus_blocks: tuple[str, ...]
    prefix_tokens: int
    spans: tuple[DocumentSpan, ...]
    budget: Budget
    tokenizer: str = ""
    corpus_tokens: int | None = None

    @property
    def corpus_text(self) -> str:
        """The packed corpus as one string (built on each call: keep it while it is needed)."""
        return "".join(self.corpus_blocks)

    @property
    def corpus_chars(self) -> int:
        return sum(len(b) for b in self.corpus_blocks)

    @property
    def system_text(self) -> str:
        """Instructions and corpus, the prefix a model reads (built on each call)."""
        return "".join(self.system_parts())

    def system_parts(self) -> tuple[str, ...]:
        """``system_text`` in the pieces it is joined from (to hash or encode without joining)."""
        return (self.instructions, "\n", *self.corpus_blocks)

    def system_digest(self) -> str:
        """sha256 of ``system_text`` (UTF-8), made from its pieces: which prefix a backend holds,
        without keeping or joining a copy of it (the joined text of a million tokens can take
        16 MB: one character outside the BMP makes every character 4 bytes)."""
        digest = hashlib.sha256()
        for piece in self.system_parts():
            digest.update(piece.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def overflow(self) -> tuple[Overflow, ...]:
        """The documents that lie (partly) past the window, in reading order; empty when it fits.

        The window left for the corpus is the context minus conversation, question, reserves
        and the instructions; documents are read in order, so the last ones are those cut off.
        """
        b = self.budget
        if b.fits:
            return ()
        room = (
            b.context_window - (b.used - b.prefix) - (self.prefix_tokens - sum(s.tokens for s in self.spans))
        )
        out: list[Overflow] = []
        end = 0
        for span in self.spans:
            end += span.tokens
            if end > room:
                out.append(
                    Overflow(span.doc_id, span.name, span.tokens, min(span.tokens, end - max(room, 0)))
                )
        return tuple(out)

    def describe_overflow(self, limit: int = 20) -> list[str]:
        """Lines for a user: by how much it does not fit, which documents, and what to do."""
        b = self.budget
        if b.fits:
            return []
        over = self.overflow()
        lines = [
            f"does not fit: {b.over_by:,} tokens too many for a {b.context_window:,}-token context",
            f"{len(over)} document(s) lie past the window (reading order):",
        ]
        for item in over[:limit]:
            part = "all" if item.over == item.tokens else f"{item.over:,} of"
            lines.append(f"  {item.doc_id} {item.name}: {part} {item.tokens:,} tokens past the window")
        if len(over) > limit:
            lines.append(f"  ... and {len(over) - limit} more")
        biggest = sorted(self.spans, key=lambda s: -s.tokens)
        freed, pick = 0, []
        for span in biggest:
            if freed >= b.over_by:
                break
            pick.append(span)
            freed += span.tokens
        names = ", ".join(f"{s.doc_id} ({s.tokens:,})" for s in pick[:5])
        more = f" and {len(pick) - 5} more" if len(pick) > 5 else ""
        lines.append(
            f"leave out documents worth at least {b.over_by:,} tokens (the largest: {names}{more}), "
            f"or choose a model with a context of at least {b.used:,} tokens"
        )
        return lines
