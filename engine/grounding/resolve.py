"""Resolve written citations against a Corpus: which document, which place, and does it exist.

Depends on the corpus data model only (Documents of anchored Segments). Per document it
derives *units*, the numbered places a citation can name: pages for paged documents, single
lines for text and code (split out of the line-block segments), chapters, and verses (numbered
in reading order, with their ``Book C:V`` labels). Indexes are built once per document, lazily.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, Segment
from longdesk.engine.grounding.citation import Citation, Place, PlaceKind, Quote, RawCitation

_UNIT_NAMES = {
    AnchorKind.PAGE: ("page", "pages"),
    AnchorKind.LINES: ("line", "lines"),
    AnchorKind.CHAPTER: ("chapter", "chapters"),
    AnchorKind.VERSE: ("verse", "verses"),
}
_PLACE_KIND = {
    PlaceKind.PAGE: AnchorKind.PAGE,
    PlaceKind.LINES: AnchorKind.LINES,
    PlaceKind.CHAPTER: AnchorKind.CHAPTER,
    PlaceKind.VERSE: AnchorKind.VERSE,
}
_VERSE_LABEL = re.compile(r"^(?P<book>.*\S)\s+(?P<c>\d+):(?P<v>\d+)$")
# Common abbreviations that are not prefixes of the book's name (prefixes work by themselves).
_BOOK_ALIASES = {
    "jn": "john",
    "jhn": "john",
    "mt": "matthew",
    "mk": "mark",
    "mrk": "mark",
    "lk": "luke",
    "jdg": "judges",
    "jg": "judges",
    "phil": "philippians",
    "php": "philippians",
    "phm": "philemon",
    "jas": "james",
    "sos": "songofsolomon",
    "song": "songofsolomon",
    "canticles": "songofsolomon",
    "ezk": "ezekiel",
    "rv": "revelation",
    "revelations": "revelation",
    "psalm": "psalms",
    "1jn": "1john",
    "2jn": "2john",
    "3jn": "3john",
}


def book_key(book: str) -> str:
    """``1 Cor.`` → ``1cor``: case, spaces and dots do not matter in book names."""
    return re.sub(r"[\s.]+", "", book).casefold()


def unit_name(kind: AnchorKind, count: int) -> str:
    singular, plural = _UNIT_NAMES[kind]
    return f"{count} {singular if count == 1 else plural}"


@dataclass(slots=True)
class DocIndex:
    """A document's numbered units and, for verse documents, its ``Book C:V`` lookup.

    Only the unit numbers are kept, not their texts: ``unit_texts`` reads them from the
    document when the word index is built (``engine.grounding.verify.DocWords``), so that an
    index does not hold a second copy of the corpus.
    """

    doc: Document
    kind: AnchorKind | None
    unit_nums: array[int] = field(default_factory=lambda: array("q"))  # sorted unit numbers
    verse_labels: list[str] = field(default_factory=list)  # verse n's label (``Genesis 1:1``) at n - 1
    books: dict[str, str] = field(default_factory=dict)  # book key → book as labelled
    # (book, chapter, verse) → verse number, keyed compactly (``_verse_key``): a Bible has 31,102.
    _verses: dict[object, int] = field(default_factory=dict)
    _book_ids: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.unit_nums[-1] if self.unit_nums else 0

    def label(self, verse_no: int) -> str:
        """The label of verse number ``verse_no`` ('' for none)."""
        return self.verse_labels[verse_no - 1] if 1 <= verse_no <= len(self.verse_labels) else ""

    def add_verse(self, book: str, chapter: int, verse: int, verse_no: int) -> None:
        """Record that ``book chapter:verse`` (a book key) is verse number ``verse_no``."""
        book_id = self._book_ids.setdefault(book, len(self._book_ids))
        self._verses[_verse_key(book_id, chapter, verse)] = verse_no

    def verse(self, book: str, chapter: int, verse: int) -> int | None:
        """The verse number of ``book chapter:verse`` (a book key), or None."""
        book_id = self._book_ids.get(book)
        return None if book_id is None else self._verses.get(_verse_key(book_id, chapter, verse))

    def extent(self) -> str:
        if self.kind is None:
            return "no text"
        return unit_name(self.kind, len(self.unit_nums) if self.kind is AnchorKind.VERSE else self.count)

    def unit_texts(self) -> Iterator[tuple[int, str]]:
        """``(unit number, its text)`` in unit order, read from the document on each call."""
        units = unit_texts(self.doc)
        for n in sorted(units):
            yield n, units.pop(n)

    def find_book(self, written: str) -> tuple[str, str]:
        """The book key for a written book name, or ``("", why)``.

        Leading words that are not part of a name are dropped (``see Gen`` → ``Gen``).
        """
        words = written.split()
        for skip in range(len(words)):
            key = book_key(" ".join(words[skip:]))
            key = _BOOK_ALIASES.get(key, key)
            if key in self.books:
                return key, ""
            matches = sorted(k for k in self.books if k.startswith(key))
            if len(matches) == 1:
                return matches[0], ""
            if len(matches) > 1:
                names = ", ".join(self.books[k] for k in matches[:4])
                return "", f"book {written!r} is ambiguous ({names}...)"
        return "", f"no book {written!r} in {self.doc.doc_id}"


_VERSE_BITS = 21


def _verse_key(book_id: int, chapter: int, verse: int) -> object:
    """One int for a verse when its numbers are below 2**21 (always, in practice), else a tuple."""
    if 0 <= chapter < 1 << _VERSE_BITS and 0 <= verse < 1 << _VERSE_BITS:
        return (book_id << 2 * _VERSE_BITS) | (chapter << _VERSE_BITS) | verse
    return (book_id, chapter, verse)


def _whole_lines(seg: Segment) -> bool:
    """The segment is a block of lines whose line count matches its anchor (split per line)."""
    a = seg.anchor
    if a.kind is not AnchorKind.LINES:
        return False
    text = seg.text
    lines = text.count("\n") + (0 if text == "" or text.endswith("\n") else 1)
    return lines == a.end - a.start + 1


def unit_texts(doc: Document) -> dict[int, str]:
    """A document's units and their texts: verses numbered in reading order, a line block
    split into its lines (kept whole when its line count does not match its anchor), a page's
    or chapter's segments joined. The keys are ``build_doc_index``'s ``unit_nums``."""
    units: dict[int, str] = {}
    verse_no = 0
    for seg in doc.segments:
        a = seg.anchor
        if a.kind is AnchorKind.VERSE:
            verse_no += 1
            units[verse_no] = seg.text
        elif _whole_lines(seg):
            for n, line in enumerate(seg.text.split("\n")[: a.end - a.start + 1], start=a.start):
                units[n] = line + "\n"
        else:
            units[a.start] = units.get(a.start, "") + seg.text
            for n in range(a.start + 1, a.end + 1):
                units.setdefault(n, "")
    return units


def build_doc_index(doc: Document) -> DocIndex:
    """Number a document's units (their texts stay in the document: ``DocIndex.unit_texts``)."""
    kinds = {s.anchor.kind for s in doc.segments}
    kind = next(iter(kinds)) if len(kinds) == 1 else (doc.segments[0].anchor.kind if doc.segments else None)
    index = DocIndex(doc, kind)
    numbers: set[int] = set()
    verse_no = 0
    for seg in doc.segments:
        a = seg.anchor
        if a.kind is AnchorKind.VERSE:
            verse_no += 1
            numbers.add(verse_no)
            index.verse_labels.append(a.label)
            m = _VERSE_LABEL.match(a.label.strip())
            if m:
                key = book_key(m["book"])
                index.books.setdefault(key, m["book"])
                index.add_verse(key, int(m["c"]), int(m["v"]), verse_no)
        elif _whole_lines(seg):
            numbers.update(range(a.start, a.end + 1))
        else:
            numbers.update(range(a.start, max(a.start, a.end) + 1))
    index.unit_nums = array("q", sorted(numbers))
    return index


