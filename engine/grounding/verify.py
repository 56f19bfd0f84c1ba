"""Check a resolved citation against the source: the place exists and the quotes are there.

Matching rules (stated, so that a user can reason about a verdict):

* Text is compared as words: Unicode NFKC, case folded, split on anything that is not a
  letter or digit. Whitespace, punctuation, quote styles and line breaks never matter.
* A quote's score is the share of its words found, in order, in the best window of the source
  of the quote's length plus 10 % (at least one word) on either side (difflib matching blocks).
  A quote with an ellipsis (``...``, ``…``) is split there; each piece must match.
* A quote matches when its score is at least ``threshold`` (0.85 by default).
* It must match *near* the citation: the cited pages ± 1 page, lines ± 5 lines, verses ± 2
  verses, the cited chapter itself (``VerifyConfig``). A quote found farther away leaves the
  citation unverified, and the verdict says where the words actually are.
"""

from __future__ import annotations

import bisect
import re
import sys
import unicodedata
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from longdesk.engine.corpus.model import Anchor, AnchorKind
from longdesk.engine.grounding.citation import Citation, QuoteCheck, Status, Verdict
from longdesk.engine.grounding.resolve import CorpusIndex, DocIndex

_WORD = re.compile(r"\w+")
_ELLIPSIS = re.compile(r"\.\s*\.\s*\.|\u2026")
_MAX_CANDIDATES = 4000
_WIDE_REGION = 20_000  # words; wider regions (whole documents) search from rare words only


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """Thresholds and the meaning of "near" (in units of the cited place)."""

    threshold: float = 0.85
    page_slack: int = 1
    line_slack: int = 5
    chapter_slack: int = 0
    verse_slack: int = 2
    search_elsewhere: bool = True  # say where a quote that is not near the citation really is

    def slack(self, kind: AnchorKind) -> int:
        return {
            AnchorKind.PAGE: self.page_slack,
            AnchorKind.LINES: self.line_slack,
            AnchorKind.CHAPTER: self.chapter_slack,
            AnchorKind.VERSE: self.verse_slack,
        }[kind]


def words(text: str) -> list[str]:
    """The normalised words of a text (what matching compares)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


class DocWords:
    """A document's words in order, with the unit (page, line, verse...) each belongs to.

    Kept compact, since the checker indexes every document of a million-token corpus (as
    Python lists and dicts of strings and ints this index cost about 22 bytes per character of
    text, several times the text itself). Each distinct word is stored once, in a sorted list,
    and numbered by its place there (found by bisection: no dict, no int object per word). The
    document is an array of those numbers (2 bytes a word up to 65,536 distinct words, else 4),
    and where each word occurs is one more array, grouped by word (4 bytes a word). A word's
    unit is found by bisecting the units' first words.
    """

    __slots__ = ("_ids", "_order", "_starts", "_vocab", "unit_first", "unit_nums")

    def __init__(self, units: Iterable[tuple[int, str]]) -> None:
        """Args:
        units: ``(unit number, text)`` in ascending unit order.
        """
        first_seen: dict[str, int] = {}
        seen: array[int] = array("I")
        nums: array[int] = array("q")
        firsts: array[int] = array("q")
        for n, text in units:
            nums.append(n)
            firsts.append(len(seen))
            seen.extend([first_seen.setdefault(w, len(first_seen)) for w in words(text)])
        vocab = sorted(first_seen)
        renumber = array("I", bytes(4 * len(vocab)))
        for number, word in enumerate(vocab):
            renumber[first_seen[word]] = number
        del first_seen
        ids: array[int] = array("H" if len(vocab) <= 1 << 16 else "I", (renumber[i] for i in seen))
        del seen, renumber
        # Positions grouped by word (a counting sort): word i occurs at order[starts[i]:starts[i + 1]].
        starts: array[int] = array("I", bytes(4 * (len(vocab) + 1)))
        for i in ids:
            starts[i + 1] += 1
        for i in range(1, len(starts)):
            starts[i] += starts[i - 1]
        fill = array("I", starts)
        order: array[int] = array("I", bytes(4 * len(ids)))
        for pos, i in enumerate(ids):
            order[fill[i]] = pos
            fill[i] += 1
        self._vocab = vocab  # number → word, sorted
        self._ids = ids
        self._starts = starts
        self._order = memoryview(order)
        self.unit_nums = nums  # sorted unit numbers
        self.unit_first = firsts  # index of each unit's first word (parallel to unit_nums)

    def _number(self, word: str) -> int | None:
        i = bisect.bisect_left(self._vocab, word)
        return i if i < len(self._vocab) and self._vocab[i] == word else None

    @staticmethod
    def of(index: DocIndex) -> DocWords:
        return DocWords(index.unit_texts())

    def __len__(self) -> int:
        return len(self._ids)

    def nbytes(self) -> int:
        """The bytes this index holds: its arrays, its vocabulary and the vocabulary's words."""
        arrays = (self._ids, self._starts, self._order.obj, self.unit_nums, self.unit_first)
        held = sum(sys.getsizeof(a) for a in arrays)
        return held + sys.getsizeof(self._vocab) + sum(sys.getsizeof(w) for w in self._vocab)

    def words_at(self, start: int, end: int) -> list[str]:
        """The words ``start..end - 1``."""
        vocab = self._vocab
        return [vocab[i] for i in self._ids[start:end]]

    def ids_at(self, start: int, end: int) -> Sequence[int]:
        """The word numbers ``start..end - 1`` (compare with ``numbered``)."""
        return self._ids[start:end]

    def numbered(self, ws: Sequence[str]) -> list[int]:
        """``ws`` as word numbers; a word the document lacks gets a negative number of its own,
        so that numbers are equal exactly when words are."""
        absent: dict[str, int] = {}
        out: list[int] = []
        for w in ws:
            i = self._number(w)
            if i is None:
                i = absent.setdefault(w, -1 - len(absent))
            out.append(i)
        return out

    def positions(self, word: str) -> Sequence[int]:
        """Where ``word`` occurs, ascending (empty when it does not)."""
        i = self._number(word)
        if i is None:
            return ()
        return self._order[self._starts[i] : self._starts[i + 1]]

    def occurrences(self, word: str) -> int:
        i = self._number(word)
        return 0 if i is None else self._starts[i + 1] - self._starts[i]

    def unit_at(self, pos: int) -> int:
        """The unit word ``pos`` belongs to (``0 <= pos < len(self)``)."""
        return self.unit_nums[bisect.bisect_right(self.unit_first, pos) - 1]

    def first_of(self, unit: int) -> int:
        """The index of the first word of ``unit`` (a unit that has words)."""
        return self.unit_first[bisect.bisect_left(self.unit_nums, unit)]

    def span(self, first_unit: int, last_unit: int) -> tuple[int, int]:
        """Word index range covering units ``first_unit..last_unit``."""
        lo = bisect.bisect_left(self.unit_nums, first_unit)
        hi = bisect.bisect_right(self.unit_nums, last_unit)
        start = self.unit_first[lo] if lo < len(self.unit_first) else len(self)
        end = self.unit_first[hi] if hi < len(self.unit_first) else len(self)
        return start, end


