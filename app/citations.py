"""Citations in answers: find them, resolve them to a file and place, and mark what is checked.

The citing contract (``assets/prompts/system.txt``) asks the model for ``[D2, p. 12]``,
``[D5, lines 40-44]``, ``[D3, ch. 2]`` or ``[D1, Gen 1:1]``, followed by the quoted words.
This module is the one place the UI and the session export learn about citations. Where
``engine.grounding`` offers a verifier (a ``verify_answer(answer, corpus)`` function), its
verdicts are used; until then every citation that parses is shown as *unverified*, and one
that names a document the corpus lacks is shown as *unresolved*.
"""

from __future__ import annotations

import enum
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.corpus.model import AnchorKind, Corpus

_BRACKET = re.compile(r"\[(D\d+\s*,[^\[\]\n]{1,80})\]")
_ONE = re.compile(r"^\s*(D\d+)\s*,\s*(.+?)\s*$")
_RANGE = r"(\d+)(?:\s*(?:-|–|—|to)\s*(\d+))?"
_PAGE = re.compile(rf"^(?:pp?\.?|pages?)\s*{_RANGE}$", re.IGNORECASE)
_LINES = re.compile(rf"^(?:lines?|ll?\.?|L)\s*{_RANGE}$", re.IGNORECASE)
_CHAPTER = re.compile(r"^(?:ch\.?|chapter|c)\s*(\d+)", re.IGNORECASE)
_QUOTE = re.compile(r'^\s*[:,-]?\s*["“]([^"”\n]{4,400})["”]')
_QUOTE_BEFORE = re.compile(r'["“]([^"”\n]{4,400})["”]\s*[,:]?\s*$')


class Check(enum.StrEnum):
    """What is known about a citation."""

    VERIFIED = "verified"  # the anchor exists and the quote was found there
    UNVERIFIED = "unverified"  # it parses and names a document, but nobody checked it yet
    FAILED = "failed"  # checked, and the source does not say this there
    UNRESOLVED = "unresolved"  # names a document or place the corpus does not have


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


def _parse_place(place: str) -> tuple[AnchorKind | None, int, int, str]:
    m = _PAGE.match(place)
    if m:
        first = int(m.group(1))
        return AnchorKind.PAGE, first, int(m.group(2) or first), ""
    m = _LINES.match(place)
    if m:
        first = int(m.group(1))
        return AnchorKind.LINES, first, int(m.group(2) or first), ""
    m = _CHAPTER.match(place)
    if m:
        first = int(m.group(1))
        return AnchorKind.CHAPTER, first, first, ""
    if re.match(r"^[1-3]?\s?[A-Za-z]+\.?\s+\d+:\d+", place):
        return AnchorKind.VERSE, 0, 0, place
    return None, 0, 0, place


def parse_citations(answer: str) -> list[Citation]:
    """Every citation in ``answer``, in order; ``[D1, p. 2; D3, lines 4-5]`` gives two."""
    found: list[Citation] = []
    for m in _BRACKET.finditer(answer):
        after = _QUOTE.match(answer[m.end() : m.end() + 420])
        before = _QUOTE_BEFORE.search(answer[max(0, m.start() - 420) : m.start()])
        quote = after.group(1) if after else (before.group(1) if before else "")
        for part in m.group(1).split(";"):
            one = _ONE.match(part)
            if not one:
                continue
            kind, first, last, label = _parse_place(one.group(2))
            if first > last:
                first, last = last, first
            cite = Citation(m.start(), m.end(), m.group(0), one.group(1), kind, first, last, label, quote)
            if kind is None:
                cite = replace(cite, check=Check.UNRESOLVED, reason=f"cannot read the place {label!r}")
            found.append(cite)
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
    ref = refs.get(cite.doc_id)
    if ref is None:
        return replace(cite, check=Check.UNRESOLVED, reason=f"there is no document {cite.doc_id}")
    paged = cite.kind in (AnchorKind.PAGE, AnchorKind.LINES, AnchorKind.CHAPTER)
    if ref.last_place and paged and (cite.first < 1 or cite.last > ref.last_place):
        return replace(cite, check=Check.UNRESOLVED, reason=f"{ref.name} has no {cite.place()}")
    return cite


def _grounding_verifier() -> Callable[[str, Corpus], Sequence[Any]] | None:
    """``engine.grounding.verify_answer`` when the grounding step provides it."""
    try:
        module = importlib.import_module("engine.grounding")
    except ImportError:
        return None
    fn = getattr(module, "verify_answer", None)
    return fn if callable(fn) else None


def check_citations(answer: str, corpus: Corpus | None, refs: Mapping[str, DocRef]) -> list[Citation]:
    """Parse, resolve and (where a verifier exists) verify the citations of one answer."""
    cites = [resolve(c, refs) for c in parse_citations(answer)]
    verifier = _grounding_verifier()
    if verifier is None or corpus is None:
        return cites
    try:
        verdicts = list(verifier(answer, corpus))
    except Exception:  # noqa: BLE001 - a verifier failure leaves citations unverified, never breaks an answer
        return cites
    by_start = {int(getattr(v, "start", -1)): v for v in verdicts}
    out = []
    for c in cites:
        v = by_start.get(c.start)
        if v is None or c.check is not Check.UNVERIFIED:
            out.append(c)
            continue
        ok = bool(getattr(v, "verified", False))
        why = str(getattr(v, "reason", "") or "")
        out.append(replace(c, check=Check.VERIFIED if ok else Check.FAILED, reason=why))
    return out


def describe_for_export(cite: Citation, refs: Mapping[str, DocRef]) -> str:
    """``book.pdf, page 12`` for a resolved citation; the reason for an unresolved one."""
    ref = refs.get(cite.doc_id)
    if ref is None:
        return f"unresolved: {cite.reason}"
    where = f"{ref.name}, {cite.place()}" if cite.place() else ref.name
    return where if cite.check is not Check.UNRESOLVED else f"{where} (unresolved: {cite.reason})"
