"""The values of grounding: places as written, citations as resolved, verdicts and summaries.

All plain frozen data, so that a UI thread can receive them from a worker and a session can
save them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from longdesk.engine.corpus.model import Anchor


class PlaceKind(enum.StrEnum):
    """What a citation points at inside a document, as the answer wrote it."""

    PAGE = "page"
    LINES = "lines"
    CHAPTER = "chapter"
    VERSE = "verse"
    NUMBER = "number"  # a bare number or range: the document's own unit (``[app.py:40]``)
    DOCUMENT = "document"  # the whole document (``[D2]``)


@dataclass(frozen=True, slots=True)
class Place:
    """A place as written in a citation, before it is checked against the corpus.

    Attributes:
        kind: what the numbers mean.
        start: first page / line / chapter / verse number (0 for a whole document).
        end: last one, inclusive (equal to ``start`` for a single place).
        book: verse citations only: the book as written (``Gen``, ``1 Cor``).
        chapter: verse citations only: the chapter number; ``start``/``end`` are verses.
    """

    kind: PlaceKind
    start: int = 0
    end: int = 0
    book: str = ""
    chapter: int = 0

    def describe(self) -> str:
        """Short human text: ``p. 12``, ``lines 40-44``, ``ch. 2``, ``Gen 1:1-3``."""
        span = str(self.start) if self.start == self.end else f"{self.start}-{self.end}"
        if self.kind is PlaceKind.PAGE:
            return f"p. {span}" if self.start == self.end else f"pp. {span}"
        if self.kind is PlaceKind.LINES:
            return f"line {span}" if self.start == self.end else f"lines {span}"
        if self.kind is PlaceKind.CHAPTER:
            return f"ch. {span}"
        if self.kind is PlaceKind.VERSE:
            return f"{self.book} {self.chapter}:{span}"
        if self.kind is PlaceKind.NUMBER:
            return span
        return "whole document"


@dataclass(frozen=True, slots=True)
class Quote:
    """Words the answer puts in quotation marks, with their offsets in the answer text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RawCitation:
    """A citation found by the parser: offsets in the answer, document as written, place.

    ``doc_ref`` is empty when the citation names no document (``[Gen 1:1]``, ``(p. 3)``).
    """

    text: str
    start: int
    end: int
    doc_ref: str
    place: Place


@dataclass(frozen=True, slots=True)
class Citation:
    """A citation of an answer, resolved against the corpus (or not, and why).

    Attributes:
        index: 1-based position among the answer's citations.
        raw: what the parser found.
        quotes: the quoted words the answer relies on for this citation.
        doc_id: the document it resolves to; empty when unresolved.
        doc_name: that document's display name.
        anchor: the place in the document (``None`` for a whole-document citation).
        problem: why it does not resolve, in words a user understands; empty when it does.
    """

    index: int
    raw: RawCitation
    quotes: tuple[Quote, ...] = ()
    doc_id: str = ""
    doc_name: str = ""
    anchor: Anchor | None = None
    problem: str = ""

    @property
    def resolved(self) -> bool:
        return not self.problem

    @property
    def text(self) -> str:
        return self.raw.text

    @property
    def start(self) -> int:
        return self.raw.start

    @property
    def end(self) -> int:
        return self.raw.end

    def describe(self) -> str:
        """Where it points, e.g. ``D2 report.pdf p. 3``; the raw text when unresolved."""
        if not self.resolved:
            return self.raw.text
        where = self.anchor.describe() if self.anchor is not None else "whole document"
        return f"{self.doc_id} {self.doc_name} {where}"


class Status(enum.StrEnum):
    """The outcome of checking one citation."""

    VERIFIED = "verified"  # the place exists and every quote was found at or near it
    ANCHORED = "anchored"  # the place exists; the answer quoted nothing to compare
    QUOTE_NOT_FOUND = "quote_not_found"  # the place exists but a quote is not there
    UNRESOLVED = "unresolved"  # no such document or place
    LOCATED = "located"  # not cited by the model: Longdesk found the answer's words here


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    """How well one quote matched the source.

    Attributes:
        quote: the quoted text.
        score: share of the quote's words found in order in the best window (0..1).
        found: the best window's place, near the citation (``None`` when nothing matched).
        elsewhere: where the quote matches at or above the threshold outside the cited place,
            as ``D3 p. 9``; empty when nowhere.
    """

    quote: str
    score: float
    found: Anchor | None = None
    elsewhere: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a citation can be shown as verified, and why (or why not)."""

    citation: Citation
    status: Status
    reason: str
    checks: tuple[QuoteCheck, ...] = ()

    @property
    def ok(self) -> bool:
        """Verified or anchored: shown as a checked citation (a located one never is)."""
        return self.status in (Status.VERIFIED, Status.ANCHORED)

    @property
    def located(self) -> bool:
        """Found by Longdesk in the source, not cited by the model (``engine.grounding.locate``)."""
        return self.status is Status.LOCATED


@dataclass(frozen=True, slots=True)
class Summary:
    """Per-answer figures: citations found, verified (quotes matched or place exists), not."""

    found: int
    verified: int
    unverified: int
    quotes_matched: int = 0  # verified citations whose quotes were checked
    unresolved: int = 0  # unverified because the document or place does not exist
    located: int = 0  # places Longdesk found for an answer the model did not cite (not in ``found``)

    def describe(self) -> str:
        located = f"{self.located} located in the source (not cited by the model)" if self.located else ""
        if not self.found:
            return f"no citations from the model; {located}" if located else "no citations"
        # "Verified" only where quoted words were found at the place; a real place that quotes
        # nothing is counted apart, as the window shows it ("place exists, not checked").
        parts = [f"{self.found} citation{'' if self.found == 1 else 's'}", f"{self.quotes_matched} verified"]
        unchecked = self.verified - self.quotes_matched
        if unchecked:
            places = "1 place exists" if unchecked == 1 else f"{unchecked} places exist"
            parts.append(f"{places}, not checked")
        parts.append(f"{self.unverified} unverified")
        return ", ".join(parts) + (f"; {located}" if located else "")

    @staticmethod
    def of(verdicts: tuple[Verdict, ...] | list[Verdict]) -> Summary:
        located = sum(1 for v in verdicts if v.located)
        verdicts = [v for v in verdicts if not v.located]
        ok = [v for v in verdicts if v.ok]
        return Summary(
            located=located,
            found=len(verdicts),
            verified=len(ok),
            unverified=len(verdicts) - len(ok),
            quotes_matched=sum(1 for v in ok if v.status is Status.VERIFIED),
            unresolved=sum(1 for v in verdicts if v.status is Status.UNRESOLVED),
        )
