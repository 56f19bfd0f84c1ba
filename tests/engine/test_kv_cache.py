"""The size-bounded key-value cache under the token and parse caches: kept, bounded, never fatal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from longdesk.engine.context.tokens import ExactCounter, TokenCache
from longdesk.engine.corpus.cache import KeyValueCache, ParseCache


def test_values_survive_a_reopen(tmp_path: Path) -> None:
    cache = KeyValueCache(tmp_path / "kv.sqlite", 1 << 20)
    cache.put("a", b"alpha")
    cache.put("b", b"")
    cache.close()
    again = KeyValueCache(tmp_path / "kv.sqlite", 1 << 20)
    assert again.get("a") == b"alpha"
    assert again.get("b") == b""
    assert again.get("missing") is None
    assert again.size_bytes == 5


def test_the_budget_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = KeyValueCache(tmp_path / "kv.sqlite", budget_bytes=1000)
    for i in range(9):
        cache.put(f"k{i}", bytes([i]) * 100)
    assert cache.get("k0") == b"\x00" * 100  # read now: the most recently used
    cache.put("k9", b"\x09" * 100)
    cache.put("k10", b"\x0a" * 100)  # 1,100 bytes: over the budget, down to 900
    kept = {f"k{i}" for i in range(11) if cache.get(f"k{i}") is not None}
    # The two least recently used went (k1, k2); k0, read since it was written, stays.
    assert kept == {"k0", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10"}
    assert cache.size_bytes == 900
    cache.close()
    reopened = KeyValueCache(tmp_path / "kv.sqlite", budget_bytes=1000)
    assert reopened.size_bytes == cache.size_bytes  # the file agrees with the running total


def test_a_value_larger_than_the_budget_is_not_kept(tmp_path: Path) -> None:
    cache = KeyValueCache(tmp_path / "kv.sqlite", budget_bytes=10)
    cache.put("small", b"12345")
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None
    assert cache.get("small") == b"12345"


def test_a_damaged_file_costs_only_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = KeyValueCache(path, 1 << 20)
    cache.put("a", b"alpha")  # no error: a no-op
    assert cache.get("a") is None
    cache.close()


def test_older_files_of_a_cache_are_removed(tmp_path: Path) -> None:
    old = tmp_path / "tokens-v1.sqlite"
    sqlite3.connect(old).close()
    TokenCache(tmp_path).close()
    assert not old.exists()
    assert (tmp_path / "tokens-v2.sqlite").exists()


def test_token_counts_and_parses_round_trip(tmp_path: Path) -> None:
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    first = ExactCounter(count, "words", cache_dir=tmp_path)
    assert first.count("three little words") == 3
    first.close()
    second = ExactCounter(count, "words", cache_dir=tmp_path)
    assert second.count("three little words") == 3
    assert calls == ["three little words"]  # the second count came from the file
    second.close()

    parses = ParseCache(tmp_path)
    key = ParseCache.key("ab" * 32, "pdf", 4000, True)
    parses.put(key, {"status": "ok", "pages": 3, "text": ["é", "ü"]})
    parses.close()
    assert ParseCache(tmp_path).get(key) == {"status": "ok", "pages": 3, "text": ["é", "ü"]}
    assert ParseCache(None).get(key) is None
