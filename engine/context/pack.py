"""Pack a Corpus into one byte-stable text with light anchor markup, and count it exactly.

Markup (kept small: it is paid for in tokens on every document):

    <doc id="DK7Q2M" name="proj/src/app.py" kind="code">
    <L1>
    ...lines 1-10 (code: a marker every 10 lines; prose: every 20)...
    <L11>
    ...
    </doc>

Page segments open with ``<p12>``, chapters with ``<c3>``. Verse texts are printed the way
Bibles are: ``<v Genesis 1>`` opens a chapter (the book as the source writes it), and each verse
is one line that starts with its number, ``3 And God said...`` (the verse text without its
reference). The citing contract in ``assets/prompts/system.txt`` tells the model how to cite
them (``[D1, Gen 1:3]``).

Markup stability (the citation parser reads exactly these forms): ``<doc id="…" name="…"
kind="…">`` … ``</doc>``, and one marker line per segment: ``<pN>``, ``<cN>``, ``<LN>``;
verse texts: ``<v BOOK C>`` per chapter and ``V `` before each verse, ``<v LABEL>`` for
their front matter and headings. Ids are ``D`` + base32 characters (``DK7Q2M``; see
``engine.corpus.ids``).
Every block ends with a newline and the next begins with ``<``, so token counts add up
exactly across documents (``engine.context.tokens``).

Measured overhead of the markup with the default model's tokenizer (Gemma 3): about 4.5% of
the tokens for prose (PDF pages and Markdown) and 6-8% for code, kept under 5% and 15% by
``tests/engine/test_context_tokens.py``. Verse texts (the King James Bible): the packed text is
13% *smaller* than the source with its ``Genesis 1:1`` references, and 6% larger than the
bare verse texts (one ``<v Genesis 1:1>`` line per verse cost +9.6% and +34%).
"""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Callable
from importlib import resources

from longdesk.engine.context.plan import Budget, ContextPlan, DocumentSpan
from longdesk.engine.corpus.load import LoadProgress
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document
from longdesk.engine.events import BackendError, CancelCheck, FailureKind

TokenCounter = Callable[[str], int]
_OPEN = "<corpus>\n"
_CLOSE = "</corpus>\n"


def default_instructions() -> str:
    """The citing contract: short and stable, since it is part of every cached prefix."""
    return resources.files("longdesk.assets").joinpath("prompts/system.txt").read_text(encoding="utf-8")


_VERSE_REF = re.compile(r"^(?P<chapter>.*\S\s+\d+):(?P<verse>\d+)$")


def anchor_marker(anchor: Anchor) -> str:
    return _marker(anchor.kind, anchor.start, anchor.label)


def _marker(kind: AnchorKind, start: int, label: str) -> str:
    if kind is AnchorKind.PAGE:
        return f"<p{start}>"
    if kind is AnchorKind.CHAPTER:
        return f"<c{start}>"
    if kind is AnchorKind.VERSE:
        return f"<v {label}>"
    return f"<L{start}>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")


def _block(doc: Document) -> tuple[str, array[int], array[int]]:
    """The packed block of one document, and where each segment's text sits in it.

    A block depends only on the document; one that an earlier packing left its segments in
    (``SegmentTable.packed_store``) is used again, so that packing the same corpus twice (for
    another model, after reopening) makes no second copy of it.
    """
    header = f'<doc id="{doc.doc_id}" name="{_attr(doc.name)}" kind="{doc.kind.value}">\n'
    held = doc.table.packed_store()
    if held is not None and held[0].startswith(header):  # the same segments: the same body
        return held
    parts = [header]
    pos = len(parts[0])
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    chapter = ""
    verse = AnchorKind.VERSE
    for kind, first, _last, label, text in doc.table.rows():
        ref = _VERSE_REF.match(label) if kind is verse else None
        if ref is None:
            marker = f"{_marker(kind, first, label)}\n"
            chapter = ""
        elif ref["chapter"] != chapter:
            chapter = ref["chapter"]
            marker = f"<v {chapter}>\n{ref['verse']} "
        else:
            marker = f"{ref['verse']} "
        parts.append(marker)
        pos += len(marker)
        parts.append(text)
        starts.append(pos)
        pos += len(text)
        ends.append(pos)
        if text and not text.endswith("\n"):
            parts.append("\n")
            pos += 1
    parts.append("</doc>\n")
    return "".join(parts), starts, ends


def document_block(doc: Document) -> str:
    """The packed text of one document: header, anchored segments, footer.

    Verses are grouped by chapter: ``<v Genesis 1>`` once, then each verse on its own line
    after its number (``3 And God said...`` is Genesis 1:3). A verse segment whose label is
    not a ``Book C:V`` reference (front matter, a heading) keeps a ``<v LABEL>`` line, and the
    next verse opens its chapter again.
    """
    return _block(doc)[0]