def _score_at(q: Sequence[int], doc: DocWords, start: int, lo: int, hi: int) -> tuple[float, int, int]:
    """Share of ``q`` (word numbers) matched in order in ``doc`` near ``start``, within ``[lo, hi)``."""
    slack = max(1, len(q) // 10)
    a = max(lo, start - slack)
    b = min(hi, start + len(q) + slack)
    if a >= b:
        return 0.0, a, a
    matcher = SequenceMatcher(None, q, doc.ids_at(a, b), autojunk=False)
    blocks = [m for m in matcher.get_matching_blocks() if m.size]
    matched = sum(m.size for m in blocks)
    if not blocks:
        return 0.0, a, a
    return matched / len(q), a + blocks[0].b, a + blocks[-1].b + blocks[-1].size


def best_match(
    q: list[str], doc: DocWords, lo: int, hi: int, *, rare_only: bool = False, prefer: int = -1
) -> tuple[float, int, int]:
    """The best window for ``q`` in the words ``lo..hi - 1`` of ``doc``: (score, first word, end word).

    Candidate windows start where a quote word occurs (for the whole-document search, only
    where its rarest words occur), so the cost follows the matches, not the document size.
    Among equal scores the window nearest ``prefer`` (a word index) wins.
    """
    if not q or lo >= hi:
        return 0.0, lo, lo
    offsets: dict[str, list[int]] = {}
    for k, word in enumerate(q):
        offsets.setdefault(word, []).append(k)
    wanted = list(offsets)
    if rare_only:
        wanted.sort(key=doc.occurrences)
        wanted = [w for w in wanted if doc.occurrences(w)][:3]
    starts: set[int] = set()
    for w in wanted:
        pos = doc.positions(w)
        i = bisect.bisect_left(pos, lo)
        j = bisect.bisect_left(pos, hi)
        for p in pos[i:j]:
            starts.update(p - k for k in offsets[w])
        if len(starts) > _MAX_CANDIDATES:
            break
    best = (0.0, lo, lo)
    centre = prefer if prefer >= 0 else lo
    numbered = doc.numbered(q)
    for s in sorted(starts, key=lambda x: (abs(x - centre), x))[: _MAX_CANDIDATES * 2]:
        result = _score_at(numbered, doc, s, lo, hi)
        if result[0] > best[0]:
            best = result
            if best[0] >= 1.0:
                break
    return best


class Verifier:
    """Checks citations against one corpus; per-document word indexes are built once."""

    def __init__(self, corpus: CorpusIndex, config: VerifyConfig | None = None) -> None:
        self.corpus = corpus
        self.config = config or VerifyConfig()

    def doc_words(self, doc_id: str) -> DocWords:
        """The document's words, built once per CorpusIndex."""
        cached = self.corpus.word_cache.get(doc_id)
        if not isinstance(cached, DocWords):
            cached = DocWords.of(self.corpus.doc(doc_id))
            self.corpus.word_cache[doc_id] = cached
        return cached

    def _place(self, doc_id: str, first: int, last: int) -> Anchor:
        index = self.corpus.doc(doc_id)
        dw = self.doc_words(doc_id)
        kind = index.kind or AnchorKind.LINES
        u1 = dw.unit_at(first) if first < len(dw) else index.count
        u2 = dw.unit_at(max(first, last - 1)) if last - 1 < len(dw) else u1
        label = ""
        if kind is AnchorKind.VERSE:
            label = index.label(u1)
            if u2 != u1:
                label += " - " + index.label(u2)
        return Anchor(kind, u1, u2, label)

    def _elsewhere(self, q: list[str], cited_doc: str) -> str:
        order = [cited_doc] + [d.doc_id for d in self.corpus.corpus.documents if d.doc_id != cited_doc]
        for doc_id in order:
            dw = self.doc_words(doc_id)
            score, a, b = best_match(q, dw, 0, len(dw), rare_only=True)
            if score >= self.config.threshold:
                return f"{doc_id} {self._place(doc_id, a, b).describe()}"
        return ""

    def check_quote(self, citation: Citation, quote: str) -> QuoteCheck:
        """Score one quote at the cited place (with slack); the lowest piece counts."""
        doc_id = citation.doc_id
        dw = self.doc_words(doc_id)
        anchor = citation.anchor
        if anchor is None:
            lo, hi = 0, len(dw)
            prefer = 0
        else:
            slack = self.config.slack(anchor.kind)
            lo, hi = dw.span(anchor.start - slack, anchor.end + slack)
            prefer = dw.span(anchor.start, anchor.end)[0]
        pieces = [words(p) for p in _ELLIPSIS.split(quote)]
        pieces = [p for p in pieces if p] or [[]]
        worst: tuple[float, int, int] | None = None
        worst_piece: list[str] = []
        for piece in pieces:
            wide = hi - lo > _WIDE_REGION
            result = best_match(piece, dw, lo, hi, prefer=prefer, rare_only=wide) if piece else (1.0, lo, lo)
            if worst is None or result[0] < worst[0]:
                worst, worst_piece = result, piece
        assert worst is not None
        score, a, b = worst
        found = self._place(doc_id, a, b) if score > 0 else None
        elsewhere = ""
        if score < self.config.threshold and self.config.search_elsewhere and worst_piece:
            elsewhere = self._elsewhere(worst_piece, doc_id)
        return QuoteCheck(quote, score, found, elsewhere)

    def verify(self, citation: Citation) -> Verdict:
        """The verdict on one citation, with the reason in words."""
        if not citation.resolved:
            return Verdict(citation, Status.UNRESOLVED, citation.problem)
        where = citation.anchor.describe() if citation.anchor is not None else "the document"
        if not citation.quotes:
            return Verdict(
                citation, Status.ANCHORED, f"{where} exists in {citation.doc_id}; no quote to check"
            )
        checks = tuple(self.check_quote(citation, q.text) for q in citation.quotes)
        threshold = self.config.threshold
        bad = [c for c in checks if c.score < threshold]
        if not bad:
            low = min(checks, key=lambda c: c.score)
            at = low.found.describe() if low.found is not None else where
            moved = "" if _same_place(low.found, citation.anchor) else f", next to the cited {where}"
            noun = "quote" if len(checks) == 1 else f"{len(checks)} quotes"
            return Verdict(
                citation, Status.VERIFIED, f"{noun} found on {at}{moved} ({low.score:.0%})", checks
            )
        c = bad[0]
        best = f"best match {c.score:.0%}" + (f" on {c.found.describe()}" if c.found is not None else "")
        reason = f"quote not found on {where} in {citation.doc_id}; {best}"
        if c.elsewhere:
            reason += f"; the words are in {c.elsewhere}"
        return Verdict(citation, Status.QUOTE_NOT_FOUND, reason, checks)


def _same_place(found: Anchor | None, cited: Anchor | None) -> bool:
    if found is None or cited is None:
        return True
    return cited.start <= found.start and found.end <= cited.end


def verify_all(verifier: Verifier, citations: Iterable[Citation]) -> list[Verdict]:
    return [verifier.verify(c) for c in citations]
