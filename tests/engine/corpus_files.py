"""Real documents generated for the corpus tests: PDFs through pymupdf, EPUB and XPS as zip files,
MOBI as a Palm database (pymupdf writes neither XPS nor MOBI, so they are built by hand here)."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr


def make_pdf(path: Path, pages: Sequence[str], toc: Sequence[tuple[int, str, int]] = ()) -> Path:
    """A PDF with one text page per entry (wrapped into the page box)."""
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 550, 800), text, fontsize=10)
    if toc:
        doc.set_toc([list(t) for t in toc])
    doc.save(path)
    doc.close()
    return path


def make_table_pdf(path: Path, rows: Sequence[Sequence[str]], caption: str) -> Path:
    """A PDF page with a caption line and a ruled table."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((50, 60), caption, fontsize=11)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(50 + c * 150, 100 + r * 20, 200 + c * 150, 120 + r * 20)
            page.draw_rect(rect, color=(0, 0, 0), width=0.5)
            page.insert_text((rect.x0 + 3, rect.y1 - 6), cell, fontsize=9)
    doc.save(path)
    doc.close()
    return path


def make_encrypted_pdf(path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "confidential", fontsize=12)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    doc.close()
    return path


def make_scanned_pdf(path: Path) -> Path:
    """Pages with an image and no text layer, like a scan."""
    import pymupdf

    doc = pymupdf.open()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
    pix.clear_with(200)
    for _ in range(2):
        doc.new_page().insert_image(pymupdf.Rect(50, 50, 300, 300), pixmap=pix)
    doc.save(path)
    doc.close()
    return path


def make_epub(path: Path, title: str, chapters: Sequence[tuple[str, str]]) -> Path:
    """An EPUB (OPF, NCX and EPUB 3 navigation) with one XHTML file per chapter."""
    items, spine, nav, ncx = [], [], [], []
    files = {}
    for i, (heading, body) in enumerate(chapters, start=1):
        paras = "".join(f"<p>{escape(p)}</p>" for p in body.split("\n\n"))
        files[f"OEBPS/ch{i}.xhtml"] = (
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{escape(heading)}</title></head><body><h1>{escape(heading)}</h1>{paras}</body></html>"
        )
        items.append(f'<item id="ch{i}" href="ch{i}.xhtml" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="ch{i}"/>')
        nav.append(f'<li><a href="ch{i}.xhtml">{escape(heading)}</a></li>')
        ncx.append(
            f'<navPoint id="n{i}" playOrder="{i}"><navLabel><text>{escape(heading)}</text></navLabel>'
            f'<content src="ch{i}.xhtml"/></navPoint>'
        )
    files["OEBPS/nav.xhtml"] = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
        f'<nav epub:type="toc"><ol>{"".join(nav)}</ol></nav></body></html>'
    )
    files["OEBPS/toc.ncx"] = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<head/><docTitle><text>{escape(title)}</text></docTitle><navMap>{''.join(ncx)}</navMap></ncx>"
    )
    files["OEBPS/content.opf"] = (
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">longdesk-test</dc:identifier><dc:title>{escape(title)}</dc:title>'
        "<dc:language>en</dc:language></metadata><manifest>"
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        f'{"".join(items)}</manifest><spine toc="ncx">{"".join(spine)}</spine></package>'
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?>'
            '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        for name, text in files.items():
            zf.writestr(name, text, compress_type=zipfile.ZIP_DEFLATED)
    return path


_XPS_NS = "http://schemas.microsoft.com/xps/2005/06"
_XPS_TYPES = (
    ("rels", "application/vnd.openxmlformats-package.relationships+xml"),
    ("fdseq", "application/vnd.ms-package.xps-fixeddocumentsequence+xml"),
    ("fdoc", "application/vnd.ms-package.xps-fixeddocument+xml"),
    ("fpage", "application/vnd.ms-package.xps-fixedpage+xml"),
    ("otf", "application/vnd.ms-opentype"),
)


def make_xps(path: Path, pages: Sequence[Sequence[str]]) -> Path:
    """An XPS document: one FixedPage per entry, one Glyphs run per line of text.

    The package is what a reader needs: content types, the package relationship to the
    FixedDocumentSequence, one FixedDocument listing the pages, and the font the Glyphs name
    (MuPDF's own Helvetica, so no system font is needed; a Glyphs element whose font cannot
    be loaded draws nothing).
    """
    import pymupdf

    types = "".join(f'<Default Extension="{ext}" ContentType="{kind}"/>' for ext, kind in _XPS_TYPES)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">{types}</Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="utf-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="R0" Target="/FixedDocumentSequence.fdseq" '
            'Type="http://schemas.microsoft.com/xps/2005/06/fixedrepresentation"/></Relationships>',
        )
        zf.writestr(
            "FixedDocumentSequence.fdseq",
            f'<FixedDocumentSequence xmlns="{_XPS_NS}">'
            '<DocumentReference Source="/Documents/1/FixedDocument.fdoc"/></FixedDocumentSequence>',
        )
        contents = "".join(f'<PageContent Source="Pages/{n}.fpage"/>' for n in range(1, len(pages) + 1))
        zf.writestr(
            "Documents/1/FixedDocument.fdoc", f'<FixedDocument xmlns="{_XPS_NS}">{contents}</FixedDocument>'
        )
        for n, lines in enumerate(pages, start=1):
            glyphs = "".join(
                f'<Glyphs Fill="#FF000000" FontUri="/Resources/helv.otf" FontRenderingEmSize="12" '
                f'OriginX="96" OriginY="{96 + 20 * k}" UnicodeString={quoteattr(line)}/>'
                for k, line in enumerate(lines)
            )
            page = f'<FixedPage xmlns="{_XPS_NS}" Width="816" Height="1056" xml:lang="en-US">'
            zf.writestr(f"Documents/1/Pages/{n}.fpage", f"{page}{glyphs}</FixedPage>")
        zf.writestr("Resources/helv.otf", pymupdf.Font("helv").buffer)
    return path