class CorpusIndex:
    """Look-ups over a Corpus by id, name and file name, with per-document unit indexes.

    Indexes are built lazily and kept, so keep one CorpusIndex per corpus (a session) and pass
    it to every ``CitationTracker``; use it from one thread at a time.
    """

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._docs: dict[str, DocIndex] = {}
        self.word_cache: dict[str, object] = {}  # doc id → verify.DocWords
        self._by_key: dict[str, list[Document]] = {}
        for doc in corpus.documents:
            for key in _name_keys(doc):
                bucket = self._by_key.setdefault(key, [])
                if doc not in bucket:
                    bucket.append(doc)

    def doc(self, doc_id: str) -> DocIndex:
        if doc_id not in self._docs:
            found = self.corpus.by_id(doc_id)
            if found is None:
                raise KeyError(doc_id)
            self._docs[doc_id] = build_doc_index(found)
        return self._docs[doc_id]

    def verse_docs(self) -> list[DocIndex]:
        return [
            self.doc(d.doc_id)
            for d in self.corpus.documents
            if d.segments and d.segments[0].anchor.kind is AnchorKind.VERSE
        ]

    def lookup(self, ref: str) -> tuple[list[Document], str]:
        """Documents a reference names, exactly by id, then by name, file name or stem."""
        key = ref.strip().casefold()
        docs = self._by_key.get(key, [])
        if docs:
            return docs, ""
        return [], f"no document {ref}"

    def known_name(self, ref: str) -> bool:
        """Whether ``ref`` names a document (for the parser) or a verse book."""
        return bool(self._by_key.get(ref.strip().casefold()))

    def knows_book(self, book: str) -> bool:
        return any(not d.find_book(book)[1] for d in self.verse_docs())


def _name_keys(doc: Document) -> list[str]:
    name = doc.name.replace("\\", "/")
    base = name.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    keys = [doc.doc_id, name, base, stem]
    # ``src/app.py`` also as ``app.py`` cited with a partial path
    parts = name.split("/")
    keys += ["/".join(parts[i:]) for i in range(1, len(parts))]
    return [k.casefold() for k in keys if k]


