"""Locate an answer in the corpus when the model did not cite it: *located* citations.

Base models and small models cannot follow the citing contract, and any model may ignore it.
The user still needs a place to check the answer, so Longdesk looks for the answer's own
words in the corpus and attaches the place where they are as a citation of status
``LOCATED``: found by Longdesk, not by the model, and never shown as verified.

Matching reuses ``engine.grounding.verify`` (words: NFKC, case folded, split on anything that is
not a letter or digit; the best window of the answer's length plus 10 %):

* each sentence of the answer (citations and quotation marks taken out) is matched against
  every document; the best window wins, the first document on a tie;
* ``exact``: the sentence occurs verbatim in the source; ``normalised``: its words occur in
  order and contiguous (case, punctuation and line breaks aside); otherwise the best window's
  share of words, which must reach ``LOCATE_THRESHOLD``; failing that, a reworded answer is
  placed at the line, page or verse holding that share of its content words;
* a sentence needs at least one content word (not a common function word, not a bare number)
  among the matched ones, so that "Yes." or "1." is never located;
* a sentence that is not found as a whole is split into its list items (at commas, "and",
  "or"), each located on its own;
* at most ``MAX_LOCATED`` places per answer, each place once.

A located citation sits after the answer: its offsets are both ``len(answer)`` (it is not part
of the text the model wrote); ``located_suffix`` gives the text a view appends to show it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus
from longdesk.engine.grounding.citation import (
    Citation,
    Place,
    PlaceKind,
    QuoteCheck,
    RawCitation,
    Status,
    Verdict,
)
from longdesk.engine.grounding.parse import format_citation, parse_citations
from longdesk.engine.grounding.resolve import CorpusIndex
from longdesk.engine.grounding.verify import _WIDE_REGION, Verifier, VerifyConfig, best_match, words

LOCATE_THRESHOLD = 0.75
MAX_LOCATED = 3
MAX_SENTENCES = 12
_MAX_POSITIONS = 2000  # occurrences of one word looked at (common words in a huge corpus)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_PARTS = re.compile(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+")
_QUOTES = re.compile(r"[\"\u201c\u201d\u201e\u00ab\u00bb]")
_VERSE_LABEL = re.compile(r"^(?P<book>.*\S)\s+(?P<c>\d+):(?P<v>\d+)$")
# Words that say nothing about where an answer came from.
_COMMON_WORDS = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those there here he she they them his her their we you i me my our your not no "
    "yes do does did so than then also which who whom whose what when where why how all any some "
    "one two three answer answers question document documents text line lines page verse word words "
    "named called has have had will would can could should may might"
)
_COMMON = frozenset(_COMMON_WORDS.split())
_PLACE_OF_KIND = {
    AnchorKind.PAGE: PlaceKind.PAGE,
    AnchorKind.LINES: PlaceKind.LINES,
    AnchorKind.CHAPTER: PlaceKind.CHAPTER,
    AnchorKind.VERSE: PlaceKind.VERSE,
}


def _content(ws: Sequence[str]) -> list[str]:
    return [w for w in ws if w not in _COMMON and not w.isdigit() and len(w) > 1]


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences, with its citations and quotation marks taken out."""
    text = answer
    for raw in reversed(parse_citations(answer)):
        text = text[: raw.start] + " " + text[raw.end :]
    text = _QUOTES.sub(" ", text)
    parts = [" ".join(p.split()) for p in _SENTENCE.split(text)]
    return [p for p in parts if p][:MAX_SENTENCES]


def _place(anchor: Anchor) -> Place:
    kind = _PLACE_OF_KIND[anchor.kind]
    if kind is PlaceKind.VERSE:
        m = _VERSE_LABEL.match(anchor.label.split(" - ")[0].strip())
        if m is not None:
            return Place(kind, int(m["v"]), int(m["v"]), m["book"], int(m["c"]))
    return Place(kind, anchor.start, anchor.end)


