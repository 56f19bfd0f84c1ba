"""On-disk caches: one size-bounded key-value store, and the parse cache built on it.

``KeyValueCache`` is a SQLite file of ``key -> bytes`` with a byte budget: when the values pass
it, the least recently used entries go (recency is a counter stored with each entry, not a
clock). Storage errors make it a no-op, never a failure: a cache that cannot be opened or is
damaged only costs the work it would have saved. Values are plain bytes; callers encode them
(never pickle: the cache folder is user-writable). The token-count cache
(``engine.context.tokens``) and the parse cache below use it.

The parse cache keeps isolated parses (and the segments of long text files) by content hash,
so unchanged sources are free. Keys are the sha256 of the source bytes plus everything that
changes the result (parser version, format, options); values are zlib-compressed MessagePack
of the plain data the child (or the text reader) returned, its segments as columns.
"""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

# Part of every parse key: raise it whenever any parser's output changes, the in-process text
# formats' (``engine.corpus.formats``, ``engine.corpus.verses``) included, whose long files are
# cached too. 2: repaired PDFs said to be damaged; 3: one-flow books cut at their TOC;
# 4: values are MessagePack, segments kept as columns.
PARSER_VERSION = 4
PARSE_BUDGET_BYTES = 1 << 30
_COMMIT_EVERY = 256  # puts between commits (``flush`` commits at once)
_EVICT_TO = 0.9  # an eviction frees space down to this share of the budget


class KeyValueCache:
    """``key -> bytes`` in one SQLite file, at most ``budget_bytes`` of values, least recently used out.

    Args:
        path: the database file (its folder is made); None keeps nothing.
        budget_bytes: the most value bytes kept.
        replaces: older files of this cache (other schemas) to delete when this one opens.
    """

    def __init__(self, path: Path | None, budget_bytes: int, *, replaces: Sequence[str] = ()) -> None:
        self.budget_bytes = budget_bytes
        self._db: sqlite3.Connection | None = None
        self._size = 0
        self._tick = 0
        self._pending = 0
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for name in replaces:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        (path.parent / (name + suffix)).unlink()
            db = sqlite3.connect(path, timeout=5)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, used INTEGER NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS entries_used ON entries (used)")
            db.commit()
            size, tick = db.execute(
                "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(used), 0) FROM entries"
            ).fetchone()
            self._db, self._size, self._tick = db, int(size), int(tick)
        except sqlite3.Error:
            self._db = None

    @property
    def size_bytes(self) -> int:
        """Bytes of values held (as this instance knows them)."""
        return self._size

    def get(self, key: str) -> bytes | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            self._tick += 1
            self._db.execute("UPDATE entries SET used = ? WHERE key = ?", (self._tick, key))
            self._wrote()
        except sqlite3.Error:
            return None
        return bytes(row[0])

    def has(self, key: str) -> bool:
        """Whether ``key`` is held (its value is not read, its recency not changed)."""
        if self._db is None:
            return False
        try:
            return self._db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None
        except sqlite3.Error:
            return False

    def put(self, key: str, value: bytes) -> None:
        """Keep ``value`` under ``key``; a value larger than the whole budget is not kept."""
        if self._db is None or len(value) > self.budget_bytes:
            return
        try:
            old = self._db.execute("SELECT size FROM entries WHERE key = ?", (key,)).fetchone()
            self._tick += 1
            self._db.execute(
                "INSERT OR REPLACE INTO entries (key, value, size, used) VALUES (?, ?, ?, ?)",
                (key, value, len(value), self._tick),
            )
            self._size += len(value) - (int(old[0]) if old else 0)
            if self._size > self.budget_bytes:
                self._evict()
            self._wrote()
        except sqlite3.Error:
            return

    def _evict(self) -> None:
        """Delete the least recently used entries until the values fit ``_EVICT_TO`` of the budget."""
        assert self._db is not None
        goal = int(self.budget_bytes * _EVICT_TO)
        rows = self._db.execute("SELECT key, size FROM entries ORDER BY used").fetchall()
        doomed = []
        for key, size in rows:
            if self._size <= goal:
                break
            doomed.append((key,))
            self._size -= int(size)
        self._db.executemany("DELETE FROM entries WHERE key = ?", doomed)

    def _wrote(self) -> None:
        self._pending += 1
        if self._pending >= _COMMIT_EVERY:
            self.flush()

    def flush(self) -> None:
        """Commit what was written (other processes see it from now on)."""
        if self._db is not None:
            self._pending = 0
            with contextlib.suppress(sqlite3.Error):
                self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            with contextlib.suppress(sqlite3.Error):  # e.g. closed from another thread
                self._db.close()
            self._db = None


# MessagePack through msgspec: segments are kept as columns (``SegmentTable.columns``), one
# string and a few byte strings, which decode in a couple of milliseconds. Rows as JSON held
# the decoding thread, and with it the GIL and the window's thread, ~35 ms for a Bible.
_DECODE = msgspec.msgpack.Decoder().decode
_ENCODE = msgspec.msgpack.Encoder().encode


class ParseCache:
    """Content-addressed parse results; every method swallows storage errors."""

    def __init__(self, folder: Path | None, budget_bytes: int = PARSE_BUDGET_BYTES) -> None:
        path = folder / f"parse-v{PARSER_VERSION}-kv.sqlite" if folder is not None else None
        # Files of earlier parser versions hold nothing this version reads: removed, not kept
        # beside it until the disk fills (each may be up to the budget).
        older = [f"parse-v{v}-kv.sqlite" for v in range(1, PARSER_VERSION)]
        older += [f"parse-v{v}.sqlite" for v in range(1, PARSER_VERSION + 1)]
        self._kv = KeyValueCache(path, budget_bytes, replaces=older)

    @staticmethod
    def key(sha256: str, *parts: object) -> str:
        return ":".join([sha256, str(PARSER_VERSION), *map(str, parts)])

    def has(self, key: str) -> bool:
        return self._kv.has(key)

    def get(self, key: str) -> dict[str, Any] | None:
        blob = self._kv.get(key)
        if blob is None:
            return None
        try:
            value = _DECODE(zlib.decompress(blob))  # zlib lets go of the GIL; msgspec is quick
        except (zlib.error, ValueError, msgspec.DecodeError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            blob = zlib.compress(_ENCODE(value), 3)
        except (TypeError, ValueError, msgspec.EncodeError):
            return
        self._kv.put(key, blob)
        self._kv.flush()  # a parse is expensive: visible to the next process at once

    def close(self) -> None:
        self._kv.close()
