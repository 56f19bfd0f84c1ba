"""Located citations: where the model did not cite, the place the answer's words are at."""

from __future__ import annotations

from pathlib import Path

from longdesk.app.citations import Check, check_citations, doc_refs, shown_answer
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.grounding import Status, Summary, check_answer, locate_answer, located_suffix

LIGHTHOUSE = "The lighthouse keeper on Skerry Island is named Tobias Venn.\n"
LOG = (
    "Day one: fog all morning, the lamp was trimmed at noon.\n"
    "Day two: the supply boat brought barley and thyme.\n"
    "Day three: storm from the west; the keeper wrote that honey ran short.\n"
)


def _corpus(tmp_path: Path) -> object:
    (tmp_path / "keeper.txt").write_text(LIGHTHOUSE)
    (tmp_path / "log.txt").write_text(LOG)
    return load_sources([tmp_path])


def test_an_uncited_answer_is_located_on_its_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    (located,) = locate_answer("Tobias Venn", corpus)  # type: ignore[arg-type]
    assert located.status is Status.LOCATED
    assert not located.ok  # never called verified
    c = located.citation
    assert c.doc_name.endswith("keeper.txt")
    assert c.anchor is not None
    assert (c.anchor.start, c.anchor.end) == (1, 1)
    assert c.text == f"[{c.doc_id}, line 1]"
    assert "verbatim" in located.reason
    assert "not cited by the model" in located.reason
    assert located_suffix([located]) == f" [{c.doc_id}, line 1]"
    assert Summary.of([located]).describe() == (
        "no citations from the model; 1 located in the source (not cited by the model)"
    )


def test_paraphrase_and_list_items_are_located_where_each_is(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    (one,) = locate_answer("The keeper is named Tobias Venn on Skerry Island.", corpus)  # type: ignore[arg-type]
    assert one.citation.anchor is not None
    assert one.citation.doc_name.endswith("keeper.txt")
    items = locate_answer("barley, thyme and honey", corpus)  # type: ignore[arg-type]
    lines = sorted(v.citation.anchor.start for v in items if v.citation.anchor is not None)
    assert lines == [2, 3]  # barley and thyme on line 2 (one place, once), honey on line 3


def test_nothing_is_located_for_answers_without_evidence(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    for answer in ("Yes.", "1.", "", "The documents do not say.", "Margaret Oduya keeps it."):
        assert locate_answer(answer, corpus) == [], answer  # type: ignore[arg-type]


def test_a_verified_citation_of_the_model_needs_no_located_one(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    doc = next(d for d in corpus.documents if d.name.endswith("keeper.txt"))  # type: ignore[attr-defined]
    answer = f'"named Tobias Venn" [{doc.doc_id}, line 1]'
    verdicts, summary = check_answer(answer, corpus)  # type: ignore[arg-type]
    assert summary.verified == 1
    assert locate_answer(answer, corpus, verdicts) == []  # type: ignore[arg-type]
    wrong = f"Tobias Venn [{doc.doc_id}, line 9]"  # a place that does not exist: locate the words
    verdicts, _ = check_answer(wrong, corpus)  # type: ignore[arg-type]
    (located,) = locate_answer(wrong, corpus, verdicts)  # type: ignore[arg-type]
    assert located.citation.anchor is not None
    assert located.citation.anchor.start == 1


def test_the_window_shows_the_located_citation_after_the_answer(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    cites = check_citations("Tobias Venn", corpus, doc_refs(corpus))  # type: ignore[arg-type]
    (cite,) = cites
    assert cite.check is Check.LOCATED
    assert cite.place() == "line 1"
    shown = shown_answer("Tobias Venn", cites)
    assert shown[cite.start : cite.end] == cite.raw  # clickable where it is drawn
    assert shown == f"Tobias Venn {cite.raw}"
