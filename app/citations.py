"""Citations in answers as the UI and the session export see them.

Parsing, resolving and verifying are ``engine.grounding``'s (the citing contract is in
``assets/prompts/system.txt``); this module turns its results into the small, flat records the
widgets draw and the sessions store: where the citation sits in the answer, the document and
place it points at, the quote, and whether it is verified, unverified, failed or unresolved,
with the reason in words; or *located*: the model did not cite, and Longdesk found the
answer's words at that place (``engine.grounding.locate``; shown after the answer, never as
verified). Without the corpus at hand (an exported session), citations are
resolved against the stored document list only and marked unverified.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from longdesk.engine import grounding
from longdesk.engine.corpus.model import AnchorKind, Corpus

_PLACE_KINDS = {
    grounding.PlaceKind.PAGE: AnchorKind.PAGE,
    grounding.PlaceKind.LINES: AnchorKind.LINES,
    grounding.PlaceKind.CHAPTER: AnchorKind.CHAPTER,
    grounding.PlaceKind.VERSE: AnchorKind.VERSE,
}


class Check(enum.StrEnum):
    """What is known about a citation."""

    VERIFIED = "verified"  # the anchor exists and the quote was found there
    UNVERIFIED = "unverified"  # it parses and names a document, but nobody checked it yet
    FAILED = "failed"  # checked, and the source does not say this there
    UNRESOLVED = "unresolved"  # names a document or place the corpus does not have
    LOCATED = "located"  # not cited by the model: Longdesk found the answer's words there


@dataclass(frozen=True, slots=True)
class Citation:
    """One citation found in an answer.

    Attributes:
        start: offset of the opening bracket in the answer text.
        end: offset just after the closing bracket.
        raw: the citation text as the model wrote it, brackets included.
        doc_id: the cited document (``D2``).
        kind: page, lines, chapter or verse; None when the place could not be read.
        first: first page/line/chapter (1-based), 0 for verses.
        last: last page/line/chapter, inclusive.
        label: the verse id, or the place text when it could not be read.
        quote: the words quoted next to the citation, if any.
        check: what is known about it.
        reason: why it is not verified, in words.
    """

    start: int
    end: int
    raw: str
    doc_id: str
    kind: AnchorKind | None
    first: int
    last: int
    label: str = ""
    quote: str = ""
    check: Check = Check.UNVERIFIED
    reason: str = "not checked against the source yet"

    def place(self) -> str:
        """Human text for the place: ``page 12``, ``lines 40-44``, ``chapter 3``."""
        if self.kind is AnchorKind.PAGE:
            return f"page {self.first}" if self.first == self.last else f"pages {self.first}-{self.last}"
        if self.kind is AnchorKind.LINES:
            return f"line {self.first}" if self.first == self.last else f"lines {self.first}-{self.last}"
        if self.kind is AnchorKind.CHAPTER:
            return f"chapter {self.first}"
        return self.label


def _from_raw(raw: grounding.RawCitation, quote: str) -> Citation:
    place = raw.place
    kind = _PLACE_KINDS.get(place.kind)
    label = place.describe() if kind is AnchorKind.VERSE else ""
    first, last = (0, 0) if kind is AnchorKind.VERSE else (place.start, place.end)
    cite = Citation(raw.start, raw.end, raw.text, raw.doc_ref, kind, first, last, label, quote)
    if kind is None and place.kind is not grounding.PlaceKind.DOCUMENT:
        return replace(cite, check=Check.UNRESOLVED, reason=f"cannot read the place in {raw.text!r}")
    return cite


def parse_citations(answer: str) -> list[Citation]:
    """Every citation in ``answer``, in order (``[D1, p. 2; D3, lines 4-5]`` gives two)."""
    quotes = grounding.find_quotes(answer)
    found = []
    for raw in grounding.parse_citations(answer):
        before = [q for q in quotes if q.end <= raw.start and raw.start - q.end <= 400]
        after = [q for q in quotes if q.start >= raw.end and q.start - raw.end <= 3]
        quote = after[0].text if after else (before[-1].text if before else "")
        found.append(_from_raw(raw, quote))
    return found


@dataclass(frozen=True, slots=True)
class DocRef:
    """What a citation needs to know about a document, kept in sessions (no text)."""

    doc_id: str
    name: str
    source: str
    kind: str
    last_place: int  # highest page / line / chapter number, 0 when unknown


def doc_refs(corpus: Corpus) -> dict[str, DocRef]:
    """The citation-relevant facts of every document of ``corpus``."""
    refs = {}
    for doc in corpus.documents:
        last = max((s.anchor.end for s in doc.segments), default=0)
        refs[doc.doc_id] = DocRef(doc.doc_id, doc.name, doc.source, doc.kind.value, last)
    return refs


def resolve(cite: Citation, refs: Mapping[str, DocRef]) -> Citation:
    """Mark a citation unresolved when its document or place does not exist."""
    if cite.check is not Check.UNVERIFIED:
        return cite
    ref = refs.get(cite.doc_id) or _ref_by_name(cite.doc_id, refs)
    if ref is None:
        return replace(cite, check=Check.UNRESOLVED, reason=f"there is no document {cite.doc_id}")
    cite = replace(cite, doc_id=ref.doc_id)
    paged = cite.kind in (AnchorKind.PAGE, AnchorKind.LINES, AnchorKind.CHAPTER)
    if ref.last_place and paged and (cite.first < 1 or cite.last > ref.last_place):
        return replace(cite, check=Check.UNRESOLVED, reason=f"{ref.name} has no {cite.place()}")
    return cite


def _ref_by_name(written: str, refs: Mapping[str, DocRef]) -> DocRef | None:
    """A document cited by its name or file name instead of its id."""
    if not written:
        return None
    for ref in refs.values():
        if written in (ref.name, ref.name.rsplit("/", 1)[-1]):
            return ref
    return None


_CHECK_OF_STATUS = {
    grounding.Status.VERIFIED: Check.VERIFIED,
    grounding.Status.ANCHORED: Check.VERIFIED,
    grounding.Status.QUOTE_NOT_FOUND: Check.FAILED,
    grounding.Status.UNRESOLVED: Check.UNRESOLVED,
}


def check_citations(answer: str, corpus: Corpus | None, refs: Mapping[str, DocRef]) -> list[Citation]:
    """Parse, resolve and verify the citations of one answer (``engine.grounding``).

    With ``corpus`` each citation is checked against the source: the place must exist and a
    quote next to it must be found there. Without it, citations are only resolved against
    ``refs`` and shown as unverified.
    """
    if corpus is None:
        return [resolve(c, refs) for c in parse_citations(answer)]
    index = grounding.CorpusIndex(corpus)
    verdicts, _summary = grounding.check_answer(answer, index)
    out = []
    at = len(answer) + len(_located_gap(answer))
    for verdict in grounding.Locator(index).locate(answer, verdicts):
        c, n = verdict.citation, len(verdict.citation.text)
        out.append(
            replace(
                _from_raw(replace(c.raw, start=at, end=at + n), ""),
                doc_id=c.doc_id,
                check=Check.LOCATED,
                reason=verdict.reason,
            )
        )
        at += n + 1
    for verdict in verdicts:
        c = verdict.citation
        raw = _from_raw(c.raw, c.quotes[0].text if c.quotes else "")
        if c.resolved and c.anchor is not None:
            verse = c.anchor.kind is AnchorKind.VERSE
            raw = replace(
                raw,
                doc_id=c.doc_id,
                kind=c.anchor.kind,
                first=0 if verse else c.anchor.start,
                last=0 if verse else c.anchor.end,
                label=c.anchor.label if verse else "",
            )
        elif c.resolved:
            raw = replace(raw, doc_id=c.doc_id)
        out.append(
            replace(raw, check=_CHECK_OF_STATUS.get(verdict.status, Check.UNVERIFIED), reason=verdict.reason)
        )
    return sorted(out, key=lambda x: x.start)


def _located_gap(answer: str) -> str:
    return "\n\n" if "\n" in answer.strip() else " "


def shown_answer(answer: str, citations: Sequence[Citation]) -> str:
    """The answer as a view shows it: its located citations (``check_citations``) after it,
    at the offsets those citations carry."""
    located = [c.raw for c in citations if c.check is Check.LOCATED]
    return answer + _located_gap(answer) + " ".join(located) if located else answer


def describe_for_export(cite: Citation, refs: Mapping[str, DocRef]) -> str:
    """``book.pdf, page 12`` for a resolved citation; the reason for an unresolved one."""
    ref = refs.get(cite.doc_id)
    if ref is None:
        return f"unresolved: {cite.reason}"
    where = f"{ref.name}, {cite.place()}" if cite.place() else ref.name
    return where if cite.check is not Check.UNRESOLVED else f"{where} (unresolved: {cite.reason})"
