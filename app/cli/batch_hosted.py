"""A hosted batch priced before it starts: the consent of ``app.consent`` plus the batch's figures.

The consent request (documents, tokens, secret-looking files left out, endpoint, budget) is
the one ``longdesk ask`` shows; a batch adds the number of questions, how many requests are
expected to hit the provider's prefix cache, and the estimated cost of the whole run. Each
question is its own request: the corpus goes first and byte-identical every time, so after the
first request (or after the priming request, where the preset primes) every request should
find the corpus in the cache and pay cache-hit rates for it. The estimate counts every answer
at its full output reserve, so the real cost is usually lower; the report shows it per question.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from longdesk.app.consent import ConsentRequest
from longdesk.engine.backends.base import AskOptions
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_prices import format_money


@dataclass(frozen=True, slots=True)
class BatchPrice:
    """What a hosted batch is expected to send and cost.

    Attributes:
        questions: requests the batch will make (one per question not answered yet).
        prefix_tokens: tokens of the corpus part every request starts with.
        prompt_tokens: tokens of all the requests together.
        expected_hits: requests expected to find the corpus in the prefix cache.
        cost: upper estimate of the whole batch, None when no price is known.
        currency: the price table's.
    """

    questions: int
    prefix_tokens: int
    prompt_tokens: int
    expected_hits: int
    cost: float | None
    currency: str

    def lines(self, host: str) -> list[str]:
        if not self.questions:
            return ["Questions: none left to ask (all answered); nothing will be sent."]
        lines = [
            f"Questions: {self.questions}, each its own request (its own thread), "
            f"{self.prompt_tokens:,} prompt tokens in all.",
            f"Expected cache hits: {self.expected_hits} of {self.questions} requests reuse the "
            f"{self.prefix_tokens:,}-token corpus prefix, if {host} keeps a prefix cache.",
        ]
        if self.cost is None:
            lines.append("Estimated cost of the batch: unknown (no price table for this endpoint).")
        else:
            lines.append(
                f"Estimated cost of the batch: at most {format_money(self.cost, self.currency)} "
                "(every answer at its full length); the report shows the real cost per question."
            )
        return lines


def price_batch(
    backend: HostedBackend,
    request: ConsentRequest,
    questions: Sequence[tuple[str, AskOptions]],
    when: dt.datetime | None = None,
) -> BatchPrice:
    """Count and price ``questions`` (text, options) against the consented plan. Sends nothing."""
    plan = request.plan
    prefix = backend.request_tokens(plan, (), None)
    primed = backend.config.prime_cache
    at = when or dt.datetime.now(dt.UTC)
    total_tokens = 0
    cost: float | None = 0.0
    currency = ""
    if primed and questions:
        first = backend.turn_cost(at, 0, prefix, 1)
        cost = None if first is None else first.amount
        currency = first.currency if first is not None else ""
    for n, (text, options) in enumerate(questions):
        tokens = backend.request_tokens(plan, (), text)
        total_tokens += tokens
        hit = prefix if (primed or n > 0) else 0
        turn = backend.turn_cost(at, hit, max(0, tokens - hit), backend.output_reserve(options))
        if turn is None or cost is None:
            cost = None
        else:
            cost += turn.amount
            currency = turn.currency
    hits = len(questions) if primed else max(0, len(questions) - 1)
    return BatchPrice(len(questions), prefix, total_tokens, hits, cost, currency)


def ask_batch_consent(
    request: ConsentRequest, price: BatchPrice, *, assume_yes: bool, stdin: TextIO, stderr: TextIO
) -> bool:
    """Show the consent with the batch's figures; ``--yes`` or y on a terminal agrees, else no."""
    for line in [*request.summary_lines(), *price.lines(request.host)]:
        stderr.write(f"longdesk: {line}\n")
    if assume_yes:
        stderr.write("longdesk: agreed with --yes\n")
        stderr.flush()
        return True
    if not stdin.isatty():
        stderr.flush()
        return False
    stderr.write(
        f"longdesk: send these documents and {price.questions} question(s) to {request.host}? [y/N] "
    )
    stderr.flush()
    return stdin.readline().strip().lower() in ("y", "yes")
