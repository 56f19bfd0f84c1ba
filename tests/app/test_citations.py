"""The window's citation records are grounding's verdicts, flattened; nothing is decided here."""

from __future__ import annotations

from longdesk.app.citations import AnswerCitations, Check, check_citations, doc_refs
from longdesk.engine.corpus.formats import text_document
from longdesk.engine.corpus.model import Corpus

FILLER = "".join(f"Shelf {n} holds jars of plain flour and sugar.\n" for n in range(4, 60))
NOTES = ("The kettle is blue.\nThe oven is broken.\nThe tap drips at night.\n" + FILLER).encode()


def _corpus() -> Corpus:
    return Corpus.of([text_document("kitchen/notes.md", "/k/notes.md", NOTES, "D1")])


def test_verified_only_when_the_quoted_words_are_at_the_cited_place() -> None:
    corpus = _corpus()
    answer = (
        'The kettle: "The kettle is blue." [D1, line 1]. The oven [D1, line 2]. '
        'Wrong line: "The tap drips at night" [D1, line 50]. Nowhere: [D1, line 400]. '
        'At the end [D1, line 3] "The tap drips at night."'
    )
    cites = check_citations(answer, corpus, doc_refs(corpus))
    assert [c.check for c in cites] == [
        Check.VERIFIED,
        Check.ANCHORED,  # a real place, nothing quoted: never shown as verified
        Check.FAILED,
        Check.UNRESOLVED,
        Check.VERIFIED,  # a quotation that ends the answer belongs to the citation before it
    ]
    assert "no quote to check" in cites[1].reason
    assert cites[4].quote == "The tap drips at night."


def test_incremental_checking_gives_the_same_verdicts_and_restarts_on_a_new_text() -> None:
    corpus = _corpus()
    refs = doc_refs(corpus)
    answer = '"The kettle is blue." [D1, line 1] and [D1, line 2] and [D9, line 1] "x".'
    state = AnswerCitations(corpus, refs)
    for end in range(1, len(answer) + 1, 5):
        state.update(answer[:end])
    streamed = state.update(answer, final=True)
    assert streamed == check_citations(answer, corpus, refs)
    other = 'Now: "The oven is broken." [D1, line 2]'
    assert [c.check for c in state.update(other, final=True)] == [Check.VERIFIED]


def test_without_the_corpus_citations_are_matched_to_the_documents_only() -> None:
    corpus = _corpus()
    cites = check_citations(
        '"The kettle is blue." [D1, line 1] [D1, line 90] [D4, p. 1]', None, doc_refs(corpus)
    )
    assert [c.check for c in cites] == [Check.UNVERIFIED, Check.UNRESOLVED, Check.UNRESOLVED]
    assert "not checked" in cites[0].reason