def make_mobi(path: Path, title: str, chapters: Sequence[tuple[str, str]]) -> Path:
    """A MOBI book: a Palm database of type ``BOOKMOBI`` with uncompressed UTF-8 HTML records.

    Record 0 is the PalmDOC header (no compression, text length, record count, 4096-byte
    records) followed by a minimal MOBI header naming the UTF-8 encoding (65001); records 1..n
    hold the HTML, 4096 bytes each (a reader reads exactly that much from every record but
    the last). Chapters are ``<h1>`` headings separated by ``<mbp:pagebreak/>``.
    """
    body = "<mbp:pagebreak/>".join(
        f"<h1>{escape(heading)}</h1>" + "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
        for heading, text in chapters
    )
    html = f"<html><head><title>{escape(title)}</title></head><body>{body}</body></html>".encode()
    records = [html[i : i + 4096] for i in range(0, len(html), 4096)]
    mobi_header = b"MOBI" + struct.pack(">III", 232, 2, 65001)  # length, type: book, encoding: UTF-8
    record0 = struct.pack(">HHIHHHH", 1, 0, len(html), len(records), 4096, 0, 0) + mobi_header
    record0 = record0.ljust(16 + 232, b"\0")
    all_records = [record0, *records]
    # Palm database header: name, attributes..., type and creator, record list.
    head = title.encode("ascii", "replace")[:31].ljust(32, b"\0")
    head += (
        struct.pack(">HHIIIIII", 0, 0, 0, 0, 0, 0, 0, 0)
        + b"BOOKMOBI"
        + struct.pack(">IIH", 0, 0, len(all_records))
    )
    offset = len(head) + 8 * len(all_records) + 2
    entries = b""
    for index, record in enumerate(all_records):
        entries += struct.pack(">II", offset, index)
        offset += len(record)
    path.write_bytes(head + entries + b"\0\0" + b"".join(all_records))
    return path
