"""Give memory that Python has freed back to the operating system, after large transient work.

Reading, counting, sending and checking a million-token corpus each build and drop tens of
megabytes of strings and lists. Python frees them, but glibc's allocator keeps the freed pages in
its arenas (one per thread that allocated, and worker threads do most of this work) and returns
only the top of each heap by itself, so the process's resident size stays at its high-water
mark. ``trim`` asks glibc to return every free page (``malloc_trim(0)``). It changes nothing of
what is held, only what the system counts against the process: a complement to holding less,
never a substitute for it. Elsewhere (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_TRIM: list[Callable[[int], int] | None] = []


def _malloc_trim() -> Callable[[int], int] | None:
    with _LOCK:
        if not _TRIM:
            found: Callable[[int], int] | None = None
            if sys.platform.startswith("linux"):
                try:
                    # The process's own symbols (libc among them): ctypes.util.find_library
                    # would start ldconfig and gcc to find the file, seconds on a busy machine.
                    found = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
                except OSError:
                    found = None
            _TRIM.append(found)
        return _TRIM[0]


def trim() -> bool:
    """Return the allocator's free pages to the system; True when it could (glibc).

    Takes a few milliseconds on a heap of a few hundred megabytes: call it from a worker
    thread at the end of a large job, not from the GUI thread.
    """
    fn = _malloc_trim()
    if fn is None:
        return False
    try:
        fn(0)
    except OSError:  # pragma: no cover - a libc without it was ruled out above
        log.exception("malloc_trim failed")
        return False
    return True
