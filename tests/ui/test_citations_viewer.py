"""Clicking a citation opens the source viewer at the cited page or lines, highlighted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from longdesk.app.citations import Check
from longdesk.app.paths import Paths
from longdesk.app.sessions import TurnRecord
from longdesk.app.workspace import doc_records
from longdesk.engine.corpus.formats import text_document
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets.conversation import TurnWidget
from longdesk.ui.widgets.safe_browser import CHECK_COLORS
from tests.ui.conftest import PAGE_TEXTS
from tests.ui.helpers import ready_shot

pytestmark = pytest.mark.gui


def _pdf_document(path: Path) -> Document:
    import pymupdf

    with pymupdf.open(str(path)) as doc:
        segments = tuple(
            Segment(Anchor(AnchorKind.PAGE, i + 1, i + 1), page.get_text()) for i, page in enumerate(doc)
        )
    return Document("D1", path.name, str(path), DocumentKind.PDF, "0" * 64, segments)


def _window_with_answer(qtbot: QtBot, corpus: Corpus, answer: str) -> tuple[MainWindow, TurnWidget]:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    state = window.workbench
    state.add_sources(Path(d.source) for d in corpus.documents)
    state.set_corpus(corpus, doc_records(corpus, {}, ()))
    turn = TurnRecord("Where does the harbour flood?", answer, output_tokens=30, seconds=1.0)
    state.open_session(dataclasses.replace(state.session, turns=(turn,)), keep_corpus=True)
    assert window.corpus is corpus
    assert window.conversation.turns == [turn]
    window.refresh_all()
    widget = window.conversation.widgets[0]
    qtbot.waitUntil(lambda: bool(widget.answer_view.citation_rects()))
    return window, widget


def _click_citation(qtbot: QtBot, window: MainWindow, widget: TurnWidget, index: int) -> object:
    _href, rect = widget.answer_view.citation_rects()[index]
    window.conversation.ensureWidgetVisible(widget)
    with qtbot.waitSignal(window.viewer_shown, timeout=20_000) as shown:
        QTest.mouseClick(widget.answer_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    return shown.args[0]


def test_pdf_citation_opens_the_page_with_the_quote_marked(
    qtbot: QtBot, ui_home: Path, pdf_book: Path, tmp_path: Path, artifacts: Path
) -> None:
    code = text_document("harbour/src/tides.py", str(tmp_path / "tides.py"), b"a\nb\nc\nd\ne\nf\n", "D2")
    corpus = Corpus.of([_pdf_document(pdf_book), code])
    answer = (
        'The harbour floods at noon [D1, p. 2] "the moon pulls the sea twice a day". '
        "The code agrees [D2, lines 3-4]. A bad one: [D7, p. 1]."
    )
    assert "the moon pulls the sea twice a day" in PAGE_TEXTS[1]
    window, widget = _window_with_answer(qtbot, corpus, answer)
    window.sources.set_documents(window.session.documents, [], [str(pdf_book)])
    checks = [c.check for c in widget.citations]
    # The quote is on page 2 (verified); the lines exist but nothing is quoted (the place
    # exists, not checked: never shown as verified); D7 does not exist.
    assert checks == [Check.VERIFIED, Check.ANCHORED, Check.UNRESOLVED]
    assert "no document D7" in widget.citations[2].reason
    # Verified and unresolved citations are drawn in different colours.
    colours = [fmt.foreground().color().name() for _h, fmt in widget.answer_view.citation_formats()]
    assert colours == [
        CHECK_COLORS[Check.VERIFIED].name(),
        CHECK_COLORS[Check.ANCHORED].name(),
        CHECK_COLORS[Check.UNRESOLVED].name(),
    ]
    assert CHECK_COLORS[Check.VERIFIED].name() != CHECK_COLORS[Check.UNRESOLVED].name()
    assert "1 unresolved" in widget.cites_label.text()
    assert "1 place exists, not checked" in widget.cites_label.text()
    tooltips = [fmt.toolTip() for _h, fmt in widget.answer_view.citation_formats()]
    assert "place exists, not checked" in tooltips[1]

    cite = _click_citation(qtbot, window, widget, 0)
    assert cite.doc_id == "D1"
    viewer = window.viewer
    assert viewer.isVisible()
    page = viewer.page_view.page
    assert page is not None
    assert page.page == 2
    assert page.page_count == 3
    assert page.quote_found
    assert len(page.marks) >= 1
    assert "p. 2" not in viewer.header.text()  # the header speaks words: "page 2"
    assert "page 2" in viewer.header.text()
    assert "verified" in viewer.header.text()
    assert "unverified" not in viewer.header.text()
    # The mark sits where the page's second line of text is, inside the page.
    mark = viewer.page_view.mark_rects()[0]
    assert mark.width() > 20
    assert 0 < mark.top() < viewer.page_view.height()
    window.resize(1400, 860)
    window.splitter.setSizes([360, 560, 480])
    qtbot.waitUntil(lambda: viewer.page_view.width() > 200)
    # The picture shows a window at rest: the model loaded and the sources counted.
    with qtbot.waitSignal(window.corpus_planned, timeout=180_000):
        window.start_background_work()
    ready_shot(qtbot, window, artifacts, "citation-pdf-page.png")

    cite = _click_citation(qtbot, window, widget, 1)
    assert cite.doc_id == "D2"
    code_view = viewer.code_view
    assert viewer.stack.currentWidget() is code_view
    assert code_view.marked == (3, 4)
    marked_lines = sorted(
        s.cursor.blockNumber() + 1
        for s in code_view.extraSelections()
        if s.format.background().color().alpha()
    )
    assert marked_lines == [3, 4]
    assert code_view.textCursor().blockNumber() + 1 == 3
    ready_shot(qtbot, window, artifacts, "citation-code-lines.png")


def test_links_and_images_in_answers_are_never_fetched_or_opened(
    qtbot: QtBot, ui_home: Path, tmp_path: Path
) -> None:
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        code = text_document("a.txt", str(tmp_path / "a.txt"), b"x\n", "D1")
        answer = (
            f"![pixel](http://127.0.0.1:{port}/leak?secret=1) "
            f'<img src="http://127.0.0.1:{port}/html-leak"> '
            f"[site](http://127.0.0.1:{port}/click) and [D1, line 1]"
        )
        window, widget = _window_with_answer(qtbot, Corpus.of([code]), answer)
        view = widget.answer_view
        assert any(str(port) in r for r in view.refused)  # the image was asked for and refused
        assert "<img" in view.toPlainText()  # raw HTML is shown as text, never interpreted
        opened: list[str] = []
        handler = _Opener(opened)
        QDesktopServices.setUrlHandler("http", handler, "open")
        try:
            seen: list[str] = []
            for choice in (QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Open):
                QTimer.singleShot(50, lambda c=choice: _answer_box(seen, c))
                # Runs the modal prompt; the timer answers it.
                view.on_self_anchor_clicked(QUrl(f"http://127.0.0.1:{port}/click"))
            assert seen == [f"http://127.0.0.1:{port}/click"] * 2  # the address is shown first
            assert opened == [f"http://127.0.0.1:{port}/click"]  # opened only after "Open"
        finally:
            QDesktopServices.unsetUrlHandler("http")
        assert hits == []  # nothing was fetched from the server
        assert window.viewer.isHidden()
    finally:
        server.shutdown()


class _Opener(QObject):
    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.sink.append(url.toString())


def _answer_box(seen: list[str], choice: QMessageBox.StandardButton) -> None:
    box = QApplication.activeModalWidget()
    assert isinstance(box, QMessageBox)
    seen.append(box.informativeText())
    box.button(choice).click()


def test_check_colours_differ() -> None:
    assert len({CHECK_COLORS[c].name() for c in (Check.VERIFIED, Check.UNVERIFIED, Check.FAILED)}) == 3
    assert QColor(CHECK_COLORS[Check.UNVERIFIED]).isValid()
