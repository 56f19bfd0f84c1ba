"""Verse-aware reading: texts made of ``Book C:V`` verses get one anchor per verse.

Scripture and similar texts are cited by verse, not by page. When most of a document's text is
a run of lines that open with a reference such as ``Genesis 1:1`` or ``1 Kings 2:3``, the
document is re-cut into one segment per verse, labelled with the reference (packed as
``<v Genesis 1>`` per chapter and the verse number before each verse, see
``engine.context.pack``) and with the reference taken out of the verse text, so that it is not
paid for twice. Whitespace inside a verse is normalised (a verse may wrap over lines or pages; a word broken
after its own hyphen, ``two-`` / ``edged``, is joined again).

A verse never runs on into the next *chapter* of a reflowable book (an EPUB spine item): the
text between a chapter's start and its first reference is that chapter's heading (a book name,
a psalm title), kept as its own segment labelled ``heading``, not glued to the previous verse.
Page breaks are different: a verse that wraps onto the next page continues there.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from longdesk.engine.corpus.model import Anchor, AnchorKind, Segment
from longdesk.engine.corpus.segments import SegmentTable

_REF = re.compile(
    r"^[ \t]*(?P<ref>(?:[1-4] )?[A-Z][a-z]+(?: (?:of |the )?[A-Z][a-z]+)* \d{1,3}:\d{1,3})[ \t]+",
    re.MULTILINE,
)
# A hyphenated word that the reader's layout broke after its hyphen (``two-\nedged``).
_LINE_HYPHEN = re.compile(r"(?<=\w)-[ \t]*\n\s*(?=\w)")
MIN_VERSES = 20
MIN_COVERAGE = 0.9
MAX_MEAN_VERSE_CHARS = 2000
# Labels of the segments of a verse text that are not verses (their anchor numbers are 0).
FRONT_MATTER = "front matter"
HEADING = "heading"


def verse_segments(text: str, *, force: bool = False, breaks: Sequence[int] = ()) -> list[Segment] | None:
    """One segment per verse, or None when ``text`` is not a verse text (unless forced).

    Args:
        text: the document's text.
        force: cut at every reference even when the text does not look like a verse text.
        breaks: sorted offsets in ``text`` where a chapter starts; a verse ends at the first
            break after it, and the text from there to the next reference is a heading.
    """
    matches = list(_REF.finditer(text))
    if not matches:
        return None
    covered = len(text) - matches[0].start()
    if not force and (
        len(matches) < MIN_VERSES
        or covered < MIN_COVERAGE * len(text.strip())
        or covered / len(matches) > MAX_MEAN_VERSE_CHARS
    ):
        return None
    segments: list[Segment] = []
    front = " ".join(text[: matches[0].start()].split())
    if front:
        segments.append(Segment(Anchor(AnchorKind.VERSE, 0, 0, FRONT_MATTER), front + "\n"))
    for number, match in enumerate(matches, start=1):
        end = matches[number].start() if number < len(matches) else len(text)
        at = bisect.bisect_right(breaks, match.end())
        cut = breaks[at] if at < len(breaks) and breaks[at] < end else end
        body = " ".join(_LINE_HYPHEN.sub("-", text[match.end() : cut]).split())
        segments.append(Segment(Anchor(AnchorKind.VERSE, number, number, match["ref"]), body + "\n"))
        heading = " ".join(text[cut:end].split())
        if heading:
            segments.append(Segment(Anchor(AnchorKind.VERSE, 0, 0, HEADING), heading + "\n"))
    return segments


def maybe_verses(segments: Sequence[Segment], mode: bool | None) -> list[Segment] | None:
    """Verse segments for a document's segments, per ``LoadOptions.verses``; None keeps them."""
    if mode is False or not segments:
        return None
    breaks: list[int] = []
    offset = 0
    for seg in segments:
        if seg.anchor.kind is AnchorKind.CHAPTER and offset:
            breaks.append(offset)
        offset += len(seg.text)
    text = segments.joined() if isinstance(segments, SegmentTable) else "".join(s.text for s in segments)
    return verse_segments(text, force=bool(mode), breaks=breaks)