def pack(
    corpus: Corpus,
    count_tokens: TokenCounter,
    context_window: int,
    *,
    instructions: str | None = None,
    reserved_output: int = 512,
    reserved_thinking: int = 0,
    progress: Callable[[LoadProgress], None] | None = None,
    cancelled: CancelCheck | None = None,
) -> ContextPlan:
    """Pack every document of ``corpus`` (none is dropped) and count the prefix exactly.

    Memory: the plan keeps one block per document, and each document's segments are rebased
    onto its block (``SegmentTable.rebase``: the same characters, now held once, inside the
    block), so a packed corpus costs about its text once, not the loaded text plus a packed
    copy. ``ContextPlan.corpus_text`` joins the blocks when a backend asks for the one string.

    Args:
        corpus: the documents, in their final order.
        count_tokens: the chosen model's own tokenizer (exact counts, never chars / 4). A
            counter whose ``line_additive`` is true (``engine.context.tokens.ExactCounter``)
            is called once per block, never on the whole prefix, so cached block counts make an
            unchanged corpus free; its ``identity`` is kept in the plan.
        context_window: the model's context size in tokens.
        instructions: the citing contract; the default comes from assets.
        reserved_output: tokens kept free for the answer.
        reserved_thinking: tokens kept free for reasoning.
        progress: ``LoadProgress`` events of stage ``count`` (documents and tokens counted).
        cancelled: polled before each document; counting a large corpus stops within one.

    Raises:
        BackendError: CANCELLED, when ``cancelled`` turned true (nothing is returned).

    Returns:
        The plan; ``plan.budget.fits`` says whether it fits, and by how much it does not.
    """
    text_instructions = default_instructions() if instructions is None else instructions
    blocks = [_OPEN]
    counts: list[int] = []
    spans: list[DocumentSpan] = []
    offset = len(_OPEN)
    start = time.monotonic()
    total_chars = sum(d.char_count for d in corpus.documents)
    done_chars = 0
    last = 0.0
    for index, doc in enumerate(corpus.documents):
        if cancelled is not None and cancelled():
            raise BackendError(
                FailureKind.CANCELLED, f"cancelled while counting ({index:,} documents counted)"
            )
        block, seg_starts, seg_ends = _block(doc)
        n = count_tokens(block)
        doc.table.rebase(block, seg_starts, seg_ends, packed=True)
        spans.append(DocumentSpan(doc.doc_id, doc.name, offset, offset + len(block), n))
        blocks.append(block)
        counts.append(n)
        offset += len(block)
        done_chars += doc.char_count
        now = time.monotonic()
        if progress is not None and (now - last > 0.1 or index + 1 == len(corpus.documents)):
            last = now
            progress(
                LoadProgress(
                    "count",
                    index + 1,
                    len(corpus.documents),
                    0,
                    done_chars,
                    total_chars,
                    sum(counts),
                    now - start,
                    doc.name,
                )
            )
    blocks.append(_CLOSE)
    head = text_instructions + "\n" + _OPEN
    corpus_tokens: int | None = None
    if getattr(count_tokens, "line_additive", False):
        # Exact: the head ends with a newline, every block starts with "<" and ends with one.
        prefix_tokens = count_tokens(head) + sum(counts) + count_tokens(_CLOSE)
        corpus_tokens = count_tokens(_OPEN) + sum(counts) + count_tokens(_CLOSE)
    else:
        prefix_tokens = count_tokens("".join([text_instructions, "\n", *blocks]))
    budget = Budget(
        context_window=context_window,
        prefix=prefix_tokens,
        reserved_thinking=reserved_thinking,
        reserved_output=reserved_output,
    )
    tokenizer = str(getattr(count_tokens, "identity", ""))
    return ContextPlan(
        text_instructions, tuple(blocks), prefix_tokens, tuple(spans), budget, tokenizer, corpus_tokens
    )


def source_text(doc: Document) -> str:
    """A document's text as its source gives it: verses with their ``Book C:V`` references.

    The loader takes a verse's reference out of its text (the markup carries it), so the bare
    segment texts are shorter than the source; this puts the references back.
    """
    parts = []
    for seg in doc.segments:
        ref = _VERSE_REF.match(seg.anchor.label) if seg.anchor.kind is AnchorKind.VERSE else None
        parts.append(f"{seg.anchor.label} {seg.text}" if ref is not None else seg.text)
    return "".join(parts)


def markup_overhead(corpus: Corpus, count_tokens: TokenCounter) -> tuple[int, int]:
    """``(plain, packed)``: tokens of the documents' source texts and of their packed blocks.

    ``packed / plain - 1`` is what the anchor markup costs over the text as the sources give it
    (for verse texts, with their references: see ``source_text``).
    """
    plain = sum(count_tokens(source_text(doc)) for doc in corpus.documents)
    packed = sum(count_tokens(document_block(doc)) for doc in corpus.documents)
    return plain, packed
