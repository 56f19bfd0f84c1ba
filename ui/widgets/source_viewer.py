"""The source viewer: the place a citation points at, highlighted.

PDF pages are rendered with pymupdf in an isolated child process with a time and a memory
limit (``PageRenderer``; PySide6-Essentials has no QtPdf): the pixels come back as bytes and
become a QImage here, with the quoted passage marked; a page that fails shows the named error. Text and code
are shown with line numbers and the cited lines marked; EPUB chapters show the chapter's text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QImage,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QResizeEvent,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.citations import Check, Citation
from longdesk.engine.corpus import paged
from longdesk.engine.isolation import Crashed, IsolationError, Limits, MemoryLimit, Sandbox, Timeout
from longdesk.ui.widgets.safe_browser import CHECK_COLORS, CHECK_WORDS

HIGHLIGHT = QColor(255, 214, 10, 110)
HIGHLIGHT_STRONG = QColor(255, 170, 0, 150)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A PDF page as an image, with the quoted passage's rectangles in image pixels."""

    image: QImage
    page: int
    page_count: int
    marks: tuple[tuple[float, float, float, float], ...]
    quote_found: bool


RENDER_LIMITS = Limits(wall_s=20.0, memory_bytes=1 << 30)


def _named(page: int, exc: IsolationError, limits: Limits) -> str:
    """What went wrong rendering ``page``, in words that name the failure."""
    if isinstance(exc, Timeout):
        return f"rendering page {page} took longer than {limits.wall_s:g} s and was stopped (time limit)"
    if isinstance(exc, MemoryLimit):
        return f"rendering page {page} needed more than {limits.memory_bytes / 2**20:,.0f} MiB (memory limit)"
    if isinstance(exc, Crashed):
        return f"the page renderer crashed on page {page} ({exc.message})"
    return exc.message


class PageRenderer:
    """Renders document pages in an isolated child process (``engine.isolation``), never here.

    A crafted page can hang, exhaust memory or crash the renderer: that costs one page (a
    named error in the viewer), never the app. One child serves every page and is started
    anew after a failure. ``render`` and ``read`` block: call them on a pool thread; calls
    are taken one at a time.
    """

    def __init__(self, limits: Limits = RENDER_LIMITS) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._sandbox: Sandbox | None = None

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox(self.limits, preload=("pymupdf",))
            return self._sandbox.call(fn, *args)

    def render(
        self, source: str, page: int, quote: str = "", zoom: float = 1.5, filetype: str = "pdf"
    ) -> RenderedPage:
        """Page ``page`` (1-based) of ``source`` (a path or ``archive!member``) as an image.

        Raises:
            ValueError: with a message naming what failed (time or memory limit, crash, no
                such page, not readable).
        """
        try:
            raw = self._call(paged.render_page, source, filetype, page, quote, zoom)
        except IsolationError as exc:
            raise ValueError(_named(page, exc, self.limits)) from exc
        fmt = QImage.Format.Format_RGB888
        image = QImage(raw["samples"], raw["width"], raw["height"], raw["stride"], fmt).copy()
        marks = tuple(tuple(float(v) for v in m) for m in raw["marks"])
        return RenderedPage(image, page, int(raw["page_count"]), marks, bool(raw["quote_found"]))  # type: ignore[arg-type]

    def read(self, source: str) -> bytes:
        """The bytes of a file or an archive member, read in the child."""
        try:
            data: bytes = self._call(paged.read_source, source)
        except IsolationError as exc:
            raise ValueError(exc.message) from exc
        return data

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None


_DEFAULT = PageRenderer()


def render_pdf_page(path: str, page: int, quote: str = "", zoom: float = 1.5) -> RenderedPage:
    """Render 1-based ``page`` of the PDF at ``path`` in the isolated child (pool thread).

    Raises:
        ValueError: the page could not be rendered; the message names why.
    """
    return _DEFAULT.render(path, page, quote, zoom)


