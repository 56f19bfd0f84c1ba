"""The source viewer renders cited pages in the isolated child, from files and from archives;
a page that cannot be rendered shows a named error instead of taking the app down."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.citations import Check, Citation, DocRef
from longdesk.engine.corpus.model import AnchorKind
from longdesk.engine.isolation import Limits
from longdesk.ui.citation_opener import CitationOpener
from longdesk.ui.widgets.source_viewer import PageRenderer, SourceViewer
from longdesk.ui.workers.pool import TaskRunner

pytestmark = pytest.mark.gui
QUOTE = "the moon pulls the sea twice a day"


def _cite(doc_id: str, page: int, quote: str = QUOTE) -> Citation:
    return Citation(
        0,
        10,
        f"[{doc_id}, p. {page}]",
        doc_id,
        AnchorKind.PAGE,
        page,
        page,
        quote=quote,
        check=Check.VERIFIED,
    )


@pytest.fixture
def zipped_book(pdf_book: Path, tmp_path: Path) -> Path:
    path = tmp_path / "library.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(pdf_book, "books/harbour-book.pdf")
        zf.writestr("notes/tides.txt", "one\ntwo\nhigh water at noon\nfour\n")
    return path


def test_a_pdf_inside_an_archive_is_rendered_in_a_child_process(zipped_book: Path) -> None:
    renderer = PageRenderer()
    try:
        page = renderer.render(f"{zipped_book}!books/harbour-book.pdf", 2, QUOTE)
        sandbox = renderer._sandbox
        assert sandbox is not None
        assert sandbox.starts == 1  # rendered by the child, not in this process
        assert sandbox._proc is not None
        assert sandbox._proc.pid != os.getpid()
    finally:
        renderer.close()
    assert (page.page, page.page_count) == (2, 3)
    assert page.quote_found
    assert page.image.width() > 300
    assert page.image.height() > 400
    # The image holds the page: dark text pixels on white inside the quote's mark.
    x, y, w, h = page.marks[0]
    inside = [page.image.pixelColor(int(x + w * f), int(y + h / 2)).lightness() for f in (0.1, 0.3, 0.5, 0.7)]
    assert min(inside) < 200


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (Limits(wall_s=0.001, memory_bytes=1 << 30), "time limit"),
        (Limits(wall_s=30, memory_bytes=8 << 20), "memory limit"),
    ],
    ids=["time", "memory"],
)
def test_a_page_past_the_limits_gives_a_named_error(pdf_book: Path, limits: Limits, words: str) -> None:
    renderer = PageRenderer(limits)
    try:
        with pytest.raises(ValueError, match=words) as failed:
            renderer.render(str(pdf_book), 1, zoom=8.0)
        assert "page 1" in str(failed.value)
        # The next page renders again (a fresh child) once the limits allow it.
        renderer.limits = Limits()
        renderer.close()
        assert renderer.render(str(pdf_book), 3).page == 3
    finally:
        renderer.close()


def test_the_viewer_shows_archive_pages_text_and_a_named_error(
    qtbot: QtBot, zipped_book: Path, tmp_path: Path, artifacts: Path
) -> None:
    viewer = SourceViewer()
    qtbot.addWidget(viewer)
    viewer.resize(700, 800)
    opener = CitationOpener(viewer, TaskRunner())
    book = f"{zipped_book}!books/harbour-book.pdf"
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 200)
    refs = {
        "D1": DocRef("D1", "library.zip!books/harbour-book.pdf", book, "pdf", 3),
        "D2": DocRef("D2", "library.zip!notes/tides.txt", f"{zipped_book}!notes/tides.txt", "text", 4),
        "D3": DocRef("D3", "broken.pdf", str(broken), "pdf", 3),
    }
    try:
        # A page of a PDF inside a zip file, rendered in the child, the quote marked.
        with qtbot.waitSignal(opener.shown, timeout=30_000):
            opener.open(_cite("D1", 2), refs, None, 1.0)
        assert viewer.stack.currentWidget() is viewer.page_scroll
        page = viewer.page_view.page
        assert page is not None
        assert (page.page, page.quote_found) == (2, True)
        assert viewer.grab().save(str(artifacts / "viewer-archive-page.png"))

        # Lines of a text file inside the same zip, read in the child (no corpus in memory).
        lines = Citation(0, 10, "[D2, line 3]", "D2", AnchorKind.LINES, 3, 3, quote="high water")
        with qtbot.waitSignal(opener.shown, timeout=30_000):
            opener.open(lines, refs, None, 1.0)
        assert viewer.stack.currentWidget() is viewer.code_view
        assert viewer.code_view.marked == (3, 3)
        assert "high water at noon" in viewer.code_view.toPlainText()

        # A page that cannot be rendered: the viewer says which page and why.
        opener.open(_cite("D3", 2, ""), refs, None, 1.0)
        qtbot.waitUntil(lambda: "Could not show page 2" in viewer.message.text(), timeout=30_000)
        assert viewer.stack.currentWidget() is viewer.message
        assert "cannot open it as PDF" in viewer.message.text() or "no page 2" in viewer.message.text()
        assert viewer.grab().save(str(artifacts / "viewer-page-error.png"))
    finally:
        opener.renderer.close()
