"""Real documents generated for the corpus tests: PDFs through pymupdf, EPUBs as zip files."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape


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
