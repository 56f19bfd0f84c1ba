"""Finding citations in answer text: the variants models write, streaming, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longdesk.engine.grounding import Place, PlaceKind, find_quotes, format_citation, parse_citations
from longdesk.engine.grounding.parse import CitationScanner, QuoteScanner


def _one(text: str) -> tuple[str, Place]:
    found = parse_citations(text)
    assert len(found) == 1, found
    return found[0].doc_ref, found[0].place


@pytest.mark.parametrize(
    ("text", "doc", "place"),
    [
        ("[D2, p. 12]", "D2", Place(PlaceKind.PAGE, 12, 12)),
        ("[D2 p12]", "D2", Place(PlaceKind.PAGE, 12, 12)),
        ("[D2, pages 3-4]", "D2", Place(PlaceKind.PAGE, 3, 4)),
        ("[D2, pp. 3\u20134]", "D2", Place(PlaceKind.PAGE, 3, 4)),
        ("[D2, page 3 to 5]", "D2", Place(PlaceKind.PAGE, 3, 5)),
        ("(D5, lines 40\u201344)", "D5", Place(PlaceKind.LINES, 40, 44)),
        ("[D5:L40-44]", "D5", Place(PlaceKind.LINES, 40, 44)),
        ("[D5, L40-L44]", "D5", Place(PlaceKind.LINES, 40, 44)),
        ("[D5, line 7]", "D5", Place(PlaceKind.LINES, 7, 7)),
        ("[D3, ch. 2]", "D3", Place(PlaceKind.CHAPTER, 2, 2)),
        ("[D3, chapter 2]", "D3", Place(PlaceKind.CHAPTER, 2, 2)),
        ("[Gen 1:1]", "", Place(PlaceKind.VERSE, 1, 1, "Gen", 1)),
        ("[D1, Genesis 1:1-3]", "D1", Place(PlaceKind.VERSE, 1, 3, "Genesis", 1)),
        ("[1 Cor 13:4]", "", Place(PlaceKind.VERSE, 4, 4, "1 Cor", 13)),
        ("[Song of Solomon 2:1]", "", Place(PlaceKind.VERSE, 1, 1, "Song of Solomon", 2)),
        ("[report.pdf, p. 3]", "report.pdf", Place(PlaceKind.PAGE, 3, 3)),
        ("[\u201creport.pdf\u201d, p. 3]", "report.pdf", Place(PlaceKind.PAGE, 3, 3)),
        ("[app.py:40]", "app.py", Place(PlaceKind.NUMBER, 40, 40)),
        ("[D2]", "D2", Place(PlaceKind.DOCUMENT)),
        ("[D1 <p12>]", "D1", Place(PlaceKind.PAGE, 12, 12)),
        ("[see D2, p. 3]", "D2", Place(PlaceKind.PAGE, 3, 3)),
        ("(see page 4)", "", Place(PlaceKind.PAGE, 4, 4)),
        ("[document 2, p. 3]", "D2", Place(PlaceKind.PAGE, 3, 3)),
        ("[**D2**, p.\u00a03]", "D2", Place(PlaceKind.PAGE, 3, 3)),
    ],
)
def test_variants_models_write(text: str, doc: str, place: Place) -> None:
    assert _one(f"The answer is here {text}.") == (doc, place)


@pytest.mark.parametrize(
    "text",
    ["(2019)", "[1]", "(x, 3)", "ratio (3:2)", "(as shown in the figure on page 4)", "[link](http://a.b)"],
)
def test_prose_in_brackets_is_not_a_citation(text: str) -> None:
    assert parse_citations(text) == []


def test_several_citations_in_one_bracket() -> None:
    found = parse_citations("Both [D2, p. 3; D5, lines 4-6] and [D2, pp. 3, 5].")
    assert [(c.doc_ref, c.place.describe()) for c in found] == [
        ("D2", "p. 3"),
        ("D5", "lines 4-6"),
        ("D2", "p. 3"),
        ("D2", "p. 5"),
    ]
    assert found[0].text == "[D2, p. 3; D5, lines 4-6]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(D2 p. 3, D4 p. 5)", [("D2", "p. 3"), ("D4", "p. 5")]),
        ("[D2, p. 3 and D4, p. 1]", [("D2", "p. 3"), ("D4", "p. 1")]),
        ("[D1, lines 12 and 15]", [("D1", "line 12"), ("D1", "line 15")]),
        ("[D2, p. 3; p. 5]", [("D2", "p. 3"), ("D2", "p. 5")]),
        ("[app.py#L40-L44]", [("app.py", "lines 40-44")]),
    ],
)
def test_lists_of_citations(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(c.doc_ref, c.place.describe()) for c in parse_citations(text)] == expected


def test_offsets_point_at_the_citation() -> None:
    text = 'It rose "to 4,210 megalitres" (D2, p. 2) in March.'
    (c,) = parse_citations(text)
    assert text[c.start : c.end] == "(D2, p. 2)"
    (q,) = find_quotes(text)
    assert q.text == "to 4,210 megalitres"
    assert text[q.start : q.end] == '"to 4,210 megalitres"'


def test_citation_split_across_deltas_is_found_once_complete() -> None:
    scanner = CitationScanner()
    assert scanner.feed("The level rose [D") == []
    assert scanner.feed("2, p") == []
    assert scanner.feed(". 1") == []
    (c,) = scanner.feed("2] and then")
    assert (c.doc_ref, c.place) == ("D2", Place(PlaceKind.PAGE, 12, 12))
    assert scanner.feed(" more text.") == []
    assert scanner.finish() == []


def test_unclosed_bracket_is_given_up_after_the_limit() -> None:
    scanner = CitationScanner()
    assert scanner.feed("[D2, p. 3 " + "x" * 300) == []
    (c,) = scanner.feed(" [D3, p. 1]")
    assert c.doc_ref == "D3"


def test_smart_quotes_and_backticks_are_quotations() -> None:
    quotes = [q.text for q in find_quotes("He wrote \u201cthe quick fox\u201d and `def step_1(value):` here")]
    assert quotes == ["the quick fox", "def step_1(value):"]


# ---------------------------------------------------------------- properties
_TEXT = st.text(alphabet=st.sampled_from(list('ab D12pL.:,;-\u2013[]()"\u201c\u201d`\n ')), max_size=300)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), _TEXT))
def test_parser_never_crashes(text: str) -> None:
    for c in parse_citations(text):
        assert 0 <= c.start < c.end <= len(text)
    find_quotes(text)


@settings(max_examples=200, deadline=None)
@given(_TEXT, st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_streaming_finds_what_the_whole_text_has(text: str, cuts: list[int]) -> None:
    """However the answer is cut into deltas, the same citations and quotes are found."""
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    scanner, quotes = CitationScanner(), QuoteScanner()
    streamed = []
    for piece in pieces:
        streamed += scanner.feed(piece)
        quotes.feed(piece)
    streamed += scanner.finish()
    quotes.feed("", final=True)
    assert streamed == parse_citations(text)
    assert quotes.quotes == find_quotes(text)


_PLACES = st.one_of(
    st.builds(lambda a, n: Place(PlaceKind.PAGE, a, a + n), st.integers(1, 9999), st.integers(0, 5)),
    st.builds(lambda a, n: Place(PlaceKind.LINES, a, a + n), st.integers(1, 99999), st.integers(0, 50)),
    st.builds(lambda a: Place(PlaceKind.CHAPTER, a, a), st.integers(1, 300)),
    st.builds(
        lambda b, c, v, n: Place(PlaceKind.VERSE, v, v + n, b, c),
        st.sampled_from(["Genesis", "Gen", "1 Cor", "Song of Solomon", "John", "Ps"]),
        st.integers(1, 150),
        st.integers(1, 176),
        st.integers(0, 3),
    ),
)
_DOCS = st.one_of(
    st.integers(1, 999).map(lambda n: f"D{n}"),
    st.sampled_from(["report.pdf", "src/app.py", "Annual Report 2024.pdf", "kjv.jsonl"]),
)
_STYLES = [
    "{c}",
    "{c}.",
    "see {c}",
    "{c}, and more",
    "\u201cquoted words\u201d {c}",
]


@settings(max_examples=300, deadline=None)
@given(_DOCS, _PLACES, st.sampled_from(_STYLES))
def test_formatted_citation_round_trips(doc: str, place: Place, style: str) -> None:
    written = format_citation(doc, place)
    text = "Some claim " + style.format(c=written)
    assert _one(text) == (doc, place)
    # The same with the variants of punctuation models produce.
    variant = written.replace("-", "\u2013").replace("[", "(").replace("]", ")")
    assert _one(variant) == (doc, place)
