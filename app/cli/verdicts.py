"""An answer's citations as `longdesk ask` prints them, whatever answered (local, resident or hosted)."""

from __future__ import annotations

from typing import TextIO

from longdesk.engine.grounding import CitationTracker, Locator, Status, Summary, Verdict


def format_verdict(verdict: Verdict) -> str:
    """One line per citation: ``✓ [D2, p. 3]  D2 report.pdf p. 3: quote found on p. 3 (100%)``."""
    c = verdict.citation
    anchored = verdict.status is Status.ANCHORED  # a real place, nothing quoted to check there
    mark = "\u2713" if verdict.ok else "\u2192" if verdict.located else "\u2717"
    word = (
        "place" if anchored else "verified" if verdict.ok else "located" if verdict.located else "UNVERIFIED"
    )
    where = f"{c.describe()}: " if c.resolved else ""
    return f"  {mark} {word:<10} {c.text}  {where}{verdict.reason}"


def print_citations(tracker: CitationTracker, stream: TextIO) -> None:
    """The answer's citations, verified, unverified and located marked apart, and the summary.

    Where no citation of the model verified, the places where the answer's words are in the
    corpus follow as *located* citations (``engine.grounding.locate``), never called verified.
    """
    verdicts = tracker.verdicts()
    verdicts += Locator(tracker.index).locate(tracker.text, verdicts)
    print(f"longdesk: citations: {Summary.of(verdicts).describe()}", file=stream)
    for verdict in verdicts:
        print(format_verdict(verdict), file=stream)
    stream.flush()
