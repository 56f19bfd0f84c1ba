"""choose_token: greedy and temperature choices, with refused tokens never chosen."""

from __future__ import annotations

import numpy as np
import pytest

from longdesk.engine.models.sampling import MAX_REFUSALS, choose_token

NEWLINES = {0, 1}  # in these logits, tokens 0 and 1 stand for "\n" and "\n\n"


def _logits() -> np.ndarray:
    return np.array([9.0, 8.9, 8.8, 5.0, 1.0], dtype=np.float32)


def test_greedy_takes_the_best_token_that_is_not_refused() -> None:
    logits = _logits()
    rng = np.random.default_rng(0)
    assert choose_token(logits, 0.0, rng) == 0
    assert choose_token(logits, 0.0, rng, lambda t: t in NEWLINES) == 2
    assert logits[0] == np.float32(9.0)  # the caller's logits are left as they were


@pytest.mark.parametrize("seed", range(5))
def test_a_draw_never_gives_a_refused_token_and_keeps_the_others_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    draws = [choose_token(_logits(), 1.0, rng, lambda t: t in NEWLINES) for _ in range(400)]
    assert not NEWLINES & set(draws)
    # Among the allowed tokens 2 (8.8) and 3 (5.0), 2 is e^3.8 = 45 times as likely.
    assert draws.count(2) > 0.9 * len(draws)


def test_a_draw_without_refusals_is_unchanged() -> None:
    a = [choose_token(_logits(), 0.7, np.random.default_rng(3)) for _ in range(20)]
    b = [choose_token(_logits(), 0.7, np.random.default_rng(3), lambda _t: False) for _ in range(20)]
    assert a == b


def test_when_everything_likely_is_refused_the_choice_ends() -> None:
    logits = np.arange(200, dtype=np.float32)
    token = choose_token(logits, 0.0, np.random.default_rng(0), lambda _t: True)
    assert token == 199 - MAX_REFUSALS
