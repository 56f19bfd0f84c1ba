"""Choosing the next token from a model's logits: greedy or by temperature, some tokens refused.

A prompt format can refuse tokens at a point of the answer: the reading format's answer is the
rest of the ``Answer:`` line, so before its first visible character a token that breaks the
line is refused (``AnswerPolicy.starts_on_its_line``). The refused token's logit is set to minus
infinity and the choice made again from the rest, so greedy decoding takes the best token that
is allowed and sampling draws from the allowed ones with their own weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# Refusals per choice before the last choice is taken anyway (a model whose every likely token
# is refused is better stopped by the guard than looped over its whole vocabulary).
MAX_REFUSALS = 64

Logits = np.ndarray[Any, np.dtype[np.float32]]


def choose_token(
    logits: Logits,
    temperature: float,
    rng: np.random.Generator,
    refuse: Callable[[int], bool] | None = None,
) -> int:
    """The next token: the argmax (``temperature <= 0``) or a draw, never one ``refuse`` names.

    Args:
        logits: ``(n_vocab,)`` next-token logits; not modified (a refusal works on a copy).
        temperature: 0 for greedy decoding.
        rng: the draw's generator (unused when greedy).
        refuse: True for a token that may not be chosen here; ``None`` refuses nothing.

    Returns:
        The token id; after ``MAX_REFUSALS`` refused choices, the last one chosen.
    """
    token = _choose(logits, temperature, rng)
    if refuse is None or not refuse(token):
        return token
    allowed = logits.astype(np.float64)  # (n_vocab,)
    for _ in range(MAX_REFUSALS):
        allowed[token] = -np.inf
        token = _choose(allowed, temperature, rng)
        if not refuse(token):
            break
    return token


def _choose(logits: np.ndarray[Any, Any], temperature: float, rng: np.random.Generator) -> int:
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = (logits - logits.max()) / temperature  # (n_vocab,); refused ones stay -inf
    probs = np.exp(scaled)
    probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))
