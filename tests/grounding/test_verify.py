"""Verifying citations against real documents: a generated PDF, a code file, the KJV Bible."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdesk.engine.corpus.model import AnchorKind, Corpus
from longdesk.engine.grounding import CitationTracker, Status, Verdict, check_answer
from tests.grounding.texts import PAGE_TEXTS, bible_document, code_document, code_text, make_pdf, read_pdf


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    pdf = make_pdf(tmp_path_factory.mktemp("pdf") / "water-report.pdf")
    return Corpus.of([read_pdf(pdf, "D1"), code_document(code_text(120), "pkg/steps.py", "D2")])


def _verdict(answer: str, corpus: Corpus) -> Verdict:
    verdicts, summary = check_answer(answer, corpus)
    assert len(verdicts) == 1, verdicts
    assert summary.found == 1
    return verdicts[0]


# ---------------------------------------------------------------- the PDF
def test_pdf_page_texts_are_what_the_test_wrote(corpus: Corpus) -> None:
    doc = corpus.documents[0]
    assert [s.anchor.start for s in doc.segments] == [1, 2, 3, 4, 5]
    assert "4,210 megalitres" in doc.segments[1].text


def test_exact_quote_on_the_cited_page_is_verified(corpus: Corpus) -> None:
    v = _verdict('The reservoir "held 4,210 megalitres at the end of March" [D1, p. 2].', corpus)
    assert v.status is Status.VERIFIED
    assert v.ok
    assert v.citation.anchor is not None
    assert (v.citation.anchor.kind, v.citation.anchor.start) == (AnchorKind.PAGE, 2)
    assert v.checks[0].score == 1.0
    assert v.reason == "quote found on p. 2 (100%)"


def test_case_punctuation_and_line_breaks_do_not_matter(corpus: Corpus) -> None:
    v = _verdict(
        "\u201cREPAIRS to the Millbrook pumping-station\ncost 312 000 pounds\u201d "
        "(water-report.pdf, page 3)",
        corpus,
    )
    assert v.status is Status.VERIFIED, v.reason


def test_one_word_changed_in_twelve_still_matches(corpus: Corpus) -> None:
    # 11 of 12 words in order: 92% >= 85%.
    v = _verdict('"complaints about soft water fell by a third after the new softening" [D1, p. 4]', corpus)
    assert v.status is Status.VERIFIED
    assert 0.85 <= v.checks[0].score < 1.0


def test_paraphrase_is_not_a_quote(corpus: Corpus) -> None:
    v = _verdict('"complaints about taste dropped sharply once the plant opened" [D1, p. 4]', corpus)
    assert v.status is Status.QUOTE_NOT_FOUND
    assert not v.ok
    assert v.reason.startswith("quote not found on p. 4 in D1; best match ")
    assert v.checks[0].score < 0.85


def test_quote_on_the_next_page_is_near_enough(corpus: Corpus) -> None:
    v = _verdict('"walked every mile of the river banks" [D1, p. 4]', corpus)
    assert v.status is Status.VERIFIED
    assert v.reason == "quote found on p. 5, next to the cited p. 4 (100%)"


def test_quote_from_a_far_page_is_unverified_and_says_where(corpus: Corpus) -> None:
    v = _verdict('"walked every mile of the river banks" [D1, p. 1]', corpus)
    assert v.status is Status.QUOTE_NOT_FOUND
    assert "the words are in D1 p. 5" in v.reason


def test_page_that_does_not_exist(corpus: Corpus) -> None:
    v = _verdict('"the board met" [D1, p. 7]', corpus)
    assert v.status is Status.UNRESOLVED
    assert v.reason == "page 7 does not exist in D1 (5 pages)"


def test_document_that_does_not_exist(corpus: Corpus) -> None:
    v = _verdict("The board met eleven times [D9, p. 1].", corpus)
    assert v.status is Status.UNRESOLVED
    assert v.reason == "no document D9"
    v = _verdict("The board met eleven times [Minutes 2023.pdf, p. 1].", corpus)
    assert v.reason == "no document Minutes 2023.pdf"


def test_citation_without_quote_checks_the_place_only(corpus: Corpus) -> None:
    v = _verdict("The board met eleven times [D1, p. 1].", corpus)
    assert v.status is Status.ANCHORED
    assert v.ok
    assert v.reason == "p. 1 exists in D1; no quote to check"


def test_document_by_name_and_whole_document(corpus: Corpus) -> None:
    v = _verdict('"the new softening plant opened in June" [water-report.pdf]', corpus)
    assert v.status is Status.VERIFIED
    assert v.citation.doc_id == "D1"
    assert v.citation.anchor is None


def test_ellipsis_pieces_must_each_match(corpus: Corpus) -> None:
    ok = _verdict('"The northern reservoir held ... its highest level since 1998" [D1, p. 2]', corpus)
    assert ok.status is Status.VERIFIED
    bad = _verdict('"The northern reservoir held ... its lowest level in decades" [D1, p. 2]', corpus)
    assert bad.status is Status.QUOTE_NOT_FOUND


def test_every_page_verifies_its_own_text(corpus: Corpus) -> None:
    answer = " ".join(f'"{text}" [D1, p. {n}]' for n, text in enumerate(PAGE_TEXTS, start=1))
    verdicts, summary = check_answer(answer, corpus)
    assert [v.status for v in verdicts] == [Status.VERIFIED] * 5
    assert (summary.found, summary.verified, summary.unverified) == (5, 5, 0)


# ---------------------------------------------------------------- the code file
def test_code_lines_verified(corpus: Corpus) -> None:
    # step_10 is defined on line 39 (4n - 1); its return statement is line 41.
    v = _verdict("`return value + 70` (D2, lines 39-41)", corpus)
    assert v.status is Status.VERIFIED, v.reason
    assert v.citation.anchor is not None
    assert (v.citation.anchor.start, v.citation.anchor.end) == (39, 41)


def test_code_by_file_name_and_bare_line(corpus: Corpus) -> None:
    v = _verdict('"def step_3(value):" [steps.py:11]', corpus)
    assert v.status is Status.VERIFIED, v.reason
    assert v.citation.anchor is not None
    assert (v.citation.anchor.kind, v.citation.anchor.start) == (AnchorKind.LINES, 11)


def test_code_line_out_of_range_and_wrong_lines(corpus: Corpus) -> None:
    v = _verdict("[D2, lines 900-905]", corpus)
    assert v.reason == "line 905 does not exist in D2 (120 lines)"
    v = _verdict('"return value + 70" [D2, lines 100-102]', corpus)
    assert v.status is Status.QUOTE_NOT_FOUND
    assert "the words are in D2 line 41" in v.reason
    v = _verdict("[D2, p. 3]", corpus)
    assert v.reason == "D2 is cited by line, not by page"


def test_code_lines_within_slack(corpus: Corpus) -> None:
    # Line 41 is quoted, lines 43-45 cited: 2 lines away, inside the 5-line slack.
    v = _verdict('"return value + 70" [D2, lines 43-45]', corpus)
    assert v.status is Status.VERIFIED
    assert "next to the cited lines 43-45" in v.reason


# ---------------------------------------------------------------- the Bible
@pytest.fixture(scope="module")
def bible() -> Corpus:
    return Corpus.of([bible_document("D1")])


def test_bible_has_every_verse(bible: Corpus) -> None:
    doc = bible.documents[0]
    assert len(doc.segments) == 31_103
    assert doc.segments[0].anchor.label == "Genesis 1:1"
    assert doc.segments[-1].anchor.label == "Revelation 22:21"


def test_verse_citations(bible: Corpus) -> None:
    answer = (
        '"In the beginning God created the heaven and the earth" [Gen 1:1]. '
        '"Jesus wept." [D1, John 11:35]. '
        "Charity suffereth long [1 Cor 13:4]. "
        '"Let there be light" [D1, Genesis 1:5]. '
        '"Jesus wept" [Gen 1:1]. '
        "[Gen 51:1] [Hezekiah 3:4]"
    )
    tracker = CitationTracker(bible)
    tracker.feed(answer)
    tracker.finish()
    verdicts = tracker.verdicts()
    got = [(v.citation.text, v.status, v.reason) for v in verdicts]
    assert got[0] == ("[Gen 1:1]", Status.VERIFIED, "quote found on Genesis 1:1 (100%)")
    assert got[1][1] is Status.VERIFIED
    assert got[2][1] is Status.ANCHORED
    assert verdicts[2].citation.anchor is not None
    assert verdicts[2].citation.anchor.label == "1 Corinthians 13:4"
    assert got[3] == (
        "[D1, Genesis 1:5]",
        Status.VERIFIED,
        "quote found on Genesis 1:3, next to the cited Genesis 1:5 (100%)",
    )
    assert got[4][1] is Status.QUOTE_NOT_FOUND
    assert "the words are in D1 John 11:35" in got[4][2]
    assert got[5] == ("[Gen 51:1]", Status.UNRESOLVED, "no verse Genesis 51:1 in D1")
    assert got[6] == ("[Hezekiah 3:4]", Status.UNRESOLVED, "no book 'Hezekiah' in D1")
    s = tracker.summary()
    assert (s.found, s.verified, s.unverified, s.quotes_matched, s.unresolved) == (7, 4, 3, 3, 2)
    assert s.describe() == "7 citations, 3 verified, 1 place exists, not checked, 3 unverified"


def test_a_quote_cited_to_the_wrong_verse_is_found_across_the_whole_bible(bible: Corpus) -> None:
    verdicts, _ = check_answer('"And God said, Let there be light" [Revelation 22:21]', bible)
    assert verdicts[0].status is Status.QUOTE_NOT_FOUND
    assert "Genesis 1:3" in verdicts[0].reason


@pytest.mark.perf
def test_bible_index_is_fast_enough(bible: Corpus) -> None:
    import time

    t0 = time.perf_counter()
    verdicts, _ = check_answer('"And God said, Let there be light" [Revelation 22:21]', bible)
    assert verdicts[0].status is Status.QUOTE_NOT_FOUND
    assert time.perf_counter() - t0 < 15.0  # the whole 1M-token book indexed and searched


def test_whole_bible_citation_finds_the_quote(bible: Corpus) -> None:
    verdicts, _ = check_answer('"and the LORD shut him in" [kjv.jsonl]', bible)
    assert verdicts[0].status is Status.VERIFIED
    assert verdicts[0].reason == "quote found on Genesis 7:16 (100%)"


def test_pdf_citations_on_pdf_read_from_disk(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "two.pdf", ("alpha beta gamma delta", "epsilon zeta eta theta"))
    corpus = Corpus.of([read_pdf(pdf, "D1")])
    verdicts, summary = check_answer(
        '"zeta eta" [D1, p. 2] and "alpha beta" [D1, p. 2] and [D1, pp. 1-3]', corpus
    )
    assert [v.status for v in verdicts] == [Status.VERIFIED, Status.VERIFIED, Status.UNRESOLVED]
    assert verdicts[1].reason == "quote found on p. 1, next to the cited p. 2 (100%)"
    assert verdicts[2].reason == "page 3 does not exist in D1 (2 pages)"
    assert summary.unverified == 1
