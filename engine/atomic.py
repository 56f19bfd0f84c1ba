"""Crash-safe file replacement, the one writer of the whole program: temporary file, fsync,
rename, fsync the folder.

Model snapshots, the assembled default model, settings, sessions and exports all go through
here; it sits at the engine's top so that every layer above can use it. A crash or a full
disk at any point leaves either the previous file or the new one under the final name, never a
torn mix; a leftover temporary file (``.NAME.*.tmp``) is garbage that ``remove_stale_temps``
clears.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else (e.g. llama.cpp) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """A fresh, unique temporary name next to ``path`` (same file system, so rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_produce(path: Path, produce: Callable[[Path], None]) -> None:
    """Let ``produce`` write a temporary file, then move it over ``path`` durably.

    Args:
        path: the final name.
        produce: writes the complete content to the path it is given (it may be C code that
            opens the file itself); raises on failure.

    Raises:
        OSError: the write, flush or rename failed; ``path`` is untouched and the temporary
            file removed.
    """
    tmp = temp_path_for(path)
    try:
        produce(tmp)
        fsync_file(tmp)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_produce``)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()

    atomic_produce(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically.

    Raises:
        OSError: the write failed; the previous file (if any) is untouched.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: Path) -> int:
    """Delete temporary files left by a crash; returns how many were removed."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed += 1
    return removed
