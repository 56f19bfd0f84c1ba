"""The citing contract and the packed markup agree with what grounding parses and checks."""

from __future__ import annotations

from pathlib import Path

from engine.context.pack import default_instructions, pack
from engine.corpus.load import load_sources
from engine.corpus.model import AnchorKind, Corpus
from engine.grounding import CitationTracker, PlaceKind, Status, check_answer, parse_citations
from tests.grounding.texts import bible_document, make_pdf, read_pdf


def test_every_example_in_the_contract_parses() -> None:
    text = default_instructions()
    kinds = [c.place.kind for c in parse_citations(text)]
    assert kinds == [PlaceKind.PAGE, PlaceKind.LINES, PlaceKind.CHAPTER, PlaceKind.VERSE, PlaceKind.PAGE]
    assert len(text) < 1000  # part of every cached prefix: keep it short


def test_contract_example_with_quote_attaches_the_quote() -> None:
    corpus = Corpus.of([bible_document("D1", limit=50)])
    tracker = CitationTracker(corpus)
    tracker.feed(default_instructions())
    tracker.finish()
    verse = next(c for c in tracker.citations if c.raw.place.kind is PlaceKind.VERSE)
    assert verse.anchor is not None
    assert verse.anchor.label == "Genesis 1:1"
    last = tracker.citations[-1]
    assert [q.text for q in last.quotes] == ["the exact words"]


def test_each_packed_marker_can_be_cited(tmp_path: Path) -> None:
    """Whatever place marker the model reads in the packed text, citing it resolves."""
    src = tmp_path / "proj"
    src.mkdir()
    (src / "app.py").write_text("".join(f"value_{i} = {i}\n" for i in range(1, 36)))
    pdf = read_pdf(make_pdf(tmp_path / "r.pdf"), "D9")
    loaded = load_sources([src])
    corpus = Corpus.of([*loaded.documents, pdf])
    plan = pack(corpus, lambda s: len(s.split()), 1_000_000)
    answers = []
    for doc in corpus.documents:
        assert f'<doc id="{doc.doc_id}"' in plan.corpus_text
        for seg in doc.segments:
            a = seg.anchor
            place = f"p. {a.start}" if a.kind is AnchorKind.PAGE else f"lines {a.start}-{a.end}"
            first_line = seg.text.strip().split("\n")[0]
            answers.append(f'"{first_line}" [{doc.doc_id}, {place}]')
    verdicts, summary = check_answer("\n".join(answers), corpus)
    assert summary.found == len(answers) == 4 + 5
    assert all(v.status is Status.VERIFIED for v in verdicts), [v.reason for v in verdicts if not v.ok]
