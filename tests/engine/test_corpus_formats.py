"""Formats: PDF pages and tables, EPUB chapters and TOC, HTML, notebooks, verses, hostile files."""

from __future__ import annotations

import json
from pathlib import Path

from longdesk.engine.context.pack import pack
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import AnchorKind, DocumentKind, Problem
from tests.engine.corpus_files import (
    make_encrypted_pdf,
    make_epub,
    make_mobi,
    make_pdf,
    make_scanned_pdf,
    make_table_pdf,
    make_xps,
)


def test_pdf_pages_toc_and_tables(tmp_path: Path) -> None:
    make_pdf(
        tmp_path / "report.pdf",
        ["Intro words.", "Middle words.", "Final words."],
        [(1, "Start", 1), (1, "End", 3)],
    )
    make_table_pdf(
        tmp_path / "prices.pdf",
        [["Name", "Qty", "Price"], ["apple", "3", "1.20"], ["pear", "5", "0.90"]],
        "Fruit",
    )
    corpus = load_sources([tmp_path])
    report = next(d for d in corpus.documents if d.name.endswith("report.pdf"))
    assert report.kind is DocumentKind.PDF
    assert [(s.anchor.kind, s.anchor.start) for s in report.segments] == [
        (AnchorKind.PAGE, n) for n in (1, 2, 3)
    ]
    assert "Final words." in report.segments[2].text
    assert [(t.title, t.anchor.start) for t in report.toc] == [("Start", 1), ("End", 3)]
    prices = next(d for d in corpus.documents if d.name.endswith("prices.pdf"))
    assert "| apple | 3 | 1.20 |" in prices.text  # rows, not interleaved cells
    assert "| Name | Qty | Price |" in prices.text
    plan = pack(corpus, len, 1_000_000)
    assert (
        f'<doc id="{report.doc_id}" name="{report.name}" kind="pdf">\n<p1>\nIntro words.' in plan.corpus_text
    )


def test_epub_chapters_with_titles_from_the_toc(tmp_path: Path) -> None:
    make_epub(
        tmp_path / "tale.epub", "Tale", [("The Sea", "Waves roll.\n\nSalt air."), ("The Land", "Hills rise.")]
    )
    (doc,) = load_sources([tmp_path / "tale.epub"]).documents
    assert doc.kind is DocumentKind.EPUB
    assert [(s.anchor.kind, s.anchor.start, s.anchor.label) for s in doc.segments] == [
        (AnchorKind.CHAPTER, 1, "The Sea"),
        (AnchorKind.CHAPTER, 2, "The Land"),
    ]
    assert "Salt air." in doc.segments[0].text
    assert [t.title for t in doc.toc] == ["The Sea", "The Land"]
    assert "<c2>\nThe Land\nHills rise.\n" in pack(load_sources([tmp_path]), len, 10**6).corpus_text


