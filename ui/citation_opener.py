"""Opens the source viewer at a citation: the page rendered in the isolated child, or the lines.

Pages (PDF, XPS, CBZ) are rendered by the viewer's ``PageRenderer`` in a child process with a
time and a memory limit, from a file or from a member of an archive; a page that cannot be
shown says why in the viewer. Text not in memory (a session opened before its sources were
read) is read from the file, or from the archive member in the same child.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QObject, Signal

from longdesk.app.citations import Citation, DocRef
from longdesk.engine.corpus.model import AnchorKind, Corpus, Document
from longdesk.ui.widgets.source_viewer import PageRenderer, RenderedPage, SourceViewer
from longdesk.ui.workers.pool import TaskRunner

CONTEXT_LINES = 300  # lines shown around a cited place of a long text


def excerpt(doc: Document, cite: Citation) -> tuple[str, int, int, int]:
    """The text shown for a citation of a document in memory, never the whole of a long one:
    ``(text, number of its first line, first and last marked line)``. A chapter shows the
    chapter; lines show the segments around them; a verse shows the verses around it, one a
    line, numbered in reading order."""
    table = doc.table  # its arrays answer where a place is without making every Segment
    if cite.kind is AnchorKind.CHAPTER:
        text = "".join(table[i].text for i in table.overlapping(cite.first, cite.first))
        return text or doc.text, 1, 0, -1
    if cite.kind is AnchorKind.VERSE:
        at = table.label_index(cite.label)
        if at >= 0:
            lo = max(0, at - CONTEXT_LINES // 4)
            near = [table[i] for i in range(lo, min(len(table), at + CONTEXT_LINES // 4 + 1))]
            lines = [f"{s.anchor.label}  {' '.join(s.text.split())}" for s in near]
            return "\n".join(lines) + "\n", lo + 1, at + 1, at + 1
        return doc.text, 1, 0, -1
    near = [table[i] for i in table.overlapping(cite.first - CONTEXT_LINES, cite.last + CONTEXT_LINES)]
    if not near or cite.kind is not AnchorKind.LINES:
        return doc.text, 1, cite.first, cite.last
    return "".join(s.text for s in near), near[0].anchor.start, cite.first, cite.last


_PAGED = {"pdf": "pdf", "xps": "xps", "comic": "cbz"}  # document kind → pymupdf file type


class CitationOpener(QObject):
    """Shows citations in a SourceViewer; results of superseded clicks are dropped.

    Signals:
        shown(object): the Citation now shown, once its page or text is on screen.
    """

    shown = Signal(object)

    def __init__(self, viewer: SourceViewer, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.runner = runner
        self.renderer = PageRenderer()

    def open(self, cite: Citation, refs: Mapping[str, DocRef], corpus: Corpus | None, ratio: float) -> None:
        """Show ``cite``: from the corpus in memory, else rendered or read on a pool thread."""
        viewer = self.viewer
        ref = refs.get(cite.doc_id)
        viewer.setVisible(True)
        if ref is None:
            viewer.citation = cite
            viewer.header.setText(f"<b>{cite.raw}</b>")
            viewer.show_error(f"There is no document {cite.doc_id} in this session's sources.")
            return
        viewer.set_header(cite, ref.name)
        doc = corpus.by_id(cite.doc_id) if corpus is not None else None
        if ref.kind in _PAGED or (doc is None and cite.kind is AnchorKind.PAGE):
            page = cite.first if cite.kind is AnchorKind.PAGE else 1
            filetype = _PAGED.get(ref.kind, "pdf")
            viewer.show_loading(f"Rendering page {page}…")
            renderer, source, quote = self.renderer, ref.source, cite.quote
            self.runner.run_task(
                lambda: renderer.render(source, page, quote, zoom=1.5 * ratio, filetype=filetype),
                lambda result: self._on_page_rendered(cite, result),
                lambda msg: self._on_failed(cite, f"Could not show page {page}: {msg}"),
            )
            return
        if doc is not None:
            text, first_line, first, last = excerpt(doc, cite)
            viewer.show_text(text, first, last, cite.quote, first_line)
            self.shown.emit(cite)
            return
        viewer.show_loading("Opening the file…")
        source, renderer = ref.source, self.renderer
        self.runner.run_task(
            lambda: renderer.read(source).decode("utf-8", errors="replace"),
            lambda text: self._on_text_read(cite, text),
            lambda msg: self._on_failed(cite, f"Could not open {source}: {msg}"),
        )

    def _on_page_rendered(self, cite: Citation, page: object) -> None:
        if self.viewer.citation is not cite or not isinstance(page, RenderedPage):
            return
        self.viewer.show_page(page)
        self.shown.emit(cite)

    def _on_text_read(self, cite: Citation, text: object) -> None:
        if self.viewer.citation is not cite:
            return
        self.viewer.show_text(str(text), cite.first, cite.last, cite.quote)
        self.shown.emit(cite)

    def _on_failed(self, cite: Citation, message: str) -> None:
        if self.viewer.citation is cite:
            self.viewer.show_error(message)
