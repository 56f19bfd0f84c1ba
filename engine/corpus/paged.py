"""Text of the pymupdf formats (PDF, XPS, CBZ; EPUB, MOBI, FB2) - runs in the isolated child.

Everything here returns plain data (tuples, lists, str, int) because answers from the child
are unpickled with no globals allowed (see :mod:`engine.isolation`).

Paged formats give one segment per page; reflowable books give one segment per chapter (the
book's spine item), labelled from the table of contents. A reflowable book that is one flow
(MOBI, FB2: MuPDF lays them out as one chapter) is cut where the headings of its table of
contents open a line instead, one segment per section, numbered as chapters. Tables that
pymupdf finds are given as ``| a | b |`` rows in place of their interleaved cells; the (slow)
table finder only runs on pages whose ruling lines form a grid (``ruled_grid``: three
horizontal rules each crossed by three vertical ones), since its default strategy finds tables
from ruling lines anyway; frames, boxes and rules alone (most pages of a TeX-made manual) are
no grid. MuPDF reads a cut-short MOBI without a word of complaint (the missing
records read as nothing), so its record table is checked first (``palm_damage``).
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
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
_PALM_HEADER = 76  # bytes before a Palm database's record count
# Rectangle and line operators of a content stream; a page without them has no ruled table
# (a plain substring test: text in content streams is mostly hex, and a false hit costs time only).
_PATH_OPS = (b" re\n", b" re ", b" l\n", b" l ", b" re\r", b" l\r")
_SURROGATE = re.compile("[\ud800-\udfff]")
_THIN = 3.0  # a rectangle this thin (points) is drawn as a rule
_TOL = 1.5  # points: rules this close meet


def palm_damage(source: str | bytes) -> str:
    """Why a Palm database (MOBI, PRC) is cut short, or ``""`` when it is whole.

    The header lists every record's offset: one at or past the end of the file means records
    are missing. For uncompressed text the text records must also hold the text length that
    record 0 announces (a cut inside the last record).
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    size = len(data)
    if size < _PALM_HEADER + 2:
        return "damaged: the file is cut short (no MOBI header)"
    (count,) = struct.unpack_from(">H", data, _PALM_HEADER)
    table_end = _PALM_HEADER + 2 + 8 * count
    if count == 0 or size < table_end:
        return "damaged: the file is cut short (MOBI record list incomplete)"
    offsets = [struct.unpack_from(">I", data, _PALM_HEADER + 2 + 8 * i)[0] for i in range(count)]
    missing = sum(1 for o in offsets if o >= size)
    if missing:
        return f"damaged: the file is cut short ({missing} of {count} MOBI records missing)"
    if offsets[0] + 10 <= size:
        compression, _, text_length, text_records = struct.unpack_from(">HHIH", data, offsets[0])
        bounds = [*offsets[1:], size]
        held = sum(bounds[i] - offsets[i] for i in range(1, min(count, text_records + 1)))
        if compression == 1 and held < text_length:
            return f"damaged: the file is cut short (MOBI text {held:,} of {text_length:,} bytes)"
    return ""


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
        return True
    contents: bytes = page.read_contents()
    return any(op in contents for op in _PATH_OPS)


# (position across, start, end) of an axis-parallel rule, in points
_Rule = tuple[float, float, float]


def _rules(drawings: list[dict[str, Any]]) -> tuple[list[_Rule], list[_Rule]]:
    """Horizontal and vertical rules of a page's drawings: lines, thin rectangles, box edges."""
    hs: list[_Rule] = []
    vs: list[_Rule] = []
    for path in drawings:
        for item in path.get("items", ()):
            if item[0] == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                if abs(y1 - y0) <= 1 < abs(x1 - x0):
                    hs.append(((y0 + y1) / 2, min(x0, x1), max(x0, x1)))
                elif abs(x1 - x0) <= 1 < abs(y1 - y0):
                    vs.append(((x0 + x1) / 2, min(y0, y1), max(y0, y1)))
            elif item[0] == "re":
                x0, y0, x1, y1 = item[1]
                x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
                w, h = x1 - x0, y1 - y0
                if h <= _THIN < w:
                    hs.append(((y0 + y1) / 2, x0, x1))
                elif w <= _THIN < h:
                    vs.append(((x0 + x1) / 2, y0, y1))
                elif w > _THIN and h > _THIN:
                    hs += [(y0, x0, x1), (y1, x0, x1)]
                    vs += [(x0, y0, y1), (x1, y0, y1)]
    return _joined(hs), _joined(vs)


def _joined(rules: list[_Rule]) -> list[_Rule]:
    """Collinear rules that touch or overlap as one (a grid drawn cell by cell)."""
    out: list[_Rule] = []
    for at, a, b in sorted(rules, key=lambda r: (round(r[0]), r[1])):
        if out and round(out[-1][0]) == round(at) and a <= out[-1][2] + _TOL:
            if b > out[-1][2]:
                out[-1] = (out[-1][0], out[-1][1], b)
        else:
            out.append((at, a, b))
    return out