def test_hostile_and_textless_pdfs_are_issues_and_the_rest_is_read(tmp_path: Path) -> None:
    make_encrypted_pdf(tmp_path / "locked.pdf")
    make_scanned_pdf(tmp_path / "scan.pdf")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n" + b"\xff" * 300)
    whole = make_pdf(tmp_path / "whole.pdf", ["Cut short.", "Never seen.", "Third."]).read_bytes()
    (tmp_path / "whole.pdf").unlink()
    (tmp_path / "cut.pdf").write_bytes(whole[: len(whole) // 3])  # MuPDF repairs it into empty pages
    (tmp_path / "half.pdf").write_bytes(whole[: len(whole) // 2])  # repaired, the first page's text left
    (tmp_path / "truncated.epub").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (tmp_path / "ok.txt").write_text("still here\n")
    corpus = load_sources([tmp_path])
    assert [d.name for d in corpus.documents] == [f"{tmp_path.name}/half.pdf", f"{tmp_path.name}/ok.txt"]
    assert corpus.documents[0].text == "Cut short.\n"
    assert corpus.documents[0].notes == (
        "the file is damaged and was repaired by the reader: some text may be missing",
    )
    reasons = {Path(i.source).name: (i.problem, i.reason) for i in corpus.issues}
    assert reasons["locked.pdf"] == (Problem.FAILED, "password required")
    assert reasons["scan.pdf"] == (Problem.FAILED, "no text layer (scanned?)")
    assert reasons["cut.pdf"] == (Problem.FAILED, "damaged (repaired by the reader): no text recovered")
    assert reasons["broken.pdf"][0] is Problem.FAILED
    assert reasons["broken.pdf"][1].startswith("corrupt")
    assert reasons["truncated.epub"][1].startswith("corrupt or unreadable EPUB")


def test_html_text_without_scripts_anchored_by_source_lines(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><head><title>T</title>\n<style>p { color: red }</style>\n"
        "<script>var secret = 1;</script></head>\n<body>\n<p>First para.</p>\n\n<p>Second &amp; last.</p>\n"
        "</body></html>\n"
    )
    (doc,) = load_sources([tmp_path / "page.html"]).documents
    assert doc.kind is DocumentKind.HTML
    assert doc.text == "T\nFirst para.\nSecond & last.\n"
    assert "secret" not in doc.text
    assert "color" not in doc.text
    assert (doc.segments[0].anchor.start, doc.segments[0].anchor.end) == (1, 7)


def test_notebook_cells_without_outputs(tmp_path: Path) -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Title\n", "Words."]},
            {"cell_type": "code", "source": "x = 1\nprint(x)", "outputs": [{"text": "OUTPUT-TEXT"}]},
        ],
        "nbformat": 4,
    }
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    (tmp_path / "bad.ipynb").write_text("{not json")
    corpus = load_sources([tmp_path])
    (doc,) = corpus.documents
    assert doc.kind is DocumentKind.NOTEBOOK
    assert doc.text == "# %% [markdown] cell 1\n# Title\nWords.\n# %% [code] cell 2\nx = 1\nprint(x)\n"
    assert "OUTPUT-TEXT" not in doc.text
    assert [(s.anchor.start, s.anchor.end) for s in doc.segments] == [(1, 3), (4, 6)]
    (issue,) = corpus.issues
    assert issue.problem is Problem.FAILED
    assert "not valid JSON" in issue.reason


def test_verse_texts_get_one_anchor_per_verse(tmp_path: Path) -> None:
    verses = [f"Genesis 1:{v} And it was so, verse number {v}." for v in range(1, 31)]
    verses[4] += " And a long verse wraps over the line" * 6
    verses[6] += " With a two-\nedged sword."  # a line broken after a word's own hyphen
    verses += ["Song of Solomon 2:1 I am the rose of Sharon.", "1 Kings 3:4 And the king went."]
    (tmp_path / "gen.txt").write_text("\n".join(verses) + "\n")
    # The same verses in a PDF, one verse a line, a long one wrapped, over two pages.
    make_pdf(tmp_path / "gen.pdf", ["\n".join(verses[:16]), "\n".join(verses[16:])])
    corpus = load_sources([tmp_path])
    for doc in corpus.documents:
        labels = [s.anchor.label for s in doc.segments]
        assert labels[:2] == ["Genesis 1:1", "Genesis 1:2"], doc.name
        assert labels[-2:] == ["Song of Solomon 2:1", "1 Kings 3:4"]
        assert all(s.anchor.kind is AnchorKind.VERSE for s in doc.segments)
        assert doc.segments[2].text == "And it was so, verse number 3.\n"
        assert doc.segments[4].text.count("wraps over the line") == 6  # one verse, lines joined
        assert doc.segments[6].text.endswith(" With a two-edged sword.\n")
        assert len(doc.segments) == 32
    text = pack(corpus, len, 10**6).corpus_text
    assert "<v Genesis 1>\n1 And it was so, verse number 1.\n2 And it was so" in text
    assert "\n3 And it was so, verse number 3.\n" in text
    assert "<v Song of Solomon 2>\n1 I am the rose of Sharon.\n<v 1 Kings 3>\n4 And the king went.\n" in text


def test_epub_verse_text_keeps_book_headings_out_of_the_verses(tmp_path: Path) -> None:
    books = {
        "Genesis": [f"Genesis 1:{v} Light number {v} was made." for v in range(1, 13)],
        "Exodus": [f"Exodus 2:{v} Water number {v} was parted." for v in range(1, 13)],
    }
    make_epub(tmp_path / "books.epub", "Two Books", [(name, "\n\n".join(vs)) for name, vs in books.items()])
    (doc,) = load_sources([tmp_path / "books.epub"]).documents
    verses = [s for s in doc.segments if s.anchor.start > 0]
    assert [s.anchor.label for s in verses] == [
        v.split(" ", 2)[0] + " " + v.split(" ", 2)[1] for vs in books.values() for v in vs
    ]
    # The last verse of Genesis ends where its chapter ends: "Exodus" is not glued to it.
    assert verses[11].text == "Light number 12 was made.\n"
    assert verses[-1].text == "Water number 12 was parted.\n"
    assert [(s.anchor.label, s.text) for s in doc.segments if s.anchor.start == 0] == [
        ("front matter", "Genesis\n"),
        ("heading", "Exodus\n"),
    ]


def test_fb2_chapters_and_comic_without_text(tmp_path: Path) -> None:
    import zipfile

    import pymupdf

    (tmp_path / "tale.fb2").write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"><body>'
        "<section><title><p>One</p></title><p>First chapter text.</p></section>"
        "<section><title><p>Two</p></title><p>Second chapter text.</p></section>"
        "</body></FictionBook>"
    )
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 20, 20), False)
    pix.clear_with(90)
    with zipfile.ZipFile(tmp_path / "comic.cbz", "w") as zf:
        zf.writestr("001.png", pix.tobytes("png"))
    corpus = load_sources([tmp_path])
    (doc,) = corpus.documents
    assert doc.kind is DocumentKind.EBOOK
    assert "First chapter text." in doc.text
    assert "Second chapter text." in doc.text
    assert all(s.anchor.kind is AnchorKind.CHAPTER for s in doc.segments)
    (issue,) = corpus.issues
    assert (Path(issue.source).name, issue.reason) == ("comic.cbz", "no text layer (images only)")


