"""The citing contract and the packed markup agree with what grounding parses and checks."""

from __future__ import annotations

from pathlib import Path

from longdesk.engine.context.pack import default_instructions, pack
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import AnchorKind, Corpus
from longdesk.engine.grounding import CitationTracker, PlaceKind, Status, check_answer, parse_citations
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


def test_verses_read_from_the_packed_text_can_be_cited() -> None:
    """``<v Genesis 2>`` then ``3 And on the seventh day...``: citing Gen 2:3 resolves and verifies."""
    import re

    corpus = Corpus.of([bible_document("D1", limit=80)])
    text = pack(corpus, lambda s: len(s.split()), 1_000_000).corpus_text
    assert "<v Genesis 2>\n1 Thus the heavens and the earth were finished" in text
    answers = []
    chapter = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"<v Genesis (\d+)>", line):
            chapter = m[1]
        elif m := re.match(r"(\d+) (\S+ \S+ \S+ \S+)", line):
            answers.append(f'"{m[2]}" [D1, Gen {chapter}:{m[1]}]')
    assert len(answers) == 80
    verdicts, summary = check_answer("\n".join(answers), corpus)
    assert summary.found == 80
    assert all(v.status is Status.VERIFIED for v in verdicts), [v.reason for v in verdicts if not v.ok]
    labels = {v.citation.anchor.label for v in verdicts if v.citation.anchor is not None}
    assert {"Genesis 1:1", "Genesis 2:3", "Genesis 3:24"} <= labels