def _range_problem(index: DocIndex, place: Place, kind: AnchorKind) -> str:
    first, last = sorted((place.start, place.end))
    if first < 1 or last > index.count:
        singular = _UNIT_NAMES[kind][0]
        what = f"{singular} {last if last > index.count else first}"
        return f"{what} does not exist in {index.doc.doc_id} ({index.extent()})"
    return ""


def resolve(raw: RawCitation, corpus: CorpusIndex, previous_doc: str = "") -> Citation:
    """Resolve one parsed citation; ``previous_doc`` is used when it names no document.

    Returns:
        A Citation with ``doc_id`` and ``anchor`` set, or with ``problem`` saying why not,
        e.g. ``page 7 does not exist in D2 (5 pages)`` or ``no document D9``.
    """
    place = raw.place

    def fail(why: str, doc: Document | None = None) -> Citation:
        if doc is None:
            return Citation(0, raw, problem=why)
        return Citation(0, raw, doc_id=doc.doc_id, doc_name=doc.name, problem=why)

    # Which document.
    if raw.doc_ref:
        docs, why = corpus.lookup(raw.doc_ref)
        if not docs:
            return fail(why)
        if len(docs) > 1:
            ids = ", ".join(d.doc_id for d in docs[:4])
            return fail(f"{raw.doc_ref!r} is ambiguous: {ids}")
        doc = docs[0]
    elif place.kind is PlaceKind.VERSE:
        return _resolve_verse_anywhere(raw, corpus, previous_doc)
    elif previous_doc:
        found = corpus.corpus.by_id(previous_doc)
        if found is None:
            return fail(f"no document {previous_doc}")
        doc = found
    elif len(corpus.corpus.documents) == 1:
        doc = corpus.corpus.documents[0]
    else:
        return fail("names no document (cite it as [D1, ...])")

    index = corpus.doc(doc.doc_id)
    if place.kind is PlaceKind.DOCUMENT:
        return Citation(0, raw, doc_id=doc.doc_id, doc_name=doc.name)
    if index.kind is None:
        return fail(f"{doc.doc_id} has no text", doc)
    if place.kind is PlaceKind.VERSE:
        return (
            _resolve_verse(raw, index)
            if index.kind is AnchorKind.VERSE
            else fail(f"{doc.doc_id} has no verses; cite its {_UNIT_NAMES[index.kind][1]}", doc)
        )
    kind = index.kind if place.kind is PlaceKind.NUMBER else _PLACE_KIND[place.kind]
    if kind is not index.kind:
        return fail(
            f"{doc.doc_id} is cited by {_UNIT_NAMES[index.kind][0]}, not by {_UNIT_NAMES[kind][0]}", doc
        )
    if kind is AnchorKind.VERSE:
        return fail(f"cite a verse of {doc.doc_id} as Book C:V", doc)
    problem = _range_problem(index, place, kind)
    if problem:
        return fail(problem, doc)
    first, last = sorted((place.start, place.end))
    return Citation(0, raw, doc_id=doc.doc_id, doc_name=doc.name, anchor=Anchor(kind, first, last))


def _resolve_verse(raw: RawCitation, index: DocIndex) -> Citation:
    place = raw.place
    doc = index.doc
    key, why = index.find_book(place.book)
    if not key:
        return Citation(0, raw, doc_id=doc.doc_id, doc_name=doc.name, problem=why)
    first, last = sorted((place.start, place.end))
    book = index.books[key]
    numbers = []
    for v in (first, last):
        n = index.verse(key, place.chapter, v)
        if n is None:
            where = f"{book} {place.chapter}:{v}"
            return Citation(
                0, raw, doc_id=doc.doc_id, doc_name=doc.name, problem=f"no verse {where} in {doc.doc_id}"
            )
        numbers.append(n)
    span = str(first) if first == last else f"{first}-{last}"
    label = f"{book} {place.chapter}:{span}"
    anchor = Anchor(AnchorKind.VERSE, numbers[0], numbers[1], label)
    return Citation(0, raw, doc_id=doc.doc_id, doc_name=doc.name, anchor=anchor)


def _resolve_verse_anywhere(raw: RawCitation, corpus: CorpusIndex, previous_doc: str) -> Citation:
    """``[Gen 1:1]``: the previously cited verse document first, then any that has the verse."""
    candidates = corpus.verse_docs()
    if not candidates:
        return Citation(0, raw, problem=f"no document with verses for {raw.place.describe()}")
    candidates.sort(key=lambda d: d.doc.doc_id != previous_doc)
    first_try: Citation | None = None
    for index in candidates:
        cited = _resolve_verse(raw, index)
        if cited.resolved:
            return cited
        first_try = first_try or cited
    assert first_try is not None
    return first_try


def with_quotes(citation: Citation, index: int, quotes: tuple[Quote, ...]) -> Citation:
    """The same citation numbered and with its quotes attached."""
    return Citation(
        index, citation.raw, quotes, citation.doc_id, citation.doc_name, citation.anchor, citation.problem
    )
