"""Segments stored compactly: the same Segments back, rebased into the packed blocks, small peak."""

from __future__ import annotations

import gc
import tracemalloc
from array import array
from pathlib import Path

import pytest

from longdesk.engine.context.pack import document_block, pack
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import Anchor, AnchorKind, Document, DocumentKind, Segment
from longdesk.engine.corpus.segments import SegmentTable


def _reference_lines(text: str, per: int) -> list[Segment]:
    """Blocks of ``per`` lines the plain way (split, join), to compare the table with."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for start in range(0, len(lines), per):
        chunk = lines[start : start + per]
        out.append(Segment(Anchor(AnchorKind.LINES, start + 1, start + len(chunk)), "\n".join(chunk) + "\n"))
    return out


@pytest.mark.parametrize(
    "text",
    ["", "one", "one\n", "a\nb\nc\nd\ne\nf\ng", "a\n\n\nb\n", "\n\n\n\n\n\n\n", "x\u2603\n\U0001f600y\n"],
)
@pytest.mark.parametrize("per", [1, 3])
def test_line_blocks_are_offsets_with_the_same_segments(text: str, per: int) -> None:
    table = SegmentTable.lines(text, per)
    assert list(table) == _reference_lines(text, per)
    assert table.joined() == "".join(s.text for s in _reference_lines(text, per))
    assert table.char_count == len(table.joined())


def test_any_segments_round_trip_and_documents_keep_them_as_a_table() -> None:
    segs = (
        Segment(Anchor(AnchorKind.VERSE, 0, 0, "front matter"), "The Book\n"),
        Segment(Anchor(AnchorKind.VERSE, 1, 1, "Genesis 1:1"), "In the beginning.\n"),
        Segment(Anchor(AnchorKind.PAGE, 7, 7), "no newline"),
        Segment(Anchor(AnchorKind.LINES, 300, 4000), ""),
    )
    doc = Document("D1", "b.txt", "/b.txt", DocumentKind.TEXT, "0" * 64, segs)
    assert isinstance(doc.segments, SegmentTable)
    assert doc.segments == segs
    assert tuple(doc.segments) == segs
    assert doc.segments[-1] == segs[-1]
    assert doc.segments[1:3] == list(segs[1:3])
    assert doc.text == "The Book\nIn the beginning.\nno newline"
    assert doc.char_count == len(doc.text)
    assert doc == Document("D1", "b.txt", "/b.txt", DocumentKind.TEXT, "0" * 64, list(segs))
    with pytest.raises(IndexError):
        doc.segments[4]


@pytest.mark.parametrize("lo_hi", [(0, 0), (1, 1), (2, 9), (12, 12), (13, 40), (-5, 0), (40, 50)])
def test_place_questions_from_the_arrays_agree_with_the_segments(lo_hi: tuple[int, int]) -> None:
    segs = [
        Segment(Anchor(AnchorKind.VERSE, 0, 0, "front matter"), "The Book\n"),
        *(Segment(Anchor(AnchorKind.VERSE, n, n, f"Genesis 1:{n}"), f"verse {n}\n") for n in range(1, 13)),
        Segment(Anchor(AnchorKind.VERSE, 0, 0, "a heading"), "Exodus\n"),
        Segment(Anchor(AnchorKind.VERSE, 13, 14, "Exodus 1:1"), "two verses\n"),
    ]
    table = SegmentTable.of(segs)
    lo, hi = lo_hi
    plain = [i for i, s in enumerate(segs) if s.anchor.end >= lo and s.anchor.start <= hi]
    assert table.overlapping(lo, hi) == plain
    assert table.last_number() == 14
    assert table.numbered_count() == 13
    assert table.label_index("Genesis 1:7") == 7
    assert table.label_index("Exodus 1:1") == 14
    assert table.label_index("Genesis 2:1") == -1
    assert SegmentTable.lines("a\nb\n", 1).label_index("") == -1  # no labels at all
    assert SegmentTable.of([]).last_number() == 0
    doc = Document("D1", "b.txt", "/b.txt", DocumentKind.TEXT, "0" * 64, segs)
    assert doc.extent() == "13 verses"


def test_plain_rows_make_the_same_table_as_segments() -> None:
    segs = [
        Segment(Anchor(AnchorKind.PAGE, 1, 1), "first page\n"),
        Segment(Anchor(AnchorKind.PAGE, 2, 3, "ii"), "x\u2603 \U0001f600\n"),
        Segment(Anchor(AnchorKind.CHAPTER, 4, 4), ""),
    ]
    rows = [(s.anchor.kind.value, s.anchor.start, s.anchor.end, s.anchor.label, s.text) for s in segs]
    table = SegmentTable.of_rows(rows)
    assert list(table) == segs
    assert table == SegmentTable.of(segs)
    with pytest.raises(ValueError, match="unknown anchor kind 'scroll'"):
        SegmentTable.of_rows([("scroll", 1, 1, "", "text")])
    with pytest.raises(ValueError, match="invalid literal"):
        SegmentTable.of_rows([("page", "one", 1, "", "text")])


def test_the_in_place_prefilter_finds_what_a_segment_holds_and_not_what_none_does() -> None:
    segs = [
        Segment(Anchor(AnchorKind.LINES, 1, 1), "key = AKIA1234\n"),
        Segment(Anchor(AnchorKind.LINES, 2, 2), "x\n"),
    ]
    table = SegmentTable.of(segs)
    assert table.may_contain(("sk-", "AKIA"))
    assert not table.may_contain(("ghp_", "-----BEGIN "))
    block = "<doc>\n" + "".join(s.text for s in segs) + "</doc>\n"  # rebased into a block
    table.rebase(block, array("q", [6, 21]), array("q", [21, 23]))
    assert table.may_contain(("AKIA",))
    assert not table.may_contain(("ghp_",))


def test_packing_moves_the_text_into_the_blocks_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("".join(f"x_{i} = {i}\n" for i in range(95)))
    (tmp_path / "b.md").write_text("# Title\n\nNo final newline, and a snowman \u2603")
    corpus = load_sources([tmp_path])
    before = [tuple(d.segments) for d in corpus.documents]
    blocks = [document_block(d) for d in corpus.documents]
    plan = pack(corpus, len, 10**6)
    assert [tuple(d.segments) for d in corpus.documents] == before
    assert plan.corpus_blocks[1:-1] == tuple(blocks)
    again = pack(corpus, len, 10**6)  # rebased documents pack to the same bytes
    assert again.corpus_text == plan.corpus_text
    for doc, span in zip(corpus.documents, plan.spans, strict=True):
        # Each segment's text is where the table says, inside the document's block.
        block = plan.corpus_text[span.start : span.end]
        assert block == document_block(doc)
        for seg in doc.segments:
            assert seg.text in block
    with pytest.raises(ValueError, match="other lengths"):
        corpus.documents[0].table.rebase("short", array("q", [0]), array("q", [1]))


def test_packing_again_uses_the_same_blocks(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("".join(f"x_{i} = {i}\n" for i in range(95)))
    (tmp_path / "b.txt").write_text("Genesis 1:1 In the beginning\nGenesis 1:2 And the earth\n")
    corpus = load_sources([tmp_path])
    assert all(d.table.packed_store() is None for d in corpus.documents)
    first = pack(corpus, len, 10**6)
    second = pack(corpus, len, 10**6, instructions="Another model's header.")
    # The same string objects: the corpus is held once however often it is packed.
    assert all(a is b for a, b in zip(first.corpus_blocks[1:-1], second.corpus_blocks[1:-1], strict=True))
    assert second.corpus_text == first.corpus_text
    # A document with another id over the same segments gets its own block, its own header.
    doc = corpus.documents[0]
    renamed = Document("DOTHER", doc.name, doc.source, doc.kind, doc.sha256, doc.table)
    block = document_block(renamed)
    assert block.startswith('<doc id="DOTHER"')
    assert block[block.index("\n") :] == first.corpus_blocks[1][first.corpus_blocks[1].index("\n") :]
    assert [s.text for s in renamed.segments] == [s.text for s in doc.segments]


class _NewlineSafeCounter:
    """Counts characters; declares that counts add up across lines, as the Gemma and DeepSeek
    counters do, so the prefix is counted from the blocks (a whole-text tokenizer needs the one
    string)."""

    line_additive = True

    def __call__(self, text: str) -> int:
        return len(text)


def test_reading_and_packing_peak_stays_under_three_times_the_text(tmp_path: Path) -> None:
    """Loaded documents plus packed blocks held once, not twice (was 4.9x on the stdlib bench)."""
    src = tmp_path / "src"
    src.mkdir()
    line = "    result = compute(alpha, beta)  # a line of ordinary code\n"
    for i in range(60):
        (src / f"mod_{i}.py").write_text(f"def f_{i}():\n" + line * 500)
    (src / "wide.py").write_text("# \u2603 makes the packed string two bytes a character\n" + line * 50)
    text_bytes = sum(p.stat().st_size for p in src.iterdir())
    gc.collect()
    tracemalloc.start()
    try:
        corpus = load_sources([src])
        plan = pack(corpus, _NewlineSafeCounter(), 10**7)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plan.corpus_chars > text_bytes
    assert peak <= 3 * text_bytes, f"peak {peak / text_bytes:.2f}x the text"


_EDGE_TABLES = {
    "empty": [],
    "one empty segment": [Segment(Anchor(AnchorKind.LINES, 3, 2), "")],
    "mixed kinds and labels": [
        Segment(Anchor(AnchorKind.VERSE, 0, 0, "front matter"), "The Book\n"),
        Segment(Anchor(AnchorKind.VERSE, 1, 1, "Genesis 1:1"), "In the beginning.\n"),
        Segment(Anchor(AnchorKind.PAGE, 7, 7), "no newline \U0001f600"),
        Segment(Anchor(AnchorKind.CHAPTER, 2**40, 2**40 + 1), ""),
        Segment(Anchor(AnchorKind.LINES, -1, 4000), "x\u2603\n"),
    ],
    "no labels": [Segment(Anchor(AnchorKind.PAGE, n, n), f"page {n}\n") for n in range(1, 50)],
}


@pytest.mark.parametrize("name", list(_EDGE_TABLES))
def test_columns_give_back_the_same_segments_from_a_plain_or_a_packed_table(name: str) -> None:
    import msgspec

    segs = _EDGE_TABLES[name]
    doc = Document("D1", "b.txt", "/b.txt", DocumentKind.TEXT, "0" * 64, segs)
    plain = SegmentTable.of_columns(msgspec.msgpack.decode(msgspec.msgpack.encode(doc.table.columns())))
    assert list(plain) == segs
    assert [tuple(r) for r in doc.table.rows()] == [
        (s.anchor.kind, s.anchor.start, s.anchor.end, s.anchor.label, s.text) for s in segs
    ]
    if segs:  # after packing the text lives in the block, between markers: the same columns
        from longdesk.engine.corpus.model import Corpus

        pack(Corpus.of([doc], []), len, 10**6)
        assert doc.table.packed_store() is not None
        assert list(SegmentTable.of_columns(doc.table.columns())) == segs
        assert list(doc.table.rows()) == [
            (s.anchor.kind, s.anchor.start, s.anchor.end, s.anchor.label, s.text) for s in segs
        ]


def test_malformed_columns_are_refused_with_a_reason() -> None:
    good = SegmentTable.of(_EDGE_TABLES["mixed kinds and labels"]).columns()
    bad_ends = array("q", [3, 1, 30, 30, 33]).tobytes()
    cases = {
        "missing": {k: v for k, v in good.items() if k != "ends"},
        "text not a string": {**good, "text": b"bytes"},
        "ends past the text": {**good, "text": "short"},
        "ends out of order": {**good, "ends": bad_ends},
        "ragged integers": {**good, "first": b"\x00" * 7},
        "other lengths": {**good, "kinds": good["kinds"][:-1]},  # type: ignore[index]
        "unknown kind": {**good, "kinds": b"\x00\x00\x00\x00\x7f"},
        "labels not strings": {**good, "labels": [1, 2, 3, 4, 5]},
    }
    refused = {}
    for what, columns in cases.items():
        try:
            SegmentTable.of_columns(columns)
        except ValueError as exc:
            refused[what] = str(exc)
    assert set(refused) == set(cases)
    assert all("malformed" in why or "different lengths" in why for why in refused.values()), refused
