"""Following a streamed answer: citations as they complete, their quotes, and the CLI marks."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longdesk.app.cli.verdicts import print_citations
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.grounding import CitationTracker, Status
from tests.grounding.texts import code_document, code_text, make_pdf, read_pdf

ANSWER = (
    'The reservoir "held 4,210 megalitres" [D1, p. 2]; the repairs [D1, p. 3]: "cost 312,000 pounds".\n'
    'The code adds seventy: `return value + 70` (D2, lines 39-41). A meeting "in Paris" [D1, p. 9].\n'
    "Nothing is said about fish [D7, p. 1]."
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    pdf = make_pdf(tmp_path_factory.mktemp("pdf") / "water-report.pdf")
    return Corpus.of([read_pdf(pdf, "D1"), code_document(code_text(120), "pkg/steps.py", "D2")])


def _stream(tracker: CitationTracker, text: str, size: int) -> list[tuple[int, str]]:
    """Feed ``text`` in pieces; (characters fed when reported, citation text) per citation."""
    seen = []
    for i in range(0, len(text), size):
        for c in tracker.feed(text[i : i + size]):
            seen.append((i + size, c.text))
    seen += [(len(text), c.text) for c in tracker.finish()]
    return seen


def test_citations_are_reported_while_the_answer_streams(corpus: Corpus) -> None:
    tracker = CitationTracker(corpus)
    seen = _stream(tracker, ANSWER, 4)
    assert [t for _, t in seen] == [
        "[D1, p. 2]",
        "[D1, p. 3]",
        "(D2, lines 39-41)",
        "[D1, p. 9]",
        "[D7, p. 1]",
    ]
    # Each is reported within a few characters of its closing bracket (the quote after it decides).
    first_close = ANSWER.index("[D1, p. 2]") + len("[D1, p. 2]")
    assert seen[0][0] <= first_close + 4
    quoted_after = ANSWER.index('"cost 312,000 pounds"') + len('"cost 312,000 pounds"')
    assert seen[1][0] <= quoted_after + 4


def test_quotes_attach_to_the_right_citation(corpus: Corpus) -> None:
    tracker = CitationTracker(corpus)
    tracker.feed(ANSWER)
    tracker.finish()
    quotes = [[q.text for q in c.quotes] for c in tracker.citations]
    assert quotes == [
        ["held 4,210 megalitres"],
        ["cost 312,000 pounds"],
        ["return value + 70"],
        ["in Paris"],
        [],
    ]
    statuses = [v.status for v in tracker.verdicts()]
    assert statuses == [
        Status.VERIFIED,
        Status.VERIFIED,
        Status.VERIFIED,
        Status.UNRESOLVED,
        Status.UNRESOLVED,
    ]
    s = tracker.summary()
    assert (s.found, s.verified, s.unverified) == (5, 3, 2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ANSWER)), max_size=20))
def test_same_result_however_the_answer_is_cut(cuts: list[int]) -> None:
    corpus = Corpus.of([code_document(code_text(120), "pkg/steps.py", "D2")])
    whole = CitationTracker(corpus)
    whole.feed(ANSWER)
    whole.finish()
    points = sorted(set(cuts))
    pieces = [ANSWER[a:b] for a, b in zip([0, *points], [*points, len(ANSWER)], strict=True)]
    streamed = CitationTracker(corpus)
    for piece in pieces:
        streamed.feed(piece)
    streamed.finish()
    assert streamed.citations == whole.citations


def test_a_quote_between_two_citations_goes_to_the_one_it_precedes(corpus: Corpus) -> None:
    tracker = CitationTracker(corpus)
    tracker.feed('Two facts [D1, p. 1] "cost 312,000 pounds" [D1, p. 3].')
    tracker.finish()
    assert [[q.text for q in c.quotes] for c in tracker.citations] == [[], ["cost 312,000 pounds"]]
    assert [v.status for v in tracker.verdicts()] == [Status.ANCHORED, Status.VERIFIED]


def test_a_citation_naming_no_document_uses_the_previous_one(corpus: Corpus) -> None:
    tracker = CitationTracker(corpus)
    tracker.feed('The pumps [D1, p. 3] and later "fell by a third" (p. 4).')
    tracker.finish()
    last = tracker.citations[-1]
    assert (last.doc_id, last.anchor is not None and last.anchor.start) == ("D1", 4)
    assert tracker.verify(last).status is Status.VERIFIED


def test_cli_marks_verified_and_unverified_apart(corpus: Corpus) -> None:
    tracker = CitationTracker(corpus)
    tracker.feed(ANSWER)
    tracker.finish()
    out = io.StringIO()
    print_citations(tracker, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "longdesk: citations: 5 citations, 3 verified, 2 unverified"
    assert lines[1].startswith(
        "  \u2713 verified   [D1, p. 2]  D1 water-report.pdf p. 2: quote found on p. 2"
    )
    assert lines[4] == "  \u2717 UNVERIFIED [D1, p. 9]  page 9 does not exist in D1 (5 pages)"
    assert lines[5] == "  \u2717 UNVERIFIED [D7, p. 1]  no document D7"
