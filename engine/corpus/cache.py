"""The on-disk parse cache: isolated parses kept by content hash, so unchanged sources are free.

One SQLite file (``parse-v1.sqlite`` in the cache folder the app passes). Keys are the sha256 of
the source bytes plus everything that changes the result (parser version, options); values are
zlib-compressed JSON of the plain data the child returned (never pickle: the cache folder is
user-writable). A damaged cache is ignored and rebuilt, never a failure.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

PARSER_VERSION = 3  # 2: repaired PDFs said to be damaged; 3: one-flow books cut at their TOC


class ParseCache:
    """Content-addressed parse results; every method swallows storage errors."""

    def __init__(self, folder: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(folder / f"parse-v{PARSER_VERSION}.sqlite", timeout=5)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS parsed (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            db.commit()
            self._db = db
        except sqlite3.Error:
            self._db = None

    @staticmethod
    def key(sha256: str, *parts: object) -> str:
        return ":".join([sha256, str(PARSER_VERSION), *map(str, parts)])

    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT value FROM parsed WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value = json.loads(zlib.decompress(row[0]))
        except (sqlite3.Error, zlib.error, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self._db is None:
            return
        try:
            blob = zlib.compress(json.dumps(value, ensure_ascii=False).encode("utf-8"), 3)
            self._db.execute("INSERT OR REPLACE INTO parsed (key, value) VALUES (?, ?)", (key, blob))
            self._db.commit()
        except (sqlite3.Error, ValueError):
            pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
