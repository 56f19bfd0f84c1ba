"""The corpus data model: Documents made of anchored Segments, and a Corpus of them.

Everything here is immutable and plain data so that it can cross process boundaries (the
isolated parser returns it), be hashed for caches, and be saved in sessions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longdesk.engine.corpus.segments import SegmentTable


class AnchorKind(enum.StrEnum):
    """Where a segment sits in its source."""

    PAGE = "page"  # paged formats (PDF, XPS, CBZ): start == end == 1-based page number
    LINES = "lines"  # text and code: 1-based inclusive line range
    CHAPTER = "chapter"  # reflowable books (EPUB, FB2, MOBI): 1-based chapter index
    VERSE = "verse"  # scripture-like texts with verse ids, label carries "Book C:V"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A place in a source document.

    Attributes:
        kind: what the numbers mean.
        start: first page / line / chapter (1-based).
        end: last page / line / chapter (inclusive); equal to ``start`` for a single place.
        label: a human label where numbers are not enough (chapter title, verse id).
    """

    kind: AnchorKind
    start: int
    end: int
    label: str = ""

    def describe(self) -> str:
        """Short human text, e.g. ``p. 12``, ``lines 10-24``, ``ch. 3 "The Sea"``."""
        if self.kind is AnchorKind.PAGE:
            return f"p. {self.start}" if self.start == self.end else f"pp. {self.start}-{self.end}"
        if self.kind is AnchorKind.LINES:
            return f"line {self.start}" if self.start == self.end else f"lines {self.start}-{self.end}"
        if self.kind is AnchorKind.CHAPTER:
            title = f' "{self.label}"' if self.label else ""
            return f"ch. {self.start}{title}"
        return self.label or f"verse {self.start}"


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of a document's text at one anchor."""

    anchor: Anchor
    text: str


class DocumentKind(enum.StrEnum):
    PDF = "pdf"
    EPUB = "epub"
    EBOOK = "ebook"  # MOBI, FB2
    XPS = "xps"
    COMIC = "comic"  # CBZ
    TEXT = "text"
    MARKDOWN = "markdown"
    RST = "rst"
    HTML = "html"
    NOTEBOOK = "notebook"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class TocEntry:
    """One entry of a book's table of contents, kept as structure (not packed as text)."""

    level: int
    title: str
    anchor: Anchor


@dataclass(frozen=True, slots=True)
class Document:
    """One source file (or archive member) read into anchored text.

    Attributes:
        doc_id: stable id derived from the source path and content (not random, not a counter
            that shifts when other documents are added).
        name: display name, relative to the root the user dropped.
        source: absolute path, or ``archive.zip!member/path`` for archive members.
        kind: the format family.
        sha256: hex digest of the source bytes.
        segments: the text, in reading order, each with its anchor. Any sequence of Segments
            may be given; it is kept as a compact ``engine.corpus.segments.SegmentTable``
            (one string plus offsets), whose characters packing may move into the packed
            block (same characters, held once).
        language: for code, the language name (``python``); empty otherwise.
        flags: extra markers such as ``secret`` (e.g. ``.env``, keys), for the hosted path.
        toc: the table of contents (PDF outline, EPUB navigation), pointing at anchors.
        notes: things a user should know about this document (e.g. a page cut at the cap).
    """

    doc_id: str
    name: str
    source: str
    kind: DocumentKind
    sha256: str
    segments: Sequence[Segment]
    language: str = ""
    flags: frozenset[str] = field(default_factory=frozenset)
    toc: tuple[TocEntry, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Imported here: segments.py builds on the classes above (a module-level import would
        # be circular).
        from longdesk.engine.corpus.segments import SegmentTable

        if not isinstance(self.segments, SegmentTable):
            object.__setattr__(self, "segments", SegmentTable.of(self.segments))

    @property
    def table(self) -> SegmentTable:
        """The segments' compact storage."""
        from longdesk.engine.corpus.segments import SegmentTable

        assert isinstance(self.segments, SegmentTable)
        return self.segments

    @property
    def text(self) -> str:
        return self.table.joined()

    @property
    def char_count(self) -> int:
        return self.table.char_count

    def extent(self) -> str:
        """Pages, lines or chapters, for listings: ``12 pages``, ``340 lines``."""
        table = self.table
        if not table:
            return "empty"
        kind = table.anchor(0).kind
        last = table.last_number()
        unit = {
            AnchorKind.PAGE: "page",
            AnchorKind.LINES: "line",
            AnchorKind.CHAPTER: "chapter",
            AnchorKind.VERSE: "verse",
        }[kind]
        # Verse texts: the verses (front matter and headings are numbered 0).
        count = table.numbered_count() if kind is AnchorKind.VERSE else last
        return f"{count} {unit}{'' if count == 1 else 's'}"


class Problem(enum.StrEnum):
    """Why a file is not in the corpus."""

    SKIPPED = "skipped"  # by rule: ignored, binary, too large, excluded by default
    FAILED = "failed"  # tried and could not be read


@dataclass(frozen=True, slots=True)
class FileIssue:
    """A file that is not in the corpus, and why, in words a user understands."""

    source: str
    problem: Problem
    reason: str


@dataclass(frozen=True, slots=True)
class Corpus:
    """An ordered set of Documents plus what could not be read. Same inputs, same order."""

    documents: tuple[Document, ...]
    issues: tuple[FileIssue, ...] = ()
    cancelled: bool = False  # reading stopped early; what is here was read in full

    def by_id(self, doc_id: str) -> Document | None:
        for doc in self.documents:
            if doc.doc_id == doc_id:
                return doc
        return None

    @staticmethod
    def of(
        documents: Sequence[Document], issues: Sequence[FileIssue] = (), *, cancelled: bool = False
    ) -> Corpus:
        return Corpus(tuple(documents), tuple(issues), cancelled)