def ruled_grid(drawings: list[dict[str, Any]]) -> bool:
    """Whether ruling lines form a table grid: three horizontal rules each crossed by three
    vertical ones at distinct places (two rows of two cells at least). A frame (one cell), a
    box with a title bar (one column) or rules without crossings are not one."""
    hs, vs = _rules(drawings)
    if len(hs) < 3 or len(vs) < 3:
        return False
    rows = 0
    for y, x0, x1 in hs:
        crossings = {
            round(x) for x, y0, y1 in vs if x0 - _TOL <= x <= x1 + _TOL and y0 - _TOL <= y <= y1 + _TOL
        }
        if len(crossings) >= 3:
            rows += 1
            if rows >= 3:
                return True
    return False


def _page_text(page: Any, tables: bool) -> str:
    if tables and _may_have_tables(page) and ruled_grid(page.get_cdrawings()):
        try:
            found = page.find_tables().tables
        except Exception:  # noqa: BLE001 - the table finder is best effort; plain text follows
            found = []
        if found:
            return _table_page_text(page, found)
    text: str = page.get_text("text")
    return text


def _clean(text: str) -> str:
    """Lone surrogates (the table finder returns them for some font encodings) as U+FFFD:
    they cannot be encoded as UTF-8, so no tokenizer, request or file could take the text."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def _cap(text: str, limit: int, where: str, notes: list[str]) -> str:
    text = _clean(text)
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
        report: progress callback (``("pages", done, total)``), from the isolation sandbox.

    Returns:
        ``{"status": "ok" | reason, "segments": [...], "toc": [...], "notes": [...],
        "pages": n}``; a status other than ``ok`` is a reason the document gives no text.
    """
    if filetype == "mobi":
        damage = palm_damage(source)
        if damage:
            return {"status": damage, "segments": [], "toc": [], "notes": [], "pages": 0}
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
        # The first page is reported at once: a rate and an ETA from the start of a big book.
        if report is not None and (now - last > _REPORT_EVERY_S or index + 1 == stop or index == first):
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
    entries = [(int(e[0]), str(e[1]), int(e[2])) for e in doc.get_toc(simple=True) if 1 <= e[2] <= total]
    if doc.chapter_count == 1 and len(entries) > 1:
        return _one_flow(doc, entries, limit, report)
    units = [[(ch, p) for p in range(doc.chapter_page_count(ch))] for ch in range(doc.chapter_count)]
    titles: dict[int, str] = {}
    toc: list[RawToc] = []
    for level, title, page_no in entries:
        number = int(doc.location_from_page_number(page_no - 1)[0]) + 1
        toc.append((level, title, "chapter", number))
        titles.setdefault(number, title)
    segments: list[RawSegment] = []
    done = 0
    last = time.monotonic()
    for number, pages in enumerate(units, start=1):
        parts: list[str] = []
        for location in pages:
            parts.append(doc.load_page(location).get_text("text"))
            done += 1
        now = time.monotonic()
        if report is not None and now - last > _REPORT_EVERY_S:
            report(("pages", done, total))
            last = now
        text = _cap("".join(parts), limit * max(1, len(parts)), f"chapter {number}", notes)
        if text.strip():
            segments.append(("chapter", number, number, titles.get(number, ""), text))
    if report is not None:
        report(("pages", total, total))
    status = "ok" if segments else "no text (the book has no readable text)"
    if not total:
        status = "corrupt or empty: no pages could be read"
    return {"status": status, "segments": segments, "toc": toc, "notes": notes, "pages": total}


def _at_line_start(text: str, title: str, start: int, end: int) -> int:
    """Offset of ``title`` at the start of a line within ``text[start:end]``, or -1."""
    at = text.find(title, start, end + len(title))
    while at > 0 and text[at - 1] != "\n":
        at = text.find(title, at + 1, end + len(title))
    return at