def test_xps_pages_and_mobi_sections_with_their_text(tmp_path: Path) -> None:
    pages = [["Harbour report.", "Ships counted: 7."], ["Tides & winds."], ["Signed."]]
    make_xps(tmp_path / "memo.xps", pages)
    make_mobi(
        tmp_path / "tale.mobi",
        "Tale",
        [("The Sea", "Waves roll.\n\nSalt air."), ("The Land", "Hills rise."), ("The Sky", "Clouds " * 900)],
    )
    corpus = load_sources([tmp_path])
    assert corpus.issues == ()
    memo, tale = corpus.documents
    assert memo.kind is DocumentKind.XPS
    assert [(s.anchor.kind, s.anchor.start, s.text) for s in memo.segments] == [
        (AnchorKind.PAGE, 1, "Harbour report.\nShips counted: 7.\n"),
        (AnchorKind.PAGE, 2, "Tides & winds.\n"),
        (AnchorKind.PAGE, 3, "Signed.\n"),
    ]
    # One flow in MuPDF (one chapter, laid out in pages): cut at its headings, one section each.
    assert tale.kind is DocumentKind.EBOOK
    assert [(s.anchor.kind, s.anchor.start, s.anchor.label) for s in tale.segments] == [
        (AnchorKind.CHAPTER, 1, "The Sea"),
        (AnchorKind.CHAPTER, 2, "The Land"),
        (AnchorKind.CHAPTER, 3, "The Sky"),
    ]
    assert tale.segments[0].text == "The Sea\nWaves roll.\nSalt air.\n"
    assert tale.segments[1].text == "The Land\nHills rise.\n"
    assert " ".join(tale.segments[2].text.split()) == "The Sky " + " ".join(["Clouds"] * 900)
    assert [(t.title, t.anchor.start) for t in tale.toc] == [("The Sea", 1), ("The Land", 2), ("The Sky", 3)]
    text = pack(corpus, len, 10**6).corpus_text
    assert f'<doc id="{memo.doc_id}" name="{memo.name}" kind="xps">\n<p1>\nHarbour report.' in text
    assert "<c2>\nThe Land\nHills rise.\n<c3>\nThe Sky\n" in text


def test_cut_short_xps_and_mobi_are_one_named_failure_each(tmp_path: Path) -> None:
    xps = make_xps(tmp_path / "whole.xps", [["One."], ["Two."]]).read_bytes()
    mobi = make_mobi(tmp_path / "whole.mobi", "T", [("A", "Alpha " * 800), ("B", "Beta " * 800)]).read_bytes()
    (tmp_path / "whole.xps").unlink()
    (tmp_path / "whole.mobi").unlink()
    (tmp_path / "cut.xps").write_bytes(xps[: len(xps) * 2 // 3])
    (tmp_path / "cut.mobi").write_bytes(mobi[: len(mobi) // 2])  # whole records missing
    (tmp_path / "tail.mobi").write_bytes(mobi[:-100])  # the last text record cut
    (tmp_path / "ok.txt").write_text("still here\n")
    corpus = load_sources([tmp_path])
    assert [d.name for d in corpus.documents] == [f"{tmp_path.name}/ok.txt"]
    reasons = {Path(i.source).name: (i.problem, i.reason) for i in corpus.issues}
    assert set(reasons) == {"cut.xps", "cut.mobi", "tail.mobi"}
    assert reasons["cut.xps"][0] is Problem.FAILED
    assert reasons["cut.xps"][1].startswith("corrupt or unreadable XPS")
    assert reasons["cut.mobi"][1] == "damaged: the file is cut short (1 of 4 MOBI records missing)"
    assert reasons["tail.mobi"][0] is Problem.FAILED
    assert reasons["tail.mobi"][1].startswith("damaged: the file is cut short (MOBI text ")
