"""Servers on 127.0.0.1 for the hosted-backend tests: llama-cpp-python's own OpenAI-compatible
server with the default model (``llama_server``, in ``tests/conftest.py``, shared with the window
tests), and the DeepSeek emulator. Both are always shut down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from tests.conftest import SERVER_CTX  # noqa: F401 - the test modules import it from here
from tests.hosted import deepseek_emulator


@pytest.fixture
def emulator() -> Iterator[tuple[str, deepseek_emulator.Emulator]]:
    with deepseek_emulator.running() as (url, emu):
        yield url, emu


def kitchen_corpus(extra: str = "") -> Corpus:
    text = "The kettle is blue.\nThe oven is broken.\n" + extra
    lines = text.count("\n")
    doc = Document(
        "D1",
        "kitchen.txt",
        "/notes/kitchen.txt",
        DocumentKind.TEXT,
        "0" * 64,
        (Segment(Anchor(AnchorKind.LINES, 1, lines), text),),
    )
    return Corpus.of([doc])


SHORT_INSTRUCTIONS = "Answer from the documents below and cite them as [doc-id, place]."


def plan_for(
    corpus: Corpus, count: object, window: int = 1_000_000, instructions: str | None = None
) -> ContextPlan:
    """The packed plan; ``instructions`` short ones keep CPU prompt reading quick."""
    assert callable(count)
    return pack(corpus, count, window, instructions=instructions)