def _one_flow(
    doc: Any, entries: list[tuple[int, str, int]], limit: int, report: Callable[[object], None] | None
) -> dict[str, Any]:
    """A book laid out as one chapter (MOBI, FB2), cut where its table of contents' headings are.

    Each entry points at a laid-out page; the section starts where the entry's title opens a
    line on that page (at the page's start when the title is not found as such). Text before
    the first heading is a section of its own. Sections are numbered 1, 2, ... as chapters.
    """
    total = doc.page_count
    notes: list[str] = []
    texts: list[str] = []
    page_start: list[int] = []
    pos = 0
    last = time.monotonic()
    for pno in range(total):
        text = _cap(doc.load_page((0, pno)).get_text("text"), limit, f"page {pno + 1}", notes)
        page_start.append(pos)
        texts.append(text)
        pos += len(text)
        now = time.monotonic()
        if report is not None and (now - last > _REPORT_EVERY_S or pno + 1 == total):
            report(("pages", pno + 1, total))
            last = now
    page_start.append(pos)
    flow = "".join(texts)
    del texts
    cuts: list[tuple[int, str]] = []  # (offset, title), offsets non-decreasing
    floor = 0
    for _level, title, page_no in entries:
        start = max(floor, page_start[page_no - 1])
        at = _at_line_start(flow, title, start, max(start, page_start[page_no]))
        floor = at if at >= 0 else start
        cuts.append((floor, title))
    bounds = sorted({0, *(offset for offset, _ in cuts)})
    titles: dict[int, str] = {}
    for offset, title in cuts:
        titles.setdefault(offset, title)
    segments: list[RawSegment] = []
    number_at: dict[int, int] = {}
    for i, begin in enumerate(bounds):
        body = flow[begin : bounds[i + 1] if i + 1 < len(bounds) else len(flow)]
        if not body.strip():
            continue
        number = len(segments) + 1
        number_at[begin] = number
        segments.append(("chapter", number, number, titles.get(begin, ""), body))
    toc: list[RawToc] = []
    for (level, title, _page), (offset, _) in zip(entries, cuts, strict=True):
        number = number_at.get(offset) or next((n for o, n in sorted(number_at.items()) if o >= offset), 0)
        if number:
            toc.append((level, title, "chapter", number))
    status = "ok" if segments else "no text (the book has no readable text)"
    return {"status": status, "segments": segments, "toc": toc, "notes": notes, "pages": total}


def _member_bytes(source: str) -> bytes | None:
    """The bytes of ``archive!member`` (as the loader names archive members); None for a file."""
    from longdesk.engine.corpus.archives import archive_kind, read_archive
    from longdesk.engine.corpus.options import ArchiveLimits

    at = source.find("!")
    while at > 0:
        outer = Path(source[:at])
        if archive_kind(outer.name) and outer.is_file():
            wanted = source[at + 1 :]
            issues: list[Any] = []
            for member in read_archive(outer, source[:at], ArchiveLimits(), issues):
                if member.name == wanted:
                    return member.data
            reason = f": {issues[0].reason}" if issues else ""
            raise ValueError(f"{wanted} is not in {outer.name}{reason}")
        at = source.find("!", at + 1)
    return None


def render_page(
    source: str,
    filetype: str,
    page: int,
    quote: str = "",
    zoom: float = 1.5,
    max_pixels: int = 24_000_000,
) -> dict[str, Any]:
    """Render 1-based ``page`` of a paged document as RGB pixels and find ``quote`` on it.

    Runs in the isolated child (the source viewer calls it through ``engine.isolation``).
    ``source`` is a file path or ``archive!member``; the zoom is lowered so that the image has
    at most ``max_pixels`` pixels. Returns plain data: ``width``, ``height``, ``stride``,
    ``samples`` (bytes, RGB), ``page_count``, ``marks`` (rectangles of the quote in image
    pixels, ``(x, y, w, h)``) and ``quote_found``.

    Raises:
        ValueError: not a readable document of that type, or no such page.
    """
    import math

    import pymupdf as _pymupdf

    pymupdf: Any = _pymupdf
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    data = _member_bytes(source)
    try:
        doc = pymupdf.open(stream=data, filetype=filetype) if data is not None else pymupdf.open(source)
    except Exception as exc:
        raise ValueError(f"cannot open it as {filetype.upper()}: {exc}") from exc
    try:
        if doc.needs_pass:
            raise ValueError("the document is password-protected")
        if not 1 <= page <= doc.page_count:
            raise ValueError(f"the document has {doc.page_count} pages; there is no page {page}")
        pg = doc.load_page(page - 1)
        area = max(1.0, float(pg.rect.width) * float(pg.rect.height))
        zoom = max(0.05, min(zoom, math.sqrt(max_pixels / area)))
        pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
        marks: list[tuple[float, float, float, float]] = []
        words = quote.split()
        probes = [" ".join(words)] if words else []
        if len(words) > 8:
            probes += [" ".join(words[:8]), " ".join(words[-8:])]
        for probe in probes:
            rects = pg.search_for(probe)
            if rects:
                marks = [(r.x0 * zoom, r.y0 * zoom, r.width * zoom, r.height * zoom) for r in rects]
                break
        return {
            "width": int(pix.width),
            "height": int(pix.height),
            "stride": int(pix.stride),
            "samples": bytes(pix.samples),
            "page_count": int(doc.page_count),
            "marks": marks,
            "quote_found": bool(marks),
        }
    finally:
        doc.close()


def read_source(source: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of a file or an ``archive!member`` (isolated child: archives are untrusted)."""
    data = _member_bytes(source)
    if data is None:
        with Path(source).open("rb") as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes // 2**20} MiB")
    return data
