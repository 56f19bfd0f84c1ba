"""A document's segments stored compactly: one text, with offsets and anchor numbers in arrays.

A million-token codebase has some 20,000 segments of ten lines each. Held as one ``Segment``
object, one ``Anchor`` object and one string per segment they cost about 230 bytes each on top
of the text (a string header alone is 49 bytes), and every copy of the text (the loaded
documents, the packed blocks, the packed string) is a whole corpus more. Here a document keeps
its text once, as one string, and each segment is two offsets into it plus its anchor's kind
and numbers (about 33 bytes a segment). ``Segment`` objects are made on access.

The text a table points into can be *rebased* onto another string that holds the same
characters at other offsets: packing does this so that a document's text lives inside its
packed block (``engine.context.pack``) and the corpus is held once, not twice. A rebase never
changes what the segments say; it is one attribute assignment, so a reader on another thread
sees either the old or the new storage, both complete.
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from longdesk.engine.corpus.model import Anchor, AnchorKind, Segment

_KINDS = tuple(AnchorKind)
_KIND_INDEX = {kind: i for i, kind in enumerate(_KINDS)}
_VALUE_INDEX = {kind.value: i for i, kind in enumerate(_KINDS)}


@dataclass(frozen=True, slots=True)
class _Store:
    """Where the characters are: ``text[starts[i]:ends[i]]`` is segment ``i``."""

    text: str
    starts: array[int]
    ends: array[int]
    contiguous: bool  # the segments are ``text`` itself, end to end
    packed: bool = False  # ``text`` is this table's packed block (``engine.context.pack``)


def _offsets() -> array[int]:
    return array("q")


class SegmentTable(Sequence[Segment]):
    """An immutable sequence of Segments over one text (see the module docstring)."""

    __slots__ = ("_chars", "_first", "_kinds", "_labels", "_last", "_store")

    def __init__(
        self,
        text: str,
        starts: array[int],
        ends: array[int],
        kinds: bytes,
        first: array[int],
        last: array[int],
        labels: tuple[str, ...] | None = None,
    ) -> None:
        """Args:
        text: the characters the offsets point into.
        starts, ends: per segment, its text is ``text[starts[i]:ends[i]]``.
        kinds: per segment, the index of its anchor kind in ``AnchorKind``.
        first, last: per segment, the anchor's start and end numbers.
        labels: per segment, the anchor's label; None when every label is empty.
        """
        n = len(starts)
        if not (len(ends) == len(kinds) == len(first) == len(last) == n) or (
            labels is not None and len(labels) != n
        ):
            raise ValueError("segment arrays of different lengths")
        self._store = _make_store(text, starts, ends)
        self._kinds = kinds
        self._first = first
        self._last = last
        self._labels = labels
        self._chars = sum(e - s for s, e in zip(starts, ends, strict=True))

    @classmethod
    def of(cls, segments: Iterable[Segment]) -> SegmentTable:
        """A table holding the given segments (their texts joined into one string)."""
        if isinstance(segments, SegmentTable):
            return segments
        texts: list[str] = []
        starts, ends, first, last = _offsets(), _offsets(), _offsets(), _offsets()
        kinds = bytearray()
        labels: list[str] = []
        pos = 0
        for seg in segments:
            texts.append(seg.text)
            starts.append(pos)
            pos += len(seg.text)
            ends.append(pos)
            kinds.append(_KIND_INDEX[seg.anchor.kind])
            first.append(seg.anchor.start)
            last.append(seg.anchor.end)
            labels.append(seg.anchor.label)
        text = "".join(texts)
        del texts
        return cls(text, starts, ends, bytes(kinds), first, last, tuple(labels) if any(labels) else None)

    @classmethod
    def of_rows(cls, rows: Iterable[Sequence[object]]) -> SegmentTable:
        """A table from plain rows ``(kind value, start, end, label, text)``, the form parse
        results cross processes and the parse cache in, without making a Segment per row.

        Raises:
            ValueError: a row has an unknown kind or numbers that are not integers.
        """
        texts: list[str] = []
        starts, ends, first, last = _offsets(), _offsets(), _offsets(), _offsets()
        kinds = bytearray()
        labels: list[str] = []
        pos = 0
        for kind, start, end, label, raw in rows:
            try:
                kinds.append(_VALUE_INDEX[str(kind)])
            except KeyError:
                raise ValueError(f"unknown anchor kind {kind!r}") from None
            text = str(raw)
            texts.append(text)
            starts.append(pos)
            pos += len(text)
            ends.append(pos)
            first.append(int(start))  # type: ignore[call-overload]
            last.append(int(end))  # type: ignore[call-overload]
            labels.append(str(label))
        joined = "".join(texts)
        del texts
        return cls(joined, starts, ends, bytes(kinds), first, last, tuple(labels) if any(labels) else None)

    def columns(self) -> dict[str, object]:
        """The table as plain columns (``of_columns`` reads them back): the joined text, the
        segments' end offsets in it, kinds, anchor numbers and labels.

        The form the parse cache keeps: one string and a few byte strings decode in a couple of
        milliseconds, where a row per segment (22,000 verses) held the decoding thread, and so
        the GIL, for tens of milliseconds, and the rows and the table built from them held
        the text twice.
        """
        store = self._store
        text = self.joined()
        if store.contiguous:
            ends = store.ends
        else:
            ends, pos = _offsets(), 0
            for s, e in zip(store.starts, store.ends, strict=True):
                pos += e - s
                ends.append(pos)
        return {
            "text": text,
            "ends": _little(ends),
            "kinds": bytes(self._kinds),
            "first": _little(self._first),
            "last": _little(self._last),
            "labels": list(self._labels) if self._labels is not None else None,
        }

    @classmethod
    def of_columns(cls, columns: dict[str, object]) -> SegmentTable:
        """A table from ``columns()``'s form.

        Raises:
            ValueError: the columns are malformed (missing, of other lengths, offsets out of
                order, an unknown kind).
        """
        try:
            text = columns["text"]
            ends = _from_little(columns["ends"])
            kinds = columns["kinds"]
            first = _from_little(columns["first"])
            last = _from_little(columns["last"])
            labels = columns.get("labels")
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed segment columns: {exc}") from None
        if not isinstance(text, str) or not isinstance(kinds, bytes):
            raise ValueError("malformed segment columns: text or kinds")
        if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise ValueError("malformed segment columns: labels")
        n = len(ends)
        if (ends[-1] if n else 0) != len(text):  # with the order check below, none is negative
            raise ValueError("malformed segment columns: offsets")
        starts = _offsets()
        if n:
            starts.append(0)
            starts.extend(ends[:-1])
            if any(a > b for a, b in zip(starts, ends, strict=True)):
                raise ValueError("malformed segment columns: offsets out of order")
        if kinds and max(kinds) >= len(_KINDS):
            raise ValueError("malformed segment columns: unknown anchor kind")
        return cls(text, starts, ends, kinds, first, last, tuple(labels) if labels is not None else None)

    @classmethod
    def lines(cls, text: str, per_anchor: int, first_line: int = 1) -> SegmentTable:
        """Blocks of ``per_anchor`` lines of ``text``, each anchored by its line range.

        The segments are offsets into ``text`` (no copy), except that a text not ending in a
        newline gets one (every block ends with a newline).
        """
        if text and not text.endswith("\n"):
            text += "\n"
        starts, ends, first, last = _offsets(), _offsets(), _offsets(), _offsets()
        pos, line, n = 0, first_line, len(text)
        while pos < n:
            end, count = pos, 0
            while count < per_anchor and end < n:
                end = text.index("\n", end) + 1
                count += 1
            starts.append(pos)
            ends.append(end)
            first.append(line)
            last.append(line + count - 1)
            line += count
            pos = end
        kinds = bytes([_KIND_INDEX[AnchorKind.LINES]]) * len(starts)
        return cls(text, starts, ends, kinds, first, last)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._kinds)

    def anchor(self, index: int) -> Anchor:
        label = self._labels[index] if self._labels is not None else ""
        return Anchor(_KINDS[self._kinds[index]], self._first[index], self._last[index], label)

    @overload
    def __getitem__(self, index: int) -> Segment: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Segment]: ...

    def __getitem__(self, index: int | slice) -> Segment | Sequence[Segment]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("segment index out of range")
        store = self._store
        return Segment(self.anchor(i), store.text[store.starts[i] : store.ends[i]])

    def __iter__(self) -> Iterator[Segment]:
        for kind, start, end, label, text in self.rows():
            yield Segment(Anchor(kind, start, end, label), text)

    def rows(self) -> Iterator[tuple[AnchorKind, int, int, str, str]]:
        """``(kind, start, end, label, text)`` of each segment, in order: what iterating gives,
        without the two objects a Segment and its Anchor cost (packing a long book walks
        every segment on a worker thread, and each object made is time the GIL is held)."""
        store = self._store
        text, kinds = store.text, _KINDS
        labels: Iterable[str] = self._labels if self._labels is not None else itertools.repeat("", len(self))
        spans = zip(self._kinds, self._first, self._last, labels, store.starts, store.ends, strict=True)
        for k, a, b, label, s, e in spans:
            yield kinds[k], a, b, label, text[s:e]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash((len(self), self._chars, self._kinds))

    def __repr__(self) -> str:
        return f"SegmentTable({len(self)} segments, {self._chars:,} characters)"

    @property
    def char_count(self) -> int:
        return self._chars

    # Questions about every segment's anchor, answered from the arrays: making a Segment for
    # each (what iterating does) costs about 4 µs a segment, 0.1 s for a long book.
    def last_number(self) -> int:
        """The largest anchor end number (0 when empty)."""
        return max(self._last, default=0)

    def numbered_count(self) -> int:
        """How many segments have an anchor starting above 0 (verses, not front matter)."""
        return sum(1 for v in self._first if v > 0)

    def label_index(self, label: str) -> int:
        """The index of the first segment whose anchor has ``label``; -1 when none has."""
        if self._labels is None:
            return -1
        try:
            return self._labels.index(label)
        except ValueError:
            return -1

    def overlapping(self, lo: int, hi: int) -> list[int]:
        """The indices of the segments whose anchors end at ``lo`` or later and start at ``hi``
        or earlier, in order."""
        spans = enumerate(zip(self._first, self._last, strict=True))
        return [i for i, (a, b) in spans if b >= lo and a <= hi]

    def joined(self) -> str:
        """The segments' texts, end to end (no copy when they are the stored text itself)."""
        store = self._store
        if store.contiguous:
            return store.text
        return "".join(store.text[s:e] for s, e in zip(store.starts, store.ends, strict=True))

    def may_contain(self, needles: Iterable[str]) -> bool:
        """False only when no segment's text contains any of ``needles``: a prefilter that
        searches the stored text in place (after packing, the document's block, whose markup
        may add false positives but never hides a match that does not cross segments)."""
        text = self._store.text
        return any(needle in text for needle in needles)

    # ------------------------------------------------------------------ storage
    def rebase(self, text: str, starts: array[int], ends: array[int], *, packed: bool = False) -> None:
        """Keep the characters in ``text`` instead: segment ``i`` is ``text[starts[i]:ends[i]]``.

        The caller guarantees that those are the same characters (packing builds ``text``
        from this table); the lengths are checked. ``packed``: ``text`` is the document's
        packed block, which packing may use again (``packed_store``).

        Raises:
            ValueError: the offsets do not describe segments of the same lengths.
        """
        old = self._store
        if len(starts) != len(old.starts) or any(
            e - s != oe - os for s, e, os, oe in zip(starts, ends, old.starts, old.ends, strict=True)
        ):
            raise ValueError("rebase onto segments of other lengths")
        self._store = _make_store(text, starts, ends, packed=packed)

    def packed_store(self) -> tuple[str, array[int], array[int]] | None:
        """The packed block this table was rebased onto, with its segments' offsets; else None."""
        store = self._store
        return (store.text, store.starts, store.ends) if store.packed else None


def _make_store(text: str, starts: array[int], ends: array[int], *, packed: bool = False) -> _Store:
    n = len(starts)
    contiguous = (n == 0 and not text) or (
        n > 0
        and starts[0] == 0
        and ends[-1] == len(text)
        and all(ends[i] == starts[i + 1] for i in range(n - 1))
    )
    return _Store(text, starts, ends, contiguous, packed)


def _little(values: array[int]) -> bytes:
    """``values`` as little-endian 8-byte integers (the cache may outlive this machine's order)."""
    if values.typecode != "q":
        values = array("q", values)
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array("q", values)
    swapped.byteswap()
    return swapped.tobytes()


def _from_little(raw: object) -> array[int]:
    if not isinstance(raw, bytes) or len(raw) % 8:
        raise ValueError("malformed segment columns: an integer column")
    values = array("q")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return values
