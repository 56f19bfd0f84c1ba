"""Crash-safe writes of the app's files (settings, sessions, exports).

One mechanism for the whole program: a temporary file next to the target, fsync, rename over
the old one, fsync of the folder (``engine.snapshots.atomic``, also used for model snapshots).
A crash or a full disk at any point leaves the previous file or the new one, never a mix.
"""

from __future__ import annotations

from pathlib import Path

from longdesk.engine.snapshots.atomic import atomic_write_bytes

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically.

    Raises:
        OSError: the write failed; the previous file (if any) is untouched.
    """
    atomic_write_bytes(path, text.encode("utf-8"))
