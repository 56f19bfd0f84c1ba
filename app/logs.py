"""Logging: rotating files in the user's log folder, one for the window and the CLI, one for the worker.

``configure`` runs once in each entry point: ``longdesk`` with no command and the CLI write
``longdesk.log``; the resident worker (``app.resident``), a process that outlives the CLI runs
it serves, writes ``worker.log`` beside it, so that two processes never rotate one file.
Every module logs through ``logging.getLogger(__name__)``; the file keeps INFO and
above with the thread name and full tracebacks. ``faulthandler`` writes a native crash's Python
stacks to ``crash.log`` beside it, so a segfault in llama.cpp or Qt leaves a trace.

A caught failure that the user sees goes through ``report``: it is logged with its traceback
under a short id, and the message shown carries that id (``internal error 3f9c2a1b``), so the
entry can be found (Help ▸ Show log; "Copy diagnostics" puts the facts a bug report needs on
the clipboard, with the worker log's last lines when there is one).
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import platform
import sys
import uuid
from pathlib import Path
from typing import IO

LOG_FILE = "longdesk.log"
WORKER_LOG_FILE = "worker.log"
CRASH_FILE = "crash.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"

log = logging.getLogger("longdesk")
_state: dict[str, object] = {}  # the configured file and the crash file kept open for faulthandler


def configure(folder: Path, *, name: str = LOG_FILE, level: int = logging.INFO) -> Path:
    """Send the ``longdesk`` loggers to the rotating file ``name`` in ``folder``; turn faulthandler on.

    Safe to call again (a second call with another folder or name moves the log there). A folder
    that cannot be written leaves logging to stderr (warnings and above) rather than failing.

    Returns:
        The log file's path.
    """
    path = folder / name
    if _state.get("path") == path:
        return path
    shutdown()
    handler: logging.Handler
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
        crash: IO[str] | None = (folder / CRASH_FILE).open("a", encoding="utf-8")
    except OSError as exc:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        crash = None
        sys.stderr.write(f"longdesk: cannot write the log in {folder}: {exc.strerror or exc}\n")
    handler.setFormatter(logging.Formatter(_FORMAT))
    log.addHandler(handler)
    log.setLevel(level)
    if crash is not None:
        faulthandler.enable(file=crash, all_threads=True)
    _state.update(path=path, handler=handler, crash=crash)
    log.info("Longdesk %s started: %s", _version(), " ".join(sys.argv))
    return path


def shutdown() -> None:
    """Stop writing the log file and turn faulthandler off (tests; the end of a process)."""
    handler = _state.pop("handler", None)
    if isinstance(handler, logging.Handler):
        log.removeHandler(handler)
        handler.close()
    crash = _state.pop("crash", None)
    if crash is not None:
        faulthandler.disable()
        crash.close()  # type: ignore[attr-defined]
    _state.pop("path", None)


def log_file() -> Path | None:
    """The file the log goes to, or None before ``configure``."""
    path = _state.get("path")
    return path if isinstance(path, Path) else None


def report(message: str, exc: BaseException | None = None, *, logger: logging.Logger = log) -> str:
    """Log a caught failure with its traceback under a new id; returns the id.

    Args:
        message: what failed, in words.
        exc: the exception (its traceback goes into the log); None for a failure without one.
    """
    failure_id = uuid.uuid4().hex[:8]
    logger.error("[%s] %s", failure_id, message, exc_info=exc)
    return failure_id


def internal_error(what: str, exc: BaseException, *, logger: logging.Logger = log) -> str:
    """The one-line message a user sees for an unexpected exception, naming its log entry.

    ``Internal error 3f9c2a1b while reading: KeyError: 'x' (details in the log: Help ▸ Show log)``.
    """
    failure_id = report(f"internal error while {what}", exc, logger=logger)
    text = str(exc).splitlines()[0] if str(exc) else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"Internal error {failure_id} while {what}: {detail} (details in the log: Help ▸ Show log)"


def diagnostics(extra: dict[str, str] | None = None, *, tail_lines: int = 40) -> str:
    """The facts a bug report needs, as plain text: versions, platform, log file, its last lines."""
    lines = [
        f"Longdesk {_version()}",
        f"Python {platform.python_version()} ({sys.executable})",
        f"Platform {platform.platform()} {platform.machine()}",
    ]
    for name in ("llama_cpp_python", "gguf", "PySide6-Essentials", "openai", "pymupdf"):
        lines.append(f"{name} {_dist_version(name)}")
    lines += [f"{k} {v}" for k, v in (extra or {}).items()]
    path = log_file()
    lines.append(f"Log {path if path is not None else '(not configured)'}")
    files = [("log", path)] if path is not None else []
    worker = path.with_name(WORKER_LOG_FILE) if path is not None else None
    if worker is not None and worker != path and worker.is_file():  # the resident worker's, beside it
        lines.append(f"Worker log {worker}")
        files.append(("worker log", worker))
    for what, file in files:
        if file.is_file():
            tail = _tail(file, tail_lines)
            lines += ["", f"Last {len(tail)} {what} lines:", *tail]
    return "\n".join(lines) + "\n"


def _tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []


def _version() -> str:
    return _dist_version("longdesk")


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(not installed)"