class PageView(QWidget):
    """A rendered page with marks drawn over it, scaled to the available width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page: RenderedPage | None = None
        self._pixmap: QPixmap | None = None

    def set_page(self, page: RenderedPage) -> None:
        self.page = page
        self._pixmap = QPixmap.fromImage(page.image)
        self.updateGeometry()
        self.update()

    def _scale(self) -> float:
        if self.page is None or self.page.image.width() == 0:
            return 1.0
        return min(1.0, max(0.2, (self.width() - 16) / self.page.image.width()))

    def sizeHint(self) -> QSize:
        if self.page is None:
            return QSize(400, 300)
        s = self._scale()
        return QSize(int(self.page.image.width() * s) + 16, int(self.page.image.height() * s) + 16)

    def heightForWidth(self, width: int) -> int:
        if self.page is None:
            return 300
        s = min(1.0, max(0.2, (width - 16) / max(1, self.page.image.width())))
        return int(self.page.image.height() * s) + 16

    def hasHeightForWidth(self) -> bool:
        return True

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.page is not None:
            self.setMinimumHeight(self.heightForWidth(self.width()))

    def mark_rects(self) -> list[QRectF]:
        """The marks in widget coordinates."""
        if self.page is None:
            return []
        s = self._scale()
        x0 = (self.width() - self.page.image.width() * s) / 2
        return [QRectF(x0 + x * s, 8 + y * s, w * s, h * s) for x, y, w, h in self.page.marks]

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        if self.page is None or self._pixmap is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        s = self._scale()
        w, h = self.page.image.width() * s, self.page.image.height() * s
        x0 = (self.width() - w) / 2
        target = QRectF(x0, 8, w, h)
        p.fillRect(target.adjusted(2, 2, 2, 2), QColor(0, 0, 0, 50))
        p.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(HIGHLIGHT)
        for r in self.mark_rects():
            p.drawRect(r.adjusted(-1, -1, 1, 1))
        if not self.page.marks:
            pen = p.pen()
            pen.setStyle(Qt.PenStyle.SolidLine)
            pen.setColor(HIGHLIGHT_STRONG)
            pen.setWidth(4)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(target)
        p.end()


class CodeView(QPlainTextEdit):
    """Read-only text with a line-number gutter and marked lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._gutter = _Gutter(self)
        self.marked: tuple[int, int] = (0, 0)
        self.first_line = 1  # the number of the first line shown (an excerpt of a long text)
        self.blockCountChanged.connect(self._update_margins)
        self.updateRequest.connect(self._update_gutter)
        self._update_margins()

    def gutter_width(self) -> int:
        digits = max(3, len(str(self.blockCount() + self.first_line - 1)))
        return 12 + self.fontMetrics().horizontalAdvance("9") * digits

    def _update_margins(self) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _update_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        cr = self.contentsRect()
        self._gutter.setGeometry(QRect(cr.left(), cr.top(), self.gutter_width(), cr.height()))

    def show_lines(self, text: str, first: int, last: int, quote: str = "", first_line: int = 1) -> None:
        """Show ``text`` (whose first line is number ``first_line``) and mark lines
        ``first..last``, scrolled into view."""
        self.first_line = max(1, first_line)
        self.setPlainText(text)
        self._update_margins()
        self.mark(first, last, quote)

    def mark(self, first: int, last: int, quote: str = "") -> None:
        self.marked = (first, last)
        shift = self.first_line - 1
        first, last = (first - shift, last - shift) if first >= 1 else (first, last)
        selections = []
        doc = self.document()
        for line in range(max(1, first), min(last, self.blockCount()) + 1):
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(HIGHLIGHT)
            sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            cur = QTextCursor(doc.findBlockByNumber(line - 1))
            sel.cursor = cur
            selections.append(sel)
        if quote:
            start_block = doc.findBlockByNumber(max(0, first - 1))
            found = doc.find(quote.split("\n", maxsplit=1)[0][:120], start_block.position())
            if not found.isNull():
                sel = QTextEdit.ExtraSelection()
                sel.format.setBackground(HIGHLIGHT_STRONG)
                sel.cursor = found
                selections.append(sel)
        self.setExtraSelections(selections)
        if first >= 1:
            block = doc.findBlockByNumber(min(first, self.blockCount()) - 1)
            cursor = QTextCursor(block)
            self.setTextCursor(cursor)
            self.centerCursor()

    def paint_gutter(self, event: QPaintEvent) -> None:
        p = QPainter(self._gutter)
        pal = self.palette()
        p.fillRect(event.rect(), pal.color(QPalette.ColorRole.AlternateBase))
        block = self.firstVisibleBlock()
        number = block.blockNumber() + self.first_line
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        bottom = top + round(self.blockBoundingRect(block).height())
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and bottom >= event.rect().top():
                marked = self.marked[0] <= number <= self.marked[1]
                color = pal.color(QPalette.ColorRole.Text if marked else QPalette.ColorRole.PlaceholderText)
                p.setPen(color)
                font = p.font()
                font.setBold(marked)
                p.setFont(font)
                p.drawText(0, top, self._gutter.width() - 6, height, Qt.AlignmentFlag.AlignRight, str(number))
            block = block.next()
            top = bottom
            bottom = top + round(self.blockBoundingRect(block).height())
            number += 1
        p.end()