class Locator:
    """Finds where an answer's words are in one corpus (word indexes built once, shared with
    the verifier through the ``CorpusIndex``)."""

    def __init__(self, corpus: Corpus | CorpusIndex, config: VerifyConfig | None = None) -> None:
        self.index = corpus if isinstance(corpus, CorpusIndex) else CorpusIndex(corpus)
        self.verifier = Verifier(self.index, config)

    def locate_sentence(self, sentence: str) -> tuple[str, Anchor, float, str] | None:
        """``(doc_id, place, score, how)`` of the best match of ``sentence``, or None."""
        q = words(sentence)
        if not _content(q):
            return None
        best: tuple[float, str, int, int] | None = None
        for doc in self.index.corpus.documents:
            dw = self.verifier.doc_words(doc.doc_id)
            score, a, b = best_match(q, dw, 0, len(dw), rare_only=len(dw) > _WIDE_REGION)
            if score > 0 and (best is None or score > best[0]):
                best = (score, doc.doc_id, a, b)
            if score >= 1.0 and b - a == len(q):
                break
        if best is None or best[0] < LOCATE_THRESHOLD:
            return self._locate_words(q)
        score, doc_id, a, b = best
        dw = self.verifier.doc_words(doc_id)
        if not _content(dw.words_at(a, b)):
            return None  # only common words matched: no evidence of a place
        anchor = self.verifier._place(doc_id, a, b)
        how = f"best match {score:.0%}"
        if score >= 1.0 and b - a == len(q):
            how = "normalised"
            source = self.index.corpus.by_id(doc_id)
            bare = sentence.strip().rstrip(".!?;:,")
            if source is not None and bare and any(bare in s.text for s in source.segments):
                how = "exact"
        return doc_id, anchor, score, how

    def _locate_words(self, q: list[str]) -> tuple[str, Anchor, float, str] | None:
        """A reworded answer: the unit (line, page, verse) holding most of its content words."""
        wanted = set(_content(q))
        best: tuple[float, str, int] | None = None
        for doc in self.index.corpus.documents:
            dw = self.verifier.doc_words(doc.doc_id)
            per_unit: dict[int, set[str]] = {}
            for w in wanted:
                for pos in dw.positions(w)[:_MAX_POSITIONS]:
                    per_unit.setdefault(dw.unit_at(pos), set()).add(w)
            for unit, found in per_unit.items():
                share = len(found) / len(wanted)
                if best is None or share > best[0]:
                    best = (share, doc.doc_id, unit)
        if best is None or best[0] < LOCATE_THRESHOLD or len(wanted) < 2:
            return None
        share, doc_id, unit = best
        dw = self.verifier.doc_words(doc_id)
        first = dw.first_of(unit)
        anchor = self.verifier._place(doc_id, first, first + 1)
        return doc_id, anchor, share, "words"

    def locate(self, answer: str, verdicts: Sequence[Verdict] = ()) -> list[Verdict]:
        """Located citations for ``answer``; none when one of the model's own verified.

        Args:
            answer: the finished answer text.
            verdicts: the verdicts on the model's own citations (``CitationTracker``).
        """
        if any(v.ok for v in verdicts):
            return []
        out: list[Verdict] = []
        seen: set[tuple[str, int, int]] = set()
        at = len(answer)
        hits = []
        for sentence in answer_sentences(answer):
            found = self.locate_sentence(sentence)
            if found is not None:
                hits.append((sentence, found))
                continue
            # "barley, thyme and honey": a list whose items sit in different places.
            for part in _PARTS.split(sentence):
                item = self.locate_sentence(part) if len(_content(words(part))) else None
                if item is not None:
                    hits.append((part, item))
        for sentence, (doc_id, anchor, score, how) in hits:
            if (doc_id, anchor.start, anchor.end) in seen:
                continue
            seen.add((doc_id, anchor.start, anchor.end))
            place = _place(anchor)
            raw = RawCitation(format_citation(doc_id, place), at, at, doc_id, place)
            doc = self.index.corpus.by_id(doc_id)
            citation = Citation(
                index=len(verdicts) + len(out) + 1,
                raw=raw,
                doc_id=doc_id,
                doc_name=doc.name if doc is not None else "",
                anchor=anchor,
            )
            words_how = {
                "exact": "verbatim",
                "normalised": "ignoring case and punctuation",
                "words": f"{score:.0%} of its words, reworded",
            }.get(how, f"{score:.0%} of them, in order")
            reason = f"not cited by the model; Longdesk found the answer's words here ({words_how})"
            out.append(Verdict(citation, Status.LOCATED, reason, (QuoteCheck(sentence, score, anchor),)))
            if len(out) >= MAX_LOCATED:
                break
        return out


def locate_answer(
    answer: str,
    corpus: Corpus | CorpusIndex,
    verdicts: Sequence[Verdict] = (),
    config: VerifyConfig | None = None,
) -> list[Verdict]:
    """One-off: located citations for ``answer`` (see ``Locator.locate``)."""
    return Locator(corpus, config).locate(answer, verdicts)


def located_suffix(verdicts: Sequence[Verdict]) -> str:
    """The text a view appends to the answer to show its located citations: `` [D1, line 1]``."""
    return "".join(" " + v.citation.text for v in verdicts if v.status is Status.LOCATED)
