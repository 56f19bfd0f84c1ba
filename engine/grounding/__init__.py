"""Citations in answers: parsed as they stream, resolved to a document and place, and verified.

The model is told how to cite by the citing contract (``assets/prompts/system.txt``):
``[D2, p. 12]``, ``[D5, lines 40-44]``, ``[D3, ch. 2]``, ``[D1, Gen 1:1]``, with the words
relied on in double quotes. Grounding reads only the Corpus data model (Documents of anchored
Segments), never a loader's internals.

API (all Qt-free; run it on the thread that receives the answer deltas):

``CitationTracker(corpus, config=None)``
    ``feed(delta) -> list[Citation]``: the citations completed by this piece of the answer,
    resolved (``doc_id``, ``anchor``) or not (``problem``), with their ``quotes``.
    ``finish() -> list[Citation]``: those still waiting for context when the answer ends.
    ``verify(citation) -> Verdict``: the check (cached); ``verdict.ok`` means show it as
    verified; ``verdict.status`` is ``verified`` (quotes found), ``anchored`` (place exists,
    nothing quoted), ``quote_not_found`` or ``unresolved``; ``verdict.reason`` says why in
    words, e.g. ``page 7 does not exist in D2 (5 pages)``, ``quote not found on p. 3 in D2;
    best match 41% on p. 3``, ``no document D9``.
    ``summary() -> Summary``: ``found``, ``verified``, ``unverified`` (and ``describe()``).
``check_answer(text, corpus) -> (verdicts, summary)`` for a finished answer.
``locate_answer(text, corpus, verdicts) -> list[Verdict]``: where the model did not cite (or no
    citation of it verified), the places where Longdesk found the answer's words, as verdicts of
    status ``located`` (never ``ok``); ``Locator`` keeps the indexes for a session.
``verify(citation, corpus) -> Verdict`` for a one-off check.
``parse_citations(text)``, ``format_citation(doc_ref, place)`` for the syntax alone.

Offsets (``citation.start``/``end``, ``quote.start``/``end``) index the answer text, so a view
can mark the citation and its quote in place. Matching rules and thresholds are in
``engine.grounding.verify``.
"""

from longdesk.engine.grounding.citation import (
    Citation,
    Place,
    PlaceKind,
    Quote,
    QuoteCheck,
    RawCitation,
    Status,
    Summary,
    Verdict,
)
from longdesk.engine.grounding.locate import Locator, locate_answer, located_suffix
from longdesk.engine.grounding.parse import find_quotes, format_citation, parse_citations
from longdesk.engine.grounding.resolve import CorpusIndex
from longdesk.engine.grounding.tracker import CitationTracker, check_answer, verify
from longdesk.engine.grounding.verify import VerifyConfig

__all__ = [
    "Citation",
    "CitationTracker",
    "CorpusIndex",
    "Locator",
    "Place",
    "PlaceKind",
    "Quote",
    "QuoteCheck",
    "RawCitation",
    "Status",
    "Summary",
    "Verdict",
    "VerifyConfig",
    "check_answer",
    "find_quotes",
    "format_citation",
    "locate_answer",
    "located_suffix",
    "parse_citations",
    "verify",
]