class _Gutter(QWidget):
    def __init__(self, view: CodeView) -> None:
        super().__init__(view)
        self.view = view

    def paintEvent(self, event: QPaintEvent) -> None:
        self.view.paint_gutter(event)


class SourceViewer(QWidget):
    """Header (document, place, check) over a page view or a text view.

    Signals:
        closed(): the user closed the viewer.
    """

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceViewer")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        self.header = QLabel("Click a citation to see its source.", self)
        self.header.setObjectName("viewerHeader")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.note = QLabel("", self)
        self.note.setObjectName("viewerNote")
        self.note.setWordWrap(True)
        self.close_button = QPushButton("Close", self)
        self.close_button.setFlat(True)
        self.close_button.clicked.connect(self.closed)
        layout.addWidget(self.header)
        layout.addWidget(self.note)
        self.stack = QStackedWidget(self)
        self.page_view = PageView()
        self.page_scroll = QScrollArea(self)
        self.page_scroll.setWidgetResizable(True)
        self.page_scroll.setWidget(self.page_view)
        self.code_view = CodeView(self)
        self.message = QLabel("", self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        for w in (self.message, self.page_scroll, self.code_view):
            self.stack.addWidget(w)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignRight)
        self.citation: Citation | None = None

    def set_header(self, cite: Citation, doc_name: str) -> None:
        self.citation = cite
        color = CHECK_COLORS[cite.check].name()
        self.header.setText(
            f"<b>{cite.doc_id}</b> · {doc_name} · <b>{cite.place()}</b> · "
            f"<span style='color:{color}'>{CHECK_WORDS[cite.check]}</span>"
        )
        reason = cite.reason if cite.check is not Check.VERIFIED else ""
        quote = f"Quoted: “{cite.quote}”" if cite.quote else ""
        self.note.setText("\n".join(x for x in (reason, quote) if x))

    def show_loading(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def show_error(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def show_page(self, page: RenderedPage) -> None:
        self.page_view.set_page(page)
        self.stack.setCurrentWidget(self.page_scroll)
        if page.marks:
            first = self.page_view.mark_rects()[0]
            self.page_scroll.ensureVisible(int(first.center().x()), int(first.center().y()), 50, 120)
        elif self.citation is not None and self.citation.quote:
            self.note.setText(self.note.text() + "\nThe quoted words were not found on this page.")

    def show_text(self, text: str, first: int, last: int, quote: str = "", first_line: int = 1) -> None:
        self.code_view.show_lines(text, first, last, quote, first_line)
        self.stack.setCurrentWidget(self.code_view)
