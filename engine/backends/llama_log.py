"""Route llama.cpp's C-level log into Python logging instead of the terminal.

llama-cpp-python prints some llama.cpp warnings to stderr even with ``verbose=False``; in the
CLI they would mix with the answer's progress lines. Everything goes to the
``longdesk.llama`` logger (DEBUG, or WARNING and ERROR for those levels) and the last error
lines are kept to explain a failed load.
"""

from __future__ import annotations

import collections
import ctypes
import logging
from typing import Any

log = logging.getLogger("longdesk.llama")
_LEVELS = {0: logging.CRITICAL, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.DEBUG}
recent_errors: collections.deque[str] = collections.deque(maxlen=20)
_installed: Any = None


def install() -> None:
    """Install the callback once per process (idempotent)."""
    global _installed
    if _installed is not None:
        return
    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        if not line:
            return
        py_level = _LEVELS.get(level, logging.DEBUG)
        if py_level >= logging.ERROR:
            recent_errors.append(line)
        log.log(py_level if py_level >= logging.ERROR else logging.DEBUG, "%s", line)

    _installed = _callback
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


class captured_stderr:
    """Capture what C code writes to file descriptor 2 while llama.cpp builds a model or context.

    Some llama.cpp warnings bypass the log callback. The captured text goes to the logger and
    is kept in ``text`` so that a failed load can say why.
    """

    def __init__(self) -> None:
        self.text = ""
        self._saved = -1
        self._tmp: Any = None

    def __enter__(self) -> captured_stderr:
        import os
        import sys
        import tempfile

        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", errors="replace")
        self._tmp.close()
        for line in self.text.splitlines():
            if line.strip():
                log.debug("%s", line)
