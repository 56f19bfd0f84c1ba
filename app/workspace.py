"""The workspace model shared by window and tests: corpus ⇄ session records, history, budget figures.

Qt-free helpers that turn engine values (Corpus, ContextPlan, Usage) into what a session stores
and what the window shows, so the window stays a thin layer of widgets and signals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from longdesk.app.sessions import DocRecord, Session, TurnRecord
from longdesk.engine.backends.base import ThinkingMode, Turn
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Corpus
from longdesk.engine.events import StopReason

# Reserved reasoning tokens per thinking mode (the budget shows them; the backend may use less).
THINKING_RESERVE = {ThinkingMode.OFF: 0, ThinkingMode.HIGH: 8192, ThinkingMode.MAX: 32768}
# The context a model is loaded with when the settings leave it to us.
DEFAULT_CONTEXT_CAP = 32_768


def doc_records(
    corpus: Corpus, tokens: Mapping[str, int], excluded: Iterable[str], previous: Sequence[DocRecord] = ()
) -> tuple[DocRecord, ...]:
    """Session records for every document; token counts from the plan, else from before."""
    out_names = set(excluded)
    known = {d.name: d.tokens for d in previous}
    records = []
    for doc in corpus.documents:
        last = max((s.anchor.end for s in doc.segments), default=0)
        records.append(
            DocRecord(
                doc_id=doc.doc_id,
                name=doc.name,
                source=doc.source,
                kind=doc.kind.value,
                extent=doc.extent(),
                tokens=tokens.get(doc.doc_id, known.get(doc.name, 0)),
                included=doc.name not in out_names,
                last_place=last,
            )
        )
    return tuple(records)


def with_tokens(records: Sequence[DocRecord], tokens: Mapping[str, int]) -> tuple[DocRecord, ...]:
    """``records`` with the token counts of a new plan (cheap: no pass over the text)."""
    return tuple(
        replace(r, tokens=tokens[r.doc_id]) if r.doc_id in tokens and tokens[r.doc_id] != r.tokens else r
        for r in records
    )


def included_corpus(corpus: Corpus, excluded: Iterable[str]) -> Corpus:
    """The corpus less the documents the user left out (ids unchanged, order kept)."""
    out_names = set(excluded)
    return Corpus(tuple(d for d in corpus.documents if d.name not in out_names), corpus.issues)


def issue_rows(corpus: Corpus) -> list[tuple[str, str, str]]:
    return [(Path(i.source).name, i.problem.value, i.reason) for i in corpus.issues]


def plan_tokens(plan: ContextPlan) -> dict[str, int]:
    return {s.doc_id: s.tokens for s in plan.spans}


def history(turns: Sequence[TurnRecord]) -> tuple[Turn, ...]:
    """The finished turns the model sees before the next question (stopped ones included)."""
    return tuple(
        Turn(t.question, t.answer, t.thinking)
        for t in turns
        if t.answer and t.stop_reason != StopReason.FAILED
    )


def conversation_tokens(turns: Sequence[TurnRecord]) -> int:
    """Tokens the conversation adds after the corpus, from the last turn's exact usage."""
    for t in reversed(turns):
        if t.prompt_tokens:
            return max(0, t.prompt_tokens - t.cached_tokens) + t.output_tokens
    return 0


def add_sources(session: Session, paths: Iterable[Path]) -> Session:
    """The session with ``paths`` appended to its sources (no duplicates, order kept)."""
    sources = list(session.sources)
    for p in paths:
        text = str(Path(p).expanduser().resolve())
        if text not in sources:
            sources.append(text)
    return replace(session, sources=tuple(sources))


def context_for(trained: int, requested: int) -> int:
    """The context to load a model with: the setting, else the trained size capped."""
    if requested > 0:
        return min(requested, trained) if trained else requested
    return min(trained or 4096, DEFAULT_CONTEXT_CAP)
