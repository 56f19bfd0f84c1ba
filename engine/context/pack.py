"""Pack a Corpus into one byte-stable text with light anchor markup, and count it exactly.

Markup (kept small: it is paid for in tokens on every document):

    <doc id="D1" name="src/app.py" kind="code">
    <L1>
    ...lines 1-40...
    <L41>
    ...
    </doc>

Page segments open with ``<p12>``, chapters with ``<c3>``, verses with ``<v Gen 1:1>``. The
citing contract in ``assets/prompts/system.txt`` tells the model how to cite them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from engine.context.plan import Budget, ContextPlan, DocumentSpan
from engine.corpus.model import Anchor, AnchorKind, Corpus, Document

TokenCounter = Callable[[str], int]


def default_instructions() -> str:
    """The citing contract: short and stable, since it is part of every cached prefix."""
    return resources.files("assets").joinpath("prompts/system.txt").read_text(encoding="utf-8")


def anchor_marker(anchor: Anchor) -> str:
    if anchor.kind is AnchorKind.PAGE:
        return f"<p{anchor.start}>"
    if anchor.kind is AnchorKind.CHAPTER:
        return f"<c{anchor.start}>"
    if anchor.kind is AnchorKind.VERSE:
        return f"<v {anchor.label}>"
    return f"<L{anchor.start}>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")


def document_block(doc: Document) -> str:
    """The packed text of one document: header, anchored segments, footer."""
    parts = [f'<doc id="{doc.doc_id}" name="{_attr(doc.name)}" kind="{doc.kind.value}">\n']
    for seg in doc.segments:
        text = seg.text if seg.text.endswith("\n") or not seg.text else seg.text + "\n"
        parts.append(f"{anchor_marker(seg.anchor)}\n{text}")
    parts.append("</doc>\n")
    return "".join(parts)


def pack(
    corpus: Corpus,
    count_tokens: TokenCounter,
    context_window: int,
    *,
    instructions: str | None = None,
    reserved_output: int = 512,
    reserved_thinking: int = 0,
) -> ContextPlan:
    """Pack every document of ``corpus`` (none is dropped) and count the prefix exactly.

    Args:
        corpus: the documents, in their final order.
        count_tokens: the chosen model's own tokenizer (exact counts, never chars / 4).
        context_window: the model's context size in tokens.
        instructions: the citing contract; the default comes from assets.
        reserved_output: tokens kept free for the answer.
        reserved_thinking: tokens kept free for reasoning.

    Returns:
        The plan; ``plan.budget.fits`` says whether it fits, and by how much it does not.
    """
    text_instructions = default_instructions() if instructions is None else instructions
    blocks: list[str] = []
    spans: list[DocumentSpan] = []
    offset = len("<corpus>\n")
    for doc in corpus.documents:
        block = document_block(doc)
        spans.append(DocumentSpan(doc.doc_id, doc.name, offset, offset + len(block), count_tokens(block)))
        blocks.append(block)
        offset += len(block)
    corpus_text = "<corpus>\n" + "".join(blocks) + "</corpus>\n"
    prefix_tokens = count_tokens(text_instructions + "\n" + corpus_text)
    budget = Budget(
        context_window=context_window,
        prefix=prefix_tokens,
        reserved_thinking=reserved_thinking,
        reserved_output=reserved_output,
    )
    return ContextPlan(text_instructions, corpus_text, prefix_tokens, tuple(spans), budget)
