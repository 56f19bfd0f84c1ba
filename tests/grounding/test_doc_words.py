"""The compact word index (``verify.DocWords``) and unit numbering (``resolve.build_doc_index``)
against plain references: the lists, dicts and unit texts the index used to keep."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from longdesk.engine.corpus.model import Anchor, AnchorKind, Document, DocumentKind, Segment
from longdesk.engine.grounding.resolve import build_doc_index, unit_texts
from longdesk.engine.grounding.verify import DocWords, words
from tests.grounding.texts import bible_document


def reference_units(doc: Document) -> dict[int, str]:
    """The units as the index used to keep them (one text per unit, built in one dict)."""
    units: dict[int, str] = {}
    verse_no = 0
    for seg in doc.segments:
        a = seg.anchor
        if a.kind is AnchorKind.VERSE:
            verse_no += 1
            units[verse_no] = seg.text
        elif a.kind is AnchorKind.LINES:
            lines = seg.text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if len(lines) == a.end - a.start + 1:
                for n, line in enumerate(lines, start=a.start):
                    units[n] = line + "\n"
            else:
                units[a.start] = units.get(a.start, "") + seg.text
                for n in range(a.start + 1, a.end + 1):
                    units.setdefault(n, "")
        else:
            units[a.start] = units.get(a.start, "") + seg.text
            for n in range(a.start + 1, a.end + 1):
                units.setdefault(n, "")
    return units


def reference_words(units: dict[int, str]) -> tuple[list[str], list[int], dict[str, list[int]]]:
    """Every word, the unit of every word, and every word's positions, as plain Python."""
    all_words: list[str] = []
    unit_of: list[int] = []
    for n in sorted(units):
        w = words(units[n])
        all_words += w
        unit_of += [n] * len(w)
    positions: dict[str, list[int]] = {}
    for i, word in enumerate(all_words):
        positions.setdefault(word, []).append(i)
    return all_words, unit_of, positions


def _doc(segments: list[Segment]) -> Document:
    return Document("D1", "t.txt", "/t.txt", DocumentKind.TEXT, "0" * 64, segments)


def _check(doc: Document) -> None:
    units = reference_units(doc)
    index = build_doc_index(doc)
    assert list(index.unit_nums) == sorted(units)
    assert index.count == max(units, default=0)
    assert unit_texts(doc) == units
    assert list(index.unit_texts()) == sorted(units.items())
    all_words, unit_of, positions = reference_words(units)
    dw = DocWords.of(index)
    assert len(dw) == len(all_words)
    assert dw.words_at(0, len(dw)) == all_words
    assert [dw.unit_at(i) for i in range(len(dw))] == unit_of
    for word, where in positions.items():
        assert list(dw.positions(word)) == where
        assert dw.occurrences(word) == len(where)
    first: dict[int, int] = {}
    for i, unit in enumerate(unit_of):
        first.setdefault(unit, i)
    assert {unit: dw.first_of(unit) for unit in first} == first
    assert list(dw.positions("not-a-word-here")) == []
    assert dw.occurrences("not-a-word-here") == 0
    for first, last in [(-5, 0), (1, 1), (2, 4), (0, 10**6), (len(units), len(units) + 3)]:
        lo = sum(1 for u in unit_of if u < first)
        hi = sum(1 for u in unit_of if u <= last)
        assert dw.span(first, last) == (lo, hi)


def test_pages_lines_and_mismatched_blocks() -> None:
    page = AnchorKind.PAGE
    lines = AnchorKind.LINES
    _check(
        _doc(
            [
                Segment(Anchor(page, 1, 1), "Alpha beta.\n"),
                Segment(Anchor(page, 1, 1), "gamma"),  # a second segment on the same page
                Segment(Anchor(page, 2, 4), "Delta, epsilon\n"),  # a range: 3 and 4 are empty
                Segment(Anchor(page, 6, 6), "zeta ALPHA"),
            ]
        )
    )
    _check(
        _doc(
            [
                Segment(Anchor(lines, 1, 3), "a = 1\nb = a\n\n"),  # three lines, one empty
                Segment(Anchor(lines, 4, 5), "c = b\n"),  # one line for two: kept whole
                Segment(Anchor(lines, 6, 6), "d = c"),  # no final newline
                Segment(Anchor(lines, 7, 6), ""),  # nothing at all
                Segment(Anchor(lines, 8, 9), "x\ny\nz\n"),  # three lines for two
            ]
        )
    )


def test_verses_are_numbered_in_reading_order() -> None:
    verse = AnchorKind.VERSE
    doc = _doc(
        [
            Segment(Anchor(verse, 0, 0, "Title"), "The Book\n"),
            Segment(Anchor(verse, 1, 1, "Genesis 1:1"), "In the beginning\n"),
            Segment(Anchor(verse, 2, 2, "Genesis 1:2"), "And the earth\n"),
        ]
    )
    _check(doc)
    index = build_doc_index(doc)
    assert [index.label(n) for n in range(5)] == ["", "Title", "Genesis 1:1", "Genesis 1:2", ""]
    assert (index.verse("genesis", 1, 1), index.verse("genesis", 1, 2)) == (2, 3)
    assert (index.verse("genesis", 1, 3), index.verse("exodus", 1, 1)) == (None, None)
    index.add_verse("genesis", 2**40, 1, 9)  # numbers past the compact key still work
    assert (index.verse("genesis", 2**40, 1), index.verse("genesis", 0, 1)) == (9, None)


def test_empty_document() -> None:
    doc = _doc([])
    index = build_doc_index(doc)
    assert (index.count, len(index.unit_nums), index.extent()) == (0, 0, "no text")
    dw = DocWords.of(index)
    assert len(dw) == 0
    assert dw.span(1, 3) == (0, 0)


_WORDS = st.sampled_from(["the", "The", "LORD", "said", "x1", "é", "ﬁne", "fine", "", " ", "\n", ",", "..."])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(AnchorKind)),
            st.integers(0, 6),
            st.integers(-1, 3),
            st.lists(_WORDS, max_size=12).map(" ".join),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_any_document_indexes_as_the_reference(
    parts: list[tuple[AnchorKind, int, int, str, bool]],
) -> None:
    segments = [
        Segment(Anchor(kind, start, start + extra, "Genesis 1:1" if kind is AnchorKind.VERSE else ""), text)
        for kind, start, extra, text, _ in parts
    ]
    _check(_doc(segments))


def test_bible_as_the_reference() -> None:
    _check(bible_document(limit=3000))


def test_whole_bible_index_is_compact() -> None:
    index = build_doc_index(bible_document())
    dw = DocWords.of(index)
    # A 2-byte word number and a 4-byte position a word, plus the vocabulary and the units; the
    # lists and dicts this index used to be cost over 90 bytes a word.
    assert len(dw) > 750_000
    assert dw.nbytes() < 6 * len(dw) + 2_000_000
