"""Run a function in a child process with a wall-clock and a memory limit (architecture §4).

Untrusted parsing (PDF, EPUB and the other pymupdf formats) runs here so that a hostile or
broken file costs one document, never the app: a hang is stopped at the wall-clock limit, an
allocation past the memory limit fails in the child, and a native crash kills only the child.

Design:
    * The child is ``python -m longdesk.engine.isolation``, started with :mod:`subprocess` (no fork of a
      process that may hold threads or a Qt event loop, and no re-import of ``__main__`` as
      multiprocessing's ``spawn`` would do).
    * A :class:`Sandbox` keeps one child for many calls (start-up and ``preload`` imports are paid
      once) and starts a fresh one after any failure, so one bad file never poisons the next.
    * Requests go parent → child as pickles (trusted direction). Answers come back through a
      restricted unpickler that refuses every global unless the caller allowed its type: a
      child taken over by a hostile file cannot make the parent run code.
    * Memory: ``RLIMIT_AS`` = the child's address space after start-up and preloading plus
      ``Limits.memory_bytes``. Linux enforces it; macOS does not (the wall clock still holds).
    * The function is named by module and qualified name, so it must be importable (defined at
      module level); the parent's ``sys.path`` is handed to the child.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

T = TypeVar("T")

_HEADER = struct.Struct("<Q")
_POLL_S = 0.05
_BOOT_S = 60.0  # start-up of a child (Python, preloads), on top of a call's own limit
_MAX_FRAME = 1 << 32  # 4 GiB: anything larger from a child is a protocol error
_MEMORY_HINTS = ("out of memory", "cannot allocate", "malloc", "memoryerror")
# The child puts the parent's import roots first (``-I`` drops the environment and the cwd).
_CHILD_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1:]; "
    "from longdesk.engine.isolation import _child_main; _child_main()"
)


def _import_roots() -> list[str]:
    return [p for p in sys.path if p and Path(p).is_dir()]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one call may take.

    Attributes:
        wall_s: wall-clock seconds for the call (start-up of a fresh child not included).
        memory_bytes: address space the call may add on top of the child's start-up size.
    """

    wall_s: float = 60.0
    memory_bytes: int = 1 << 30


