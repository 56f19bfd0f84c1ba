"""Text of the pymupdf formats (PDF, XPS, CBZ; EPUB, MOBI, FB2) - runs in the isolated child.

Everything here returns plain data (tuples, lists, str, int) because answers from the child
are unpickled with no globals allowed (see :mod:`engine.isolation`).

Paged formats give one segment per page; reflowable books give one segment per chapter (the
book's spine item), labelled from the table of contents. Tables that pymupdf finds are given
as ``| a | b |`` rows in place of their interleaved cells; the (slow) table finder only runs on
pages that carry vector graphics, since the default strategy needs ruling lines anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# (kind, start, end, label, text) with kind "page" or "chapter"
RawSegment = tuple[str, int, int, str, str]
# (level, title, kind, number)
RawToc = tuple[int, str, str, int]

PAGED_SUFFIXES = {
    ".pdf": "pdf",
    ".xps": "xps",
    ".oxps": "xps",
    ".cbz": "cbz",
    ".epub": "epub",
    ".mobi": "mobi",
    ".azw": "mobi",
    ".azw3": "mobi",
    ".fb2": "fb2",
    ".fbz": "fb2",
}
_REPORT_EVERY_S = 0.2
# Rectangle and line operators of a content stream; a page without them has no ruled table
# (a plain substring test: text in content streams is mostly hex, and a false hit costs time only).
_PATH_OPS = (b" re\n", b" re ", b" l\n", b" l ", b" re\r", b" l\r")


def _table_page_text(page: Any, tables: list[Any]) -> str:
    """Page text with each table as rows, in top-to-bottom order."""
    items: list[tuple[float, float, str]] = []
    boxes = [t.bbox for t in tables]
    for x0, y0, x1, y1, text, _no, kind in page.get_text("blocks"):
        if kind != 0:
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes):
            continue
        items.append((y0, x0, text if text.endswith("\n") else text + "\n"))
    for table in tables:
        rows = table.extract()
        lines = [
            "| " + " | ".join(" ".join((cell or "").split()) for cell in row) + " |" for row in rows if row
        ]
        items.append((table.bbox[1], table.bbox[0], "\n".join(lines) + "\n"))
    items.sort(key=lambda it: (it[0], it[1]))
    return "".join(text for _y, _x, text in items)


def _may_have_tables(page: Any) -> bool:
    """Cheap test before the table finder: the page draws paths, itself or in a form XObject."""
    if page.get_xobjects():
        return bool(page.get_cdrawings())
    contents: bytes = page.read_contents()
    return any(op in contents for op in _PATH_OPS)


def _page_text(page: Any, tables: bool) -> str:
    if tables and _may_have_tables(page) and page.get_cdrawings():
        try:
            found = page.find_tables().tables
        except Exception:  # noqa: BLE001 - the table finder is best effort; plain text follows
            found = []
        if found:
            return _table_page_text(page, found)
    text: str = page.get_text("text")
    return text


def _cap(text: str, limit: int, where: str, notes: list[str]) -> str:
    if len(text) <= limit:
        return text
    notes.append(f"{where} cut at {limit:,} characters (it had {len(text):,})")
    return text[:limit] + "\n"


def extract(
    source: str | bytes,
    filetype: str,
    max_chars_per_page: int = 200_000,
    tables: bool = True,
    pages: tuple[int, int] | None = None,
    split_above: int = 0,
    report: Callable[[object], None] | None = None,
) -> dict[str, Any]:
    """Open a document with pymupdf and return its anchored text as plain data.

    Args:
        source: a file path, or the bytes of an archive member.
        filetype: ``pdf``, ``epub``, ... (see ``PAGED_SUFFIXES``).
        max_chars_per_page: longer pages are cut, with a note.
        tables: render tables found on pages with vector graphics as rows.
        pages: only pages ``[first, stop)`` (0-based) of a paged document; None: all.
        split_above: when > 0 and a paged document has more pages, return at once with status
            ``split`` and the page count, so that the caller can read ranges in parallel.
        report: progress callback (``("pages", done, total)``), from the isolation worker.

    Returns:
        ``{"status": "ok" | reason, "segments": [...], "toc": [...], "notes": [...],
        "pages": n}``; a status other than ``ok`` is a reason the document gives no text.
    """
    import pymupdf as _pymupdf

    pymupdf: Any = _pymupdf  # partly typed; used through Any
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    if isinstance(source, bytes):
        doc = pymupdf.open(stream=source, filetype=filetype)
    else:
        doc = pymupdf.open(source, filetype=filetype)
    try:
        if doc.needs_pass:
            return {"status": "password required", "segments": [], "toc": [], "notes": [], "pages": 0}
        if doc.is_reflowable:
            return _reflowable(doc, max_chars_per_page, report)
        if split_above and pages is None and doc.page_count > split_above:
            return {"status": "split", "segments": [], "toc": [], "notes": [], "pages": doc.page_count}
        return _paged(doc, filetype, max_chars_per_page, tables, pages, report)
    finally:
        doc.close()


def _paged(
    doc: Any,
    filetype: str,
    limit: int,
    tables: bool,
    pages: tuple[int, int] | None,
    report: Callable[[object], None] | None,
) -> dict[str, Any]:
    total = doc.page_count
    first, stop = (0, total) if pages is None else (max(0, pages[0]), min(total, pages[1]))
    notes: list[str] = []
    segments: list[RawSegment] = []
    last = time.monotonic()
    for index in range(first, stop):
        page = doc.load_page(index)
        text = _cap(_page_text(page, tables and filetype == "pdf"), limit, f"page {index + 1}", notes)
        if text.strip():
            segments.append(("page", index + 1, index + 1, "", text))
        now = time.monotonic()
        if report is not None and (now - last > _REPORT_EVERY_S or index + 1 == stop):
            report(("pages", index + 1 - first, total))
            last = now
    status = "ok" if total else "corrupt or empty: no pages could be read"
    repaired = filetype == "pdf" and bool(doc.is_repaired)  # known once the pages were loaded
    if total and not segments:
        if repaired:  # a cut or broken file that MuPDF rebuilt into empty pages is not a scan
            status = "damaged (repaired by the reader): no text recovered"
        else:
            status = "no text layer (images only)" if filetype == "cbz" else "no text layer (scanned?)"
    elif repaired and first == 0:
        notes.append("the file is damaged and was repaired by the reader: some text may be missing")
    toc: list[RawToc] = []
    for entry in doc.get_toc(simple=True) if first == 0 else ():
        level, title, page_no = entry[0], entry[1], entry[2]
        if 1 <= page_no <= total:
            toc.append((int(level), str(title), "page", int(page_no)))
    return {"status": status, "segments": segments, "toc": toc, "notes": notes, "pages": total}


def _reflowable(doc: Any, limit: int, report: Callable[[object], None] | None) -> dict[str, Any]:
    total = doc.page_count
    notes: list[str] = []
    chapter_titles: dict[int, str] = {}
    toc: list[RawToc] = []
    for entry in doc.get_toc(simple=True):
        level, title, page_no = entry[0], entry[1], entry[2]
        if not 1 <= page_no <= total:
            continue
        chapter = int(doc.location_from_page_number(page_no - 1)[0]) + 1
        toc.append((int(level), str(title), "chapter", chapter))
        chapter_titles.setdefault(chapter, str(title))
    segments: list[RawSegment] = []
    done = 0
    last = time.monotonic()
    for ch in range(doc.chapter_count):
        parts: list[str] = []
        for pno in range(doc.chapter_page_count(ch)):
            parts.append(doc.load_page((ch, pno)).get_text("text"))
            done += 1
        now = time.monotonic()
        if report is not None and now - last > _REPORT_EVERY_S:
            report(("pages", done, total))
            last = now
        text = _cap("".join(parts), limit * max(1, len(parts)), f"chapter {ch + 1}", notes)
        if text.strip():
            segments.append(("chapter", ch + 1, ch + 1, chapter_titles.get(ch + 1, ""), text))
    if report is not None:
        report(("pages", total, total))
    status = "ok" if segments else "no text (the book has no readable text)"
    if not total:
        status = "corrupt or empty: no pages could be read"
    return {"status": status, "segments": segments, "toc": toc, "notes": notes, "pages": total}
