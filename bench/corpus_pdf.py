"""PDF throughput: the whole corpus pipeline (isolation included) against pymupdf in-process.

Generates a 1,000-page PDF, then times, side by side in one run:
    direct   - pymupdf.open + page.get_text() for every page, in this process;
    pipeline - load_sources() on the file: read, hash, isolated parse in a fresh child process
               (start-up included), tables check, anchors; no parse cache.
Prints pages/s for both and the ratio. Run: .venv/bin/python bench/corpus_pdf.py [pages]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from longdesk.engine.corpus.load import LoadOptions, load_sources

LINE = "The quick brown fox jumps over the lazy dog while the committee reviews page {}. "


def make(path: Path, pages: int) -> None:
    import pymupdf

    doc = pymupdf.open()
    for i in range(1, pages + 1):
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(40, 40, 560, 800), (LINE.format(i)) * 30, fontsize=9)
    doc.save(path)
    doc.close()


def direct(path: Path) -> int:
    import pymupdf

    doc = pymupdf.open(path)
    chars = sum(len(page.get_text()) for page in doc)
    doc.close()
    return chars


def main() -> None:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.pdf"
        t0 = time.perf_counter()
        make(path, pages)
        print(
            f"generated {pages} pages ({path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        best = {
            "direct": float("inf"),
            "pipeline, 1 parser": float("inf"),
            "pipeline, 2 parsers": float("inf"),
        }
        for _ in range(3):
            t0 = time.perf_counter()
            direct(path)
            best["direct"] = min(best["direct"], time.perf_counter() - t0)
            for parsers in (1, 2):
                t0 = time.perf_counter()
                corpus = load_sources([path], options=LoadOptions(parsers=parsers))
                key = f"pipeline, {parsers} parser{'s' if parsers > 1 else ''}"
                best[key] = min(best[key], time.perf_counter() - t0)
                (doc,) = corpus.documents
                assert len(doc.segments) == pages, len(doc.segments)
        for key, seconds in best.items():
            ratio = seconds / best["direct"]
            print(f"{key:<20}: {seconds:6.2f} s  {pages / seconds:6.0f} pages/s  {ratio:.2f}x direct")
        print("(pipeline: read, hash, fresh child processes started, isolated parse, table check, anchors)")
        print("targets: >= 300 pages/s and <= 2x direct")


if __name__ == "__main__":
    main()
