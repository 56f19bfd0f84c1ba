"""Find citations and quotations in answer text, incrementally, as the answer streams in.

A citation is a bracketed or parenthesised reference to a document and a place in it:
``[D2, p. 12]``, ``[D2 p12]``, ``[D2, pages 3-4]``, ``(D5, lines 40–44)``, ``[D5:L40-44]``,
``[D3, ch. 2]``, ``[D1, Gen 1:1]``, ``[Gen 1:1]``, ``[report.pdf, p. 3]``, ``[app.py:40]``,
``[D2]``, and several at once: ``[D2, p. 3; D5, lines 4-6]``, ``[D2, pp. 3, 5]``. En and em
dashes, ``to`` in ranges, smart quotes around names, the anchor markup itself (``<p12>``)
and leading words such as ``see`` are tolerated.

Scanners are fed the text so far and report what became complete; a citation split across
deltas is reported once its closing bracket has arrived. The result never depends on how the
text was cut into deltas: a bracket is decided as soon as its closer is in the text, or
once ``MAX_CITATION_CHARS`` have passed without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from longdesk.engine.grounding.citation import Place, PlaceKind, Quote, RawCitation

MAX_CITATION_CHARS = 160  # longest bracket content looked at
MAX_QUOTE_CHARS = 400  # longest quotation looked at
MIN_QUOTE_CHARS = 3

NameCheck = Callable[[str], bool]

_DASHES = re.compile(r"[\u2010\u2011\u2012\u2013\u2014\u2015\u2212]")
_SPACES = re.compile(r"[\u00a0\u2000-\u200b\u202f\u205f\u3000]")
_NUM = r"\d{1,7}"
_PAGE = rf"(?:pages?|pgs?|pp|p)\.?\s*(?P<pa>{_NUM})(?:\s*-\s*(?:pp?\.?\s*)?(?P<pb>{_NUM}))?"
_LINE = rf"(?:lines?|ll|l)\.?\s*(?P<la>{_NUM})(?:\s*-\s*(?:l\.?\s*)?(?P<lb>{_NUM}))?"
_CHAP = rf"(?:chapters?|chap|ch|c)\.?\s*(?P<ca>{_NUM})(?:\s*-\s*(?:ch?\.?\s*)?(?P<cb>{_NUM}))?"
_VERSE = (
    rf"(?P<book>(?:[1-3]\s?)?[a-z][a-z.]+(?:\s+[a-z][a-z.]*){{0,3}})\s*"
    rf"(?P<vc>{_NUM})\s*:\s*(?P<va>{_NUM})(?:\s*-\s*(?P<vb>{_NUM}))?"
)
_BARE = rf"(?P<na>{_NUM})(?:\s*-\s*(?P<nb>{_NUM}))?"
_PLACE_AT_END = re.compile(
    rf"(?:^|(?<=[\s,:;&#]))(?:{_PAGE}|{_LINE}|{_CHAP}|{_VERSE}|{_BARE})\s*\.?$", re.IGNORECASE
)
_ID = re.compile(r"^D\d{1,6}$", re.IGNORECASE)
_DOC_WORD = re.compile(r"\bdoc(?:ument)?\.?\s*#?\s*(\d{1,6})\b", re.IGNORECASE)
_LEAD_WORDS = re.compile(
    r"^(?:(?:see|cf|cf\.|compare|in|from|on|at|source|sources|ref|refs|reference|according to|also|"
    r"and|verse|v|v\.)(?:\s+|$)|(?:source|sources|ref|see)\s*:\s*)+",
    re.IGNORECASE,
)
_TRAIL_WORDS = re.compile(r"(?:\s+(?:on|at|in|of|and|&))+$", re.IGNORECASE)
_SEPARATORS = " \t\n,:;&#-\u00b7"
_NAME_STRIP = " \t\n,:;#-\"'`*\u201c\u201d\u2018\u2019\u00ab\u00bb()"
_PARTS = re.compile(r";|,\s*(?=D\d{1,6}\b)|\s+and\s+(?=D\d{1,6}\b)", re.IGNORECASE)
_OPENERS = {"[": "]", "(": ")"}
_QUOTE_PAIRS = {
    '"': '"',
    "\u201c": '\u201d"',  # “ closes with ” (or a straight quote, as models mix them)
    "\u201e": "\u201c\u201d",  # „ closes with “ or ”
    "\u00ab": "\u00bb",  # « »
    "`": "`",
}


def normalise_citation_text(text: str) -> str:
    """Dashes to ``-``, odd spaces to spaces, markup brackets and emphasis removed."""
    text = _SPACES.sub(" ", _DASHES.sub("-", text))
    text = text.replace("<", " ").replace(">", " ").replace("*", "")
    text = re.sub(r"(\d)\s+to\s+(\d)", r"\1-\2", text)
    return _DOC_WORD.sub(r"D\1", text)


def _place_from(m: re.Match[str]) -> Place:
    g = m.groupdict()

    def span(a: str, b: str | None) -> tuple[int, int]:
        first = int(a)
        last = int(b) if b is not None else first
        return first, last

    if g["pa"] is not None:
        return Place(PlaceKind.PAGE, *span(g["pa"], g["pb"]))
    if g["la"] is not None:
        return Place(PlaceKind.LINES, *span(g["la"], g["lb"]))
    if g["ca"] is not None:
        return Place(PlaceKind.CHAPTER, *span(g["ca"], g["cb"]))
    if g["va"] is not None:
        first, last = span(g["va"], g["vb"])
        book = " ".join(g["book"].split())
        return Place(PlaceKind.VERSE, first, last, book=book, chapter=int(g["vc"]))
    return Place(PlaceKind.NUMBER, *span(g["na"], g["nb"]))


def clean_doc_ref(ref: str) -> str:
    """The document part of a citation without separators, quotes and filler words."""
    ref = ref.strip(_NAME_STRIP)
    ref = _LEAD_WORDS.sub("", ref)
    ref = _TRAIL_WORDS.sub("", ref)
    return ref.strip(_NAME_STRIP)


def _looks_like_name(ref: str) -> bool:
    """An unknown document reference worth flagging (``Smith 2020``, ``notes.txt``)."""
    if len(ref) > 80 or len(ref.split()) > 5:
        return False
    return bool(ref[:1].isupper() or ref[:1].isdigit() or "." in ref or "/" in ref)


def _is_citation(ref: str, place: Place, known_name: NameCheck | None) -> bool:
    if ref:
        if _ID.match(ref) or (known_name is not None and known_name(ref)):
            return True
        if place.kind in (PlaceKind.NUMBER, PlaceKind.DOCUMENT):
            return known_name is None and "." in ref and len(ref.split()) == 1
        return _looks_like_name(ref)
    return place.kind not in (PlaceKind.NUMBER, PlaceKind.DOCUMENT)


def _split_places(part: str, known_name: NameCheck | None) -> tuple[str, list[Place]]:
    """Peel places off the end of one ``;``-separated part: ``D2, pp. 3, 5`` → D2, [p3, p5]."""
    places: list[Place] = []
    rest = part
    while rest:
        ref = clean_doc_ref(rest)
        if places and (not ref or _ID.match(ref) or (known_name is not None and known_name(ref))):
            break
        m = _PLACE_AT_END.search(rest)
        if m is None:
            break
        place = _place_from(m)
        before = rest[: m.start()]
        if places and place.kind is PlaceKind.NUMBER and not re.search(r"(?:,|\band|&)\s*$", before):
            break  # ``Book 2, p. 3``: a bare number only continues a list after a comma
        places.insert(0, place)
        rest = before.rstrip(_SEPARATORS)
        rest = _TRAIL_WORDS.sub("", rest).rstrip(_SEPARATORS)
    # ``pp. 3, 5``: a bare number after a typed place has that place's kind.
    for i in range(1, len(places)):
        if places[i].kind is PlaceKind.NUMBER and places[i - 1].kind is not PlaceKind.NUMBER:
            prev = places[i - 1]
            places[i] = Place(prev.kind, places[i].start, places[i].end, prev.book, prev.chapter)
    return clean_doc_ref(rest), places


def parse_bracket(content: str, known_name: NameCheck | None = None) -> list[tuple[str, Place]]:
    """The (document as written, place) pairs in one bracket's content; empty if none.

    Args:
        content: the text between the brackets.
        known_name: says whether a string names a document of the corpus (id, name or file
            name). With it, unknown bare names are not taken for citations; without it
            (parsing alone) any name followed by a place is.
    """
    text = normalise_citation_text(content)
    found: list[tuple[str, Place]] = []
    last_ref = ""
    # ``;`` separates citations, and so does a comma or "and" before another document id.
    for part in _PARTS.split(text):
        if not part.strip():
            continue
        ref, places = _split_places(part, known_name)
        if not places:
            if not ref or not (_ID.match(ref) or (known_name is not None and known_name(ref))):
                return []  # a part that is not a citation: the bracket is prose
            places = [Place(PlaceKind.DOCUMENT)]
        if not ref and found:
            ref = last_ref  # ``[D2, p. 3; p. 5]``
        if not all(_is_citation(ref, p, known_name) for p in places):
            return []
        found.extend((ref, p) for p in places)
        last_ref = ref
    return found


def format_citation(doc_ref: str, place: Place) -> str:
    """The canonical written form, as the citing contract asks for it: ``[D2, p. 12]``."""
    if place.kind is PlaceKind.DOCUMENT:
        return f"[{doc_ref}]"
    return f"[{doc_ref}, {place.describe()}]" if doc_ref else f"[{place.describe()}]"


@dataclass(slots=True)
class _Scan:
    """Shared incremental state: the text so far and how far it has been decided."""

    text: str = ""
    pos: int = 0


class CitationScanner:
    """Finds citations in a growing text. ``feed`` returns those completed by the new text."""

    def __init__(self, known_name: NameCheck | None = None) -> None:
        self._known = known_name
        self._s = _Scan()

    @property
    def text(self) -> str:
        return self._s.text

    @property
    def decided_up_to(self) -> int:
        """Every citation starting before this offset has been reported."""
        return self._s.pos

    def feed(self, delta: str, *, final: bool = False) -> list[RawCitation]:
        s = self._s
        s.text += delta
        out: list[RawCitation] = []
        text = s.text
        while True:
            i = _next_opener(text, s.pos)
            if i < 0:
                s.pos = len(text)
                break
            closer = _OPENERS[text[i]]
            limit = i + 1 + MAX_CITATION_CHARS
            j = text.find(closer, i + 1, limit)
            if j < 0:
                if not final and len(text) < limit:
                    s.pos = i
                    break
                s.pos = i + 1
                continue
            inner = _next_opener(text[:j], i + 1)
            if inner >= 0:  # ``[a [D2, p. 3]``, ``(see [D2, p. 3])``: the inner bracket counts
                s.pos = inner
                continue
            pairs = parse_bracket(text[i + 1 : j], self._known)
            if pairs:
                raw = text[i : j + 1]
                out.extend(RawCitation(raw, i, j + 1, ref, place) for ref, place in pairs)
                s.pos = j + 1
            else:
                s.pos = i + 1
        return out

    def finish(self) -> list[RawCitation]:
        return self.feed("", final=True)


def _next_opener(text: str, pos: int) -> int:
    hits = [i for i in (text.find("[", pos), text.find("(", pos)) if i >= 0]
    return min(hits) if hits else -1


class QuoteScanner:
    """Finds quotations (``"..."``, ``“...”``, ``«...»``, ```...```) in a growing text."""

    def __init__(self) -> None:
        self._s = _Scan()
        self.quotes: list[Quote] = []

    @property
    def decided_up_to(self) -> int:
        """Every quotation starting before this offset is in ``quotes``."""
        return self._s.pos

    def feed(self, delta: str, *, final: bool = False) -> list[Quote]:
        s = self._s
        s.text += delta
        text = s.text
        new: list[Quote] = []
        while True:
            i = _next_quote(text, s.pos)
            if i < 0:
                s.pos = len(text)
                break
            closers = _QUOTE_PAIRS[text[i]]
            limit = min(len(text), i + 1 + MAX_QUOTE_CHARS)
            j = next((k for k in range(i + 1, limit) if text[k] in closers), -1)
            if j < 0:
                if not final and len(text) < i + 1 + MAX_QUOTE_CHARS:
                    s.pos = i
                    break
                s.pos = i + 1
                continue
            body = text[i + 1 : j]
            if text[i] == "`" and not body:  # a ``` fence: skip the run of backticks
                s.pos = j + 1
                continue
            if len(body.strip()) >= MIN_QUOTE_CHARS and "\n\n" not in body:
                new.append(Quote(body.strip(), i, j + 1))
                s.pos = j + 1
            else:
                s.pos = i + 1 if len(body.strip()) >= MIN_QUOTE_CHARS else j + 1
        self.quotes.extend(new)
        return new


def _next_quote(text: str, pos: int) -> int:
    hits = [i for i in (text.find(q, pos) for q in _QUOTE_PAIRS) if i >= 0]
    return min(hits) if hits else -1


def parse_citations(text: str, known_name: NameCheck | None = None) -> list[RawCitation]:
    """All citations in a finished text (the same as feeding it in any number of pieces)."""
    scanner = CitationScanner(known_name)
    return scanner.feed(text, final=True)


def find_quotes(text: str) -> list[Quote]:
    """All quotations in a finished text."""
    scanner = QuoteScanner()
    return scanner.feed(text, final=True)
