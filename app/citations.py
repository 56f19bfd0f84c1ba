"""Citations in answers as the window and the session export show them: a view of grounding's.

``engine.grounding`` is the one place that parses, resolves and verifies citations (the citing
contract is in ``assets/prompts/system.txt``). This module only flattens its results into the
records the widgets draw and the export writes: where the citation sits in the answer, the
document and place it points at, the quote, and grounding's verdict as a ``Check`` with the
reason in words. ``Check.VERIFIED`` means the quoted words were found at the cited place;
a citation that names a real place but quotes nothing is ``Check.ANCHORED``, shown as "place
exists, not checked".

``AnswerCitations`` follows one answer as it grows with one grounding tracker (only the new
text is parsed, each citation verified once); the window runs it on a worker thread. Without
the corpus at hand (a session opened before its sources are read, an export), citations are
parsed by grounding and matched to the session's stored document list only: not checked.

A *located* citation (``Check.LOCATED``) is Longdesk's, not the model's: the model did not
cite, and ``engine.grounding.locate`` found the answer's words at that place; it is shown after
the answer, never as verified.
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
NOT_LOADED = "not checked: the sources are not loaded"


class Check(enum.StrEnum):
    """What is known about a citation (grounding's verdict, or that there is none yet)."""

    VERIFIED = "verified"  # the place exists and the quoted words were found there
    ANCHORED = "anchored"  # the place exists; nothing was quoted, so nothing was checked
    UNVERIFIED = "unverified"  # it parses and names a document, but it was not checked
    FAILED = "failed"  # checked, and the source does not say this there
    UNRESOLVED = "unresolved"  # names a document or place the corpus does not have
    LOCATED = "located"  # not cited by the model: Longdesk found the answer's words there


_CHECK_OF_STATUS = {
    grounding.Status.VERIFIED: Check.VERIFIED,
    grounding.Status.ANCHORED: Check.ANCHORED,
    grounding.Status.QUOTE_NOT_FOUND: Check.FAILED,
    grounding.Status.UNRESOLVED: Check.UNRESOLVED,
}


@dataclass(frozen=True, slots=True)
class Citation:
    """One citation of an answer, flattened from grounding's citation and verdict.

    Attributes:
        start: offset of the opening bracket in the answer text.
        end: offset just after the closing bracket.
        raw: the citation text as the model wrote it, brackets included.
        doc_id: the cited document (``D2``); as written when it does not resolve.
        kind: page, lines, chapter or verse; None when the place could not be read.
        first: first page/line/chapter (1-based), 0 for verses.
        last: last page/line/chapter, inclusive.
        label: the verse id, or the place text when it could not be read.
        quote: the words quoted for the citation, if any.
        check: grounding's verdict (or ``UNVERIFIED`` when there was none).
        reason: grounding's reason, in words.
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
    reason: str = NOT_LOADED

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


def from_verdict(verdict: grounding.Verdict) -> Citation:
    """The flat record of one grounding verdict."""
    c = verdict.citation
    cite = _from_raw(c.raw, c.quotes[0].text if c.quotes else "")
    if c.resolved and c.anchor is not None:
        verse = c.anchor.kind is AnchorKind.VERSE
        cite = replace(
            cite,
            doc_id=c.doc_id,
            kind=c.anchor.kind,
            first=0 if verse else c.anchor.start,
            last=0 if verse else c.anchor.end,
            label=c.anchor.label if verse else "",
        )
    elif c.resolved:
        cite = replace(cite, doc_id=c.doc_id)
    return replace(cite, check=_CHECK_OF_STATUS.get(verdict.status, Check.UNVERIFIED), reason=verdict.reason)


def parse_citations(answer: str) -> list[Citation]:
    """Every citation in ``answer``, in order, as grounding's parser reads them (not checked)."""
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


def resolve(cite: Citation, refs: Mapping[str, DocRef]) -> Citation:
    """Without the corpus: match the cited document in the stored list (nothing is checked)."""
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


def check_citations(
    answer: str, corpus: Corpus | grounding.CorpusIndex | None, refs: Mapping[str, DocRef]
) -> list[Citation]:
    """Grounding's verdicts on the citations of a finished answer, flattened.

    Without ``corpus`` citations are only matched to ``refs`` and shown as not checked.
    """
    if corpus is None:
        return [resolve(c, refs) for c in parse_citations(answer)]
    index = corpus if isinstance(corpus, grounding.CorpusIndex) else grounding.CorpusIndex(corpus)
    verdicts, _summary = grounding.check_answer(answer, index)
    cites = [from_verdict(v) for v in verdicts]
    return sorted(cites + located_citations(answer, verdicts, index), key=lambda x: x.start)


def located_citations(
    answer: str, verdicts: Sequence[grounding.Verdict], index: grounding.CorpusIndex
) -> list[Citation]:
    """Places where Longdesk found the answer's words, for an answer whose own citations did not
    verify; placed after the answer at the offsets ``shown_answer`` prints them."""
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
    return out


class AnswerCitations:
    """One answer's citations, kept up to date as the answer grows: one grounding tracker.

    ``update(answer)`` feeds only the text added since the last call (an answer that is not
    a continuation of it, e.g. a regenerated one, starts a fresh tracker) and returns every
    citation so far with its verdict; each citation is verified once. When the answer is final,
    the located citations (``located_citations``) are added. Not thread-safe: use it from one
    thread (the window's citation worker).
    """

    def __init__(
        self, corpus: Corpus | None, refs: Mapping[str, DocRef], index: grounding.CorpusIndex | None = None
    ) -> None:
        self.corpus = corpus
        self.refs = refs
        self._index = index
        self._tracker: grounding.CitationTracker | None = None
        self._fed = ""
        self._finished = False
        self._verdicts: list[grounding.Verdict] = []
        self._cites: list[Citation] = []

    def update(self, answer: str, *, final: bool = False) -> list[Citation]:
        """Every citation of ``answer`` (final: the answer ended, nothing more will come)."""
        if self.corpus is None:
            self._cites = check_citations(answer, None, self.refs)
            return list(self._cites)
        if self._tracker is None or self._finished or not answer.startswith(self._fed):
            if self._index is None:
                self._index = grounding.CorpusIndex(self.corpus)
            self._tracker = grounding.CitationTracker(self._index)
            self._fed, self._finished, self._cites, self._verdicts = "", False, [], []
        tracker = self._tracker
        if len(answer) > len(self._fed):
            new = tracker.feed(answer[len(self._fed) :])
            self._fed = answer
            self._verdicts += [tracker.verify(c) for c in new]
        if final:
            self._finished = True
            self._verdicts += [tracker.verify(c) for c in tracker.finish()]
        self._cites = [from_verdict(v) for v in self._verdicts]
        if final and self._index is not None:
            self._cites += located_citations(answer, self._verdicts, self._index)
        return sorted(self._cites, key=lambda x: x.start)


def _located_gap(answer: str) -> str:
    return "\n\n" if "\n" in answer.strip() else " "


def shown_answer(answer: str, citations: Sequence[Citation]) -> str:
    """The answer as a view shows it: its located citations (``check_citations``) after it,
    at the offsets those citations carry."""
    located = [c.raw for c in citations if c.check is Check.LOCATED]
    return answer + _located_gap(answer) + " ".join(located) if located else answer


def doc_refs(corpus: Corpus) -> dict[str, DocRef]:
    """The citation-relevant facts of every document of ``corpus`` (what reports resolve against)."""
    refs = {}
    for doc in corpus.documents:
        last = max((s.anchor.end for s in doc.segments), default=0)
        refs[doc.doc_id] = DocRef(doc.doc_id, doc.name, doc.source, doc.kind.value, last)
    return refs


def describe_for_export(cite: Citation, refs: Mapping[str, DocRef]) -> str:
    """``book.pdf, page 12`` for a resolved citation; the reason for an unresolved one."""
    ref = refs.get(cite.doc_id)
    if ref is None:
        return f"unresolved: {cite.reason}"
    where = f"{ref.name}, {cite.place()}" if cite.place() else ref.name
    return where if cite.check is not Check.UNRESOLVED else f"{where} (unresolved: {cite.reason})"