class IsolationError(Exception):
    """A call that did not return a value; ``message`` is for users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Timeout(IsolationError):
    """The call ran past ``Limits.wall_s`` and the child was stopped."""


class MemoryLimit(IsolationError):
    """The call needed more memory than ``Limits.memory_bytes``."""


class Crashed(IsolationError):
    """The child died (a signal such as SIGSEGV, or an unexpected exit)."""

    def __init__(self, message: str, *, signal_number: int | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_code = exit_code


class Raised(IsolationError):
    """The function raised; ``error_type`` is the exception's class name in the child."""

    def __init__(self, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


class Cancelled(IsolationError):
    """The caller cancelled; the child was stopped."""


class _SafeUnpickler(pickle.Unpickler):
    """Plain data only, plus the types the caller named."""

    def __init__(self, data: bytes, allowed: frozenset[tuple[str, str]]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused type {module}.{name} from the child process")


def _write_frame(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Sandbox:
    """One reusable child process that runs named functions under limits.

    Not thread-safe: one caller at a time (the corpus loader owns one per load).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        preload: Iterable[str] = (),
        allowed_types: Iterable[type] = (),
    ) -> None:
        """Args:
        limits: default limits for every call.
        preload: modules the child imports before its memory limit is set (e.g. ``pymupdf``).
        allowed_types: classes that answers may contain besides plain data.
        """
        self.limits = limits or Limits()
        self.preload = tuple(preload)
        self._allowed = frozenset((t.__module__, t.__qualname__) for t in allowed_types)
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = bytearray()
        self._ready = False
        self.starts = 0  # how many children were started (for tests and benchmarks)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (politely: closing its input ends its loop)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def start(self) -> None:
        """Start the child now (it boots while the caller does other work); calls reuse it."""
        try:
            self._start()
        except OSError:
            self._kill()  # the next call reports the failure

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._kill()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD_BOOT, *_import_roots()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the parent, which decides
        )
        assert proc.stdin is not None
        self._buffer.clear()
        self._ready = False
        self._proc = proc
        self.starts += 1
        _write_frame(proc.stdin, (self.preload, self.limits.memory_bytes))
        return proc

    # ------------------------------------------------------------------ calls
    def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        limits: Limits | None = None,
        on_progress: Callable[[Any], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` in the child and return its value.

        Args:
            fn: a module-level function (named by module and qualified name in the child).
            limits: this call's limits (default: the sandbox's). The memory limit of a running
                child is the one it was started with.
            on_progress: when given, ``fn`` also gets ``report=`` and each ``report(value)``
                in the child calls ``on_progress(value)`` here.
            cancelled: polled about every 50 ms; when it returns True the child is stopped.

        Raises:
            Timeout, MemoryLimit, Crashed, Raised, Cancelled: the call gave no value.
        """
        module, name = fn.__module__, fn.__qualname__
        if module == "__main__" or "<locals>" in name:
            raise ValueError(f"{name} must be a module-level function of an importable module")
        limit = limits or self.limits
        try:
            proc = self._start()
            assert proc.stdin is not None
            _write_frame(proc.stdin, (module, name, args, kwargs, on_progress is not None))
        except OSError as exc:
            self._kill()
            raise Crashed(f"the parser process could not be started: {exc}") from exc
        deadline = time.monotonic() + limit.wall_s + (0.0 if self._ready else _BOOT_S)
        while True:
            frame = self._read_frame(proc, deadline, limit.wall_s, cancelled)
            tag = frame[0] if isinstance(frame, tuple) and frame else None
            if tag == "ready" and not self._ready:
                self._ready = True  # the call's own clock starts now
                deadline = time.monotonic() + limit.wall_s
                continue
            if tag == "progress" and len(frame) == 2:
                if on_progress is not None:
                    on_progress(frame[1])
                continue
            if tag == "ok" and len(frame) == 2:
                value: T = frame[1]
                return value
            self._kill()
            if tag == "error" and len(frame) == 4:
                _tag, kind, error_type, message = frame
                text = str(message)[:2000]
                if kind == "memory":
                    raise MemoryLimit(f"ran out of memory (limit {limit.memory_bytes / 2**20:,.0f} MiB)")
                raise Raised(text, str(error_type))
            raise Raised("the parser process answered something unexpected", "ProtocolError")

    def _read_frame(
        self,
        proc: subprocess.Popen[bytes],
        deadline: float,
        wall_s: float,
        cancelled: Callable[[], bool] | None,
    ) -> Any:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            if len(self._buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._buffer)
                if size > _MAX_FRAME:
                    self._kill()
                    raise Raised("the parser process sent an oversized answer", "ProtocolError")
                if len(self._buffer) >= _HEADER.size + size:
                    data = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
                    del self._buffer[: _HEADER.size + size]
                    try:
                        return _SafeUnpickler(data, self._allowed).load()
                    except Exception as exc:
                        self._kill()
                        raise Raised(f"the parser process sent an unreadable answer: {exc}") from exc
            now = time.monotonic()
            if cancelled is not None and cancelled():
                self._kill()
                raise Cancelled("cancelled")
            if now >= deadline:
                self._kill()
                raise Timeout(f"took longer than {wall_s:g} s")
            ready, _, _ = select.select([fd], [], [], min(_POLL_S, deadline - now))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if chunk:
                self._buffer += chunk
                continue
            code = proc.wait()
            self._proc = None
            if code < 0:
                name = _signal_name(-code)
                hint = " (out of memory?)" if -code == signal.SIGKILL else ""
                raise Crashed(f"the parser crashed ({name}){hint}", signal_number=-code)
            raise Crashed(f"the parser exited unexpectedly (code {code})", exit_code=code)


def run_isolated(
    fn: Callable[..., T], *args: Any, limits: Limits | None = None, preload: Iterable[str] = (), **kwargs: Any
) -> T:
    """One call in a fresh child that is stopped afterwards (see :meth:`Sandbox.call`)."""
    with Sandbox(limits, preload=preload) as sandbox:
        return sandbox.call(fn, *args, **kwargs)


# ---------------------------------------------------------------------- the child side
def _address_space() -> int:
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(extra: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    base = _address_space()
    if base and extra > 0:
        limit = base + extra
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _child_main() -> None:
    # The protocol owns the original stdout; anything printed (by us or native code) goes to
    # stderr, which the parent discards.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    head = _read_exact(inp, _HEADER.size)
    if head is None:
        return
    preload, memory_bytes = pickle.loads(_read_exact(inp, _HEADER.unpack(head)[0]) or b"")
    import importlib

    for module in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _limit_memory(int(memory_bytes))
    _write_frame(out, ("ready",))

    def report(value: object) -> None:
        _write_frame(out, ("progress", value))

    while True:
        head = _read_exact(inp, _HEADER.size)
        if head is None:
            return
        body = _read_exact(inp, _HEADER.unpack(head)[0])
        if body is None:
            return
        try:
            module, name, args, kwargs, wants_progress = pickle.loads(body)
            target: Any = importlib.import_module(module)
            for part in name.split("."):
                target = getattr(target, part)
            if wants_progress:
                kwargs = {**kwargs, "report": report}
            answer: tuple[object, ...] = ("ok", target(*args, **kwargs))
        except MemoryError:
            answer = ("error", "memory", "MemoryError", "out of memory")
        except BaseException as exc:  # noqa: BLE001 - every failure goes back as a value
            text = f"{exc}" or type(exc).__name__
            kind = "memory" if any(h in text.lower() for h in _MEMORY_HINTS) else "error"
            if os.environ.get("LONGDESK_ISOLATION_TRACEBACK"):
                text += "\n" + traceback.format_exc()
            answer = ("error", kind, type(exc).__name__, text)
        try:
            _write_frame(out, answer)
        except MemoryError:
            _write_frame(out, ("error", "memory", "MemoryError", "out of memory"))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _write_frame(out, ("error", "error", type(exc).__name__, f"answer cannot be sent: {exc}"))
