"""Follow one streamed answer: citations as they complete, with their quotes, verdicts, summary.

Which quotes belong to a citation: the quotations between the previous citation (or the last
quotation already taken) and this one, at most ``QUOTE_WINDOW`` characters back and in the
same paragraph: ``"the words" [D2, p. 3]``. When there are none, a quotation that follows the
citation directly, after nothing but spaces and ``:,-``: ``[D2, p. 3]: "the words"`` (unless
another bracket follows that quotation: then it is that citation's). A
citation is reported once this is decided, i.e. a few characters after its closing bracket,
or when the answer ends (an unclosed quotation mark before it delays it by at most
``MAX_QUOTE_CHARS``).
"""

from __future__ import annotations

import re

from longdesk.engine.corpus.model import Corpus
from longdesk.engine.grounding.citation import Citation, PlaceKind, Quote, RawCitation, Summary, Verdict
from longdesk.engine.grounding.parse import CitationScanner, QuoteScanner
from longdesk.engine.grounding.resolve import CorpusIndex, resolve, with_quotes
from longdesk.engine.grounding.verify import Verifier, VerifyConfig

QUOTE_WINDOW = 400  # characters before a citation searched for its quotes
_GAP = re.compile(r"[\s:,\-\u2013\u2014]*")
_GAP_MAX = 6


class CitationTracker:
    """Feed answer deltas; get citations (resolved, with quotes) as soon as they are complete.

    Example::

        tracker = CitationTracker(corpus)
        for delta in stream:
            for citation in tracker.feed(delta):
                show(citation, tracker.verify(citation))
        for citation in tracker.finish():
            show(citation, tracker.verify(citation))
        print(tracker.summary().describe())
    """

    def __init__(self, corpus: Corpus | CorpusIndex, config: VerifyConfig | None = None) -> None:
        self.index = corpus if isinstance(corpus, CorpusIndex) else CorpusIndex(corpus)
        self.verifier = Verifier(self.index, config)
        self._cites = CitationScanner(self._known)
        self._quotes = QuoteScanner()
        self._pending: list[RawCitation] = []
        self._done: list[Citation] = []
        self._verdicts: dict[int, Verdict] = {}
        self._taken_until = 0  # quotes ending before this are spoken for
        self._prev_end = 0
        self._prev_doc = ""
        self._final = False

    def _known(self, ref: str) -> bool:
        return self.index.known_name(ref)

    @property
    def text(self) -> str:
        return self._cites.text

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(self._done)

    def feed(self, delta: str) -> list[Citation]:
        """Add answer text; returns the citations completed by it, in order."""
        self._quotes.feed(delta)
        self._pending.extend(r for r in self._cites.feed(delta) if self._plausible(r))
        return self._settle()

    def finish(self) -> list[Citation]:
        """The answer ended: returns the citations that were still waiting for context."""
        self._final = True
        self._quotes.feed("", final=True)
        self._pending.extend(r for r in self._cites.finish() if self._plausible(r))
        return self._settle()

    def verify(self, citation: Citation) -> Verdict:
        """The verdict on a citation this tracker returned (computed once, then cached)."""
        if citation.index not in self._verdicts or self._verdicts[citation.index].citation != citation:
            self._verdicts[citation.index] = self.verifier.verify(citation)
        return self._verdicts[citation.index]

    def verdicts(self) -> list[Verdict]:
        return [self.verify(c) for c in self._done]

    def summary(self) -> Summary:
        """Found / verified / unverified over every citation reported so far."""
        return Summary.of(self.verdicts())

    # ------------------------------------------------------------------ quotes
    def _quotes_before(self, raw: RawCitation) -> tuple[Quote, ...] | None:
        """Quotes before ``raw``; ``None`` while the quote scanner has not got that far."""
        if not self._final and self._quotes.decided_up_to < raw.start:
            return None
        text = self.text
        floor = max(self._prev_end, self._taken_until, raw.start - QUOTE_WINDOW)
        return tuple(
            q
            for q in self._quotes.quotes
            if q.start >= floor and q.end <= raw.start and "\n\n" not in text[q.end : raw.start]
        )

    def _quote_after(self, raw: RawCitation) -> tuple[Quote, ...] | None:
        """A quote right after ``raw``: ``()`` when there is none; ``None`` when undecided."""
        text = self.text
        gap = _GAP.match(text, raw.end)
        assert gap is not None
        at = gap.end()
        if at >= len(text):
            return () if self._final or at - raw.end > _GAP_MAX else None
        if at - raw.end > _GAP_MAX:
            return ()
        if not self._final and self._quotes.decided_up_to <= at:
            return None
        after = [q for q in self._quotes.quotes if q.start == at]
        if not after:
            return ()
        # ``[D1, p. 2] "words" [D1, p. 3]``: a quote followed by a bracket belongs to that one.
        tail = _GAP.match(text, after[0].end)
        assert tail is not None
        if tail.end() >= len(text):
            return tuple(after) if self._final else None  # the answer ends with this quotation
        return () if text[tail.end()] in "[(" else tuple(after)

    def _settle(self) -> list[Citation]:
        out: list[Citation] = []
        while self._pending:
            raw = self._pending[0]
            if self._done and raw.start == self._done[-1].start:
                quotes: tuple[Quote, ...] | None = self._done[-1].quotes  # same bracket, same quotes
            else:
                quotes = self._quotes_before(raw)
                if quotes is None:
                    break
                if not quotes:
                    quotes = self._quote_after(raw)
                    if quotes is None:
                        break
            self._pending.pop(0)
            assert quotes is not None
            if quotes:
                self._taken_until = max(self._taken_until, quotes[-1].end)
            self._prev_end = raw.end
            cited = resolve(raw, self.index, self._prev_doc)
            if cited.doc_id:
                self._prev_doc = cited.doc_id
            citation = with_quotes(cited, len(self._done) + 1, quotes)
            self._done.append(citation)
            out.append(citation)
        return out

    def _plausible(self, raw: RawCitation) -> bool:
        """A verse with no document (``[Gen 1:1]``) counts only where the corpus has verses."""
        if raw.doc_ref or raw.place.kind is not PlaceKind.VERSE:
            return True
        if self.index.knows_book(raw.place.book):
            return True
        return bool(self.index.verse_docs()) and raw.place.book[:1].isupper()


def check_answer(
    answer: str, corpus: Corpus | CorpusIndex, config: VerifyConfig | None = None
) -> tuple[list[Verdict], Summary]:
    """Parse, resolve and verify every citation of a finished answer."""
    tracker = CitationTracker(corpus, config)
    tracker.feed(answer)
    tracker.finish()
    verdicts = tracker.verdicts()
    return verdicts, Summary.of(verdicts)


def verify(citation: Citation, corpus: Corpus | CorpusIndex, config: VerifyConfig | None = None) -> Verdict:
    """One-off check of a citation (a tracker's ``verify`` caches the indexes instead)."""
    index = corpus if isinstance(corpus, CorpusIndex) else CorpusIndex(corpus)
    return Verifier(index, config).verify(citation)
