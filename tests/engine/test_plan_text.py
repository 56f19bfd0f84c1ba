"""A plan's prefix in pieces: joined, hashed and fingerprinted without making the joined text."""

from __future__ import annotations

import hashlib

from longdesk.engine.backends.hosted_presets import request_fingerprint
from longdesk.engine.context.plan import Budget, ContextPlan

BLOCKS = ("<corpus>\n", '<doc id="D1">\n<p1>\nﬁne 𝑥 ∑ "q"\n</doc>\n', "</corpus>\n")


def _plan(blocks: tuple[str, ...] = BLOCKS) -> ContextPlan:
    return ContextPlan("Cite as [D1, p. 1].", blocks, 10, (), Budget(1000, 10))


def test_parts_join_to_the_system_text() -> None:
    plan = _plan()
    assert "".join(plan.system_parts()) == plan.system_text == plan.instructions + "\n" + plan.corpus_text


def test_digest_is_the_sha256_of_the_joined_text() -> None:
    plan = _plan()
    assert plan.system_digest() == hashlib.sha256(plan.system_text.encode("utf-8")).hexdigest()
    assert _plan((*BLOCKS[:2], "</corpus>\n ")).system_digest() != plan.system_digest()


def test_fingerprint_of_the_pieces_is_that_of_the_text() -> None:
    plan = _plan()
    by_text = request_fingerprint("https://api.example/v1/", "m", plan.system_text)
    assert request_fingerprint("https://api.example/v1", "m", plan.system_parts()) == by_text
