"""Pictures written as text (SVG, XPM, EPS, Netpbm): what of them is worth reading.

Their bytes are mostly coordinates and pixels: the three logo SVGs of a web framework are
8,400 tokens of path data and no words. By default such a file is left out with its reason,
except that an SVG with words of its own (``<title>``, ``<desc>``, ``<text>``) is reduced to
them, each anchored at the line of the file it stands on. A file force-included by the user
(``LoadOptions.force_include``, ``longdesk ... --include '*.svg'``) is read whole as text.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import PurePosixPath

from longdesk.engine.corpus.model import Anchor, AnchorKind, Segment

# suffix -> what it is, for the reason shown when it is left out
IMAGE_TEXT_SUFFIXES = {
    ".svg": "SVG drawing",
    ".xpm": "XPM image",
    ".eps": "EPS drawing",
    ".pbm": "Netpbm image",
    ".pgm": "Netpbm image",
    ".ppm": "Netpbm image",
    ".pnm": "Netpbm image",
    ".dxf": "CAD drawing",
}
_READ_TAGS = frozenset({"title", "desc", "text"})
_SKIP_TAGS = frozenset({"style", "script", "metadata", "defs"})
_MAX_ITEM_CHARS = 2000


def image_text_kind(name: str) -> str | None:
    """``SVG drawing``, ``XPM image``, ... when ``name`` is a picture written as text, else None."""
    return IMAGE_TEXT_SUFFIXES.get(PurePosixPath(name.rsplit("!", 1)[-1]).suffix.lower())


def left_out_reason(kind: str) -> str:
    """Why a picture written as text is not read, and how to read it anyway."""
    return f"image data as text ({kind}; force-include it to read it whole)"


class _SvgWords(HTMLParser):
    """The words of an SVG: ``(line, tag, text)`` of each title, desc and text element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[int, str, str]] = []
        self._open: list[tuple[str, int, list[str]]] = []  # read elements being collected
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        local = tag.rsplit(":", 1)[-1]
        if local in _SKIP_TAGS:
            self._skip += 1
        elif local in _READ_TAGS and not self._skip and not self._open:
            self._open.append((local, self.getpos()[0], []))

    def handle_endtag(self, tag: str) -> None:
        local = tag.rsplit(":", 1)[-1]
        if local in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif self._open and local == self._open[-1][0]:
            name, line, parts = self._open.pop()
            words = " ".join("".join(parts).split())
            if words:
                self.items.append((line, name, words[:_MAX_ITEM_CHARS]))

    def handle_data(self, data: str) -> None:
        if self._open and not self._skip:
            self._open[-1][2].append(data)


def svg_segments(text: str) -> list[Segment]:
    """One segment per title, description or text element, anchored at its line in the file.

    Returns:
        An empty list when the drawing has no words of its own.
    """
    parser = _SvgWords()
    parser.feed(text)
    parser.close()
    labels = {"title": "title", "desc": "description", "text": "text"}
    return [
        Segment(Anchor(AnchorKind.LINES, line, line), f"{labels[tag]}: {words}\n")
        for line, tag, words in parser.items
    ]
