"""The resident worker: a local model kept loaded between `longdesk ask` runs.

A fresh process pays for imports, the model load, the context allocation and a snapshot
restore before it can answer (about 2 s for the 270M default model at 32K tokens; tens of
seconds for a large model). The first `longdesk ask` therefore starts a worker process that
owns the model (one thread, as everywhere in Longdesk) and serves later runs over a Unix
socket; it keeps the corpus state in the context between runs, so a second question on the
same corpus only evaluates the question. It exits after ``keep_alive`` seconds without a
request (``LONGDESK_KEEP_ALIVE``, default 300; 0 turns the worker off and `ask` runs in its
own process), on `longdesk worker stop`, or when its socket is removed.

Three things run apart from the window's thread and are named apart: this resident process
(``longdesk worker`` to users), the engine thread that owns a backend in the window
(``ui.workers.engine_worker``) and the sandbox child that parses untrusted files
(``engine.isolation.Sandbox``).

Transport: a Unix stream socket (mode 0600) in a per-user folder (mode 0700), so only this
user can connect; a lock file beside it makes one worker per Longdesk home. Messages are JSON
objects (msgspec), each in one length-prefixed frame of ``multiprocessing.connection``
(``send_bytes``/``recv_bytes``; nothing is pickled, and a plan of any size arrives whole). The
worker listens on a plain socket, because it needs an accept timeout (the idle exit) and must
remove only its own socket file, which ``Listener`` does not offer; each accepted socket is
wrapped in a ``Connection``, and clients connect with ``Client``. There is no authkey: the
folder's and socket's modes already admit this user alone, and a key in a file beside the
socket would admit exactly the same processes.

Protocol: a client sends ``open`` (model and load settings; the worker loads or keeps the
model), then ``read`` (the plan) and ``ask``; the worker streams the backend's events and ends
each request with one ``reading``, ``result`` or ``error`` message. Each request has one
handler (``_Resident.handlers``); an unknown one is answered with an error, a malformed one is
refused and the worker serves on. ``cancel`` is taken by a reader thread and sets the
backend's cancel flag; a client that disappears cancels too. One client at a time; others
wait their turn.

The worker logs to its own rotating file, ``worker.log`` in the user's log folder
(``app.logs``), beside the window's and the CLI's ``longdesk.log``.

Every connection a client makes to start work begins with ``hello``, carrying the installed
Longdesk's identity (``installed_version``: the distribution's version and a hash of its
installed file list, so a reinstall of changed code counts too). A worker of another
installation answers, then stops, and the client starts a fresh one: an upgrade never talks
to a worker that still runs the old code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import logging
import os
import queue
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from longdesk.app.wire import WireError, from_wire, to_wire
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    BackendInfo,
    CancelCheck,
    Event,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    ThinkingDelta,
    ThinkingMode,
    Turn,
    Usage,
)
from longdesk.engine.context.plan import ContextPlan

_log = logging.getLogger(__name__)

if TYPE_CHECKING:  # numpy and llama.cpp load only in the worker process, when a model opens
    from longdesk.engine.backends.base import Backend
    from longdesk.engine.backends.local import LocalBackend, LocalSettings

    ModelFactory = Callable[[Path, LocalSettings], LocalBackend]

KEEP_ALIVE_ENV = "LONGDESK_KEEP_ALIVE"
DEFAULT_KEEP_ALIVE_S = 300.0
_START_WAIT_S = 20.0
_MAX_MESSAGE = 1 << 30  # a frame that claims more is not ours (a 1M-token plan is ~10 MB)
_EVENTS: dict[str, type[Event]] = {
    c.__name__: c for c in (Progress, ThinkingDelta, AnswerDelta, Usage, Finished, Failed)
}


class ResidentUnavailable(Exception):
    """No worker can serve here (no Unix sockets, unsafe folder, could not start one)."""


def keep_alive_s() -> float:
    """Seconds an idle worker stays; 0 when the environment turns the worker off."""
    raw = os.environ.get(KEEP_ALIVE_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_KEEP_ALIVE_S
    except ValueError:
        return DEFAULT_KEEP_ALIVE_S


def installed_version() -> str:
    """This installation's identity: ``VERSION+HASH`` of the installed files (``?`` when unknown)."""
    from importlib import metadata

    # The installed distribution (with its RECORD), not a source tree's egg-info on sys.path.
    found = sorted(metadata.distributions(name="longdesk"), key=lambda d: d.read_text("RECORD") is None)
    if not found:
        return "?"
    record = found[0].read_text("RECORD") or ""
    return f"{found[0].version}+{hashlib.sha256(record.encode()).hexdigest()[:12]}"


def supported() -> bool:
    return hasattr(socket, "AF_UNIX") and hasattr(os, "getuid")


def socket_path(home: Path) -> Path:
    """The worker's socket for ``home``: short (Unix sockets allow ~100 bytes), per user.

    Raises:
        ResidentUnavailable: the per-user folder is not ours or is open to others.
    """
    folder = Path(tempfile.gettempdir()) / f"longdesk-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ResidentUnavailable(f"{folder} is not a private folder of this user")
    name = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return folder / f"{name}.sock"


# ---------------------------------------------------------------------------- wire format
def _send(chan: Connection, message: dict[str, Any]) -> None:
    """One message: JSON bytes in one ``multiprocessing.connection`` frame (length first)."""
    chan.send_bytes(msgspec.json.encode(message))


def _recv(chan: Connection) -> dict[str, Any] | None:
    """The next message, waiting as long as it takes; None when the peer closed or spoke garbage."""
    try:
        data = chan.recv_bytes(_MAX_MESSAGE)
        message = msgspec.json.decode(data)
    except (EOFError, OSError, msgspec.DecodeError):
        return None  # gone, a frame over the limit, or not our protocol: treat the peer as gone
    return message if isinstance(message, dict) else None


def _recv_within(chan: Connection, timeout: float) -> dict[str, Any] | None:
    """The next message if one starts within ``timeout`` seconds, else None (as for a closed peer)."""
    try:
        ready = chan.poll(timeout)
    except (EOFError, OSError):
        return None
    return _recv(chan) if ready else None


def encode_event(ev: Event) -> dict[str, Any]:
    return {"t": "event", "type": type(ev).__name__, "event": to_wire(ev)}


def decode_event(msg: dict[str, Any]) -> Event:
    """The event a message carries.

    Raises:
        WireError: an unknown event type, or fields of the wrong type.
    """
    kind = _EVENTS.get(str(msg.get("type")))
    if kind is None:
        raise WireError(f"unknown event {msg.get('type')!r}")
    event: Event = from_wire(msg.get("event"), kind)
    return event


def _error(exc: BackendError) -> dict[str, Any]:
    return {"t": "error", "kind": exc.kind.value, "message": exc.message}


# ---------------------------------------------------------------------------- the worker
class _Session:
    """One client's connection as the worker sees it: its channel, its cancel flag, its reading."""

    def __init__(self, chan: Connection) -> None:
        self.chan = chan
        self.cancel = threading.Event()
        self.reading: Reading | None = None

    def send(self, message: dict[str, Any]) -> None:
        _send(self.chan, message)


# A handler serves one request; it returns False when the connection ends after it.
_Handler = Callable[[_Session, dict[str, Any]], bool]


def _unexpected(op: object) -> dict[str, Any]:
    return {"t": "error", "kind": "internal", "message": f"unexpected request {op!r}"}


class _Resident:
    """Owns at most one LocalBackend; serves one connection at a time on its own thread."""

    def __init__(self, keep_alive: float, factory: ModelFactory | None = None) -> None:
        self.keep_alive = keep_alive
        self.factory = factory
        self.version = installed_version()
        self.backend: LocalBackend | None = None
        self.identity: tuple[object, ...] = ()
        self.stop = False
        self.handlers: dict[str, _Handler] = {
            "hello": self.on_hello,
            "ping": self.on_ping,
            "stop": self.on_stop,
            "open": self.on_open,
            "read": self.on_read,
            "ask": self.on_ask,
            "count": self.on_count,
            "done": self.on_done,
        }

    def serve(self, listener: socket.socket, path: Path) -> None:
        while not self.stop:
            listener.settimeout(self.keep_alive)
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                return  # idle for keep_alive seconds
            if not path.exists():
                sock.close()
                return  # someone removed the socket: this worker is retired
            sock.setblocking(True)
            chan = Connection(os.dup(sock.fileno()))  # the frames; ``sock`` stays to hang up on
            try:
                self.handle(chan, sock)
            finally:
                chan.close()
                sock.close()
            self.rewind()

    def handle(self, chan: Connection, sock: socket.socket) -> None:
        """Run a client's requests in order; a reader thread turns cancel and hang-up into the flag."""
        session = _Session(chan)
        requests: queue.Queue[dict[str, Any] | None] = queue.Queue()

        def reader() -> None:
            while (msg := _recv(chan)) is not None:
                if msg.get("op") == "cancel":
                    session.cancel.set()
                else:
                    if msg.get("op") in ("read", "ask"):
                        session.cancel.clear()  # here, in arrival order: a cancel right after it still counts
                    requests.put(msg)
            session.cancel.set()  # the client went away: stop what it asked for
            requests.put(None)

        thread = threading.Thread(target=reader, name="longdesk-worker-reader", daemon=True)
        thread.start()
        try:
            while (msg := requests.get()) is not None and self.dispatch(session, msg):
                pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader: it must not outlive the descriptor
            thread.join()

    def dispatch(self, session: _Session, msg: dict[str, Any]) -> bool:
        """Serve one request; False when the connection ends (the client left, or said goodbye)."""
        op = msg.get("op")
        handler = self.handlers.get(op) if isinstance(op, str) else None
        try:
            if handler is None:
                session.send(_unexpected(op))
                return True
            return handler(session, msg)
        except OSError:
            return False  # the client is gone
        except (KeyError, TypeError, ValueError) as exc:  # a malformed request: refuse it, serve on
            _log.warning("refused a bad %r request", op, exc_info=True)
            with contextlib.suppress(OSError):
                session.send({"t": "error", "kind": "internal", "message": f"bad {op!r} request: {exc!r}"})
            return True

    # ---------------------------------------------------------------- one handler per request
    def on_hello(self, session: _Session, msg: dict[str, Any]) -> bool:
        session.send({"t": "hello", "version": self.version, "pid": os.getpid()})
        if msg.get("version") != self.version:
            self.stop = True  # another installation's client: make way for its worker
            return False
        return True

    def on_ping(self, session: _Session, msg: dict[str, Any]) -> bool:
        del msg
        model = str(self.identity[0]) if self.identity else ""
        session.send({"t": "pong", "pid": os.getpid(), "model": model})
        return True

    def on_stop(self, session: _Session, msg: dict[str, Any]) -> bool:
        del msg
        self.stop = True
        session.send({"t": "stopping", "pid": os.getpid()})
        return False

    def on_done(self, session: _Session, msg: dict[str, Any]) -> bool:
        del session, msg
        return False

    def on_open(self, session: _Session, msg: dict[str, Any]) -> bool:
        session.send(self.open(msg))
        return True

    def on_read(self, session: _Session, msg: dict[str, Any]) -> bool:
        session.reading = self.read(session, msg)
        return True

    def on_ask(self, session: _Session, msg: dict[str, Any]) -> bool:
        if session.reading is None:
            session.send(_unexpected(msg["op"]))
        else:
            self.ask(session, msg, session.reading)
        return True

    def on_count(self, session: _Session, msg: dict[str, Any]) -> bool:
        if self.backend is None:
            session.send(_unexpected(msg["op"]))
        else:
            session.send({"t": "counted", "tokens": self.backend.count_tokens(str(msg["text"]))})
        return True

    # ---------------------------------------------------------------- the model
    def open(self, msg: dict[str, Any]) -> dict[str, Any]:
        from longdesk.engine.backends.local import LocalBackend, LocalSettings

        factory = self.factory or LocalBackend

        model = Path(msg["model"])
        settings = from_wire(msg["settings"], LocalSettings)
        try:
            st = model.stat()
        except OSError as exc:
            return _error(BackendError(FailureKind.BAD_INPUT, f"cannot open {model}: {exc.strerror}"))
        # A held context at least as large serves a request that needs a smaller one.
        identity = (str(model.resolve()), st.st_size, st.st_mtime_ns, dataclasses.replace(settings, n_ctx=0))
        backend = self.backend
        kept = (
            backend is not None
            and identity == self.identity
            and backend.settings.n_ctx >= min(settings.n_ctx, backend.header.context_length or settings.n_ctx)
        )
        if backend is None or not kept:
            self.close()
            try:
                backend = self.backend = factory(model, settings)
            except BackendError as exc:
                return _error(exc)
            self.identity = identity
        info = backend.describe()
        return {
            "t": "opened",
            "kept": kept,
            "pid": os.getpid(),
            "info": to_wire(info),
        }

    def read(self, session: _Session, msg: dict[str, Any]) -> Reading | None:
        if self.backend is None:
            session.send(_error(BackendError(FailureKind.INTERNAL, "read before open")))
            return None

        def sink(ev: Event) -> None:
            session.send(encode_event(ev))

        try:
            reading = self.backend.read(
                from_wire(msg["plan"], ContextPlan),
                sink,
                session.cancel.is_set,
                thinking=ThinkingMode(msg["thinking"]),
                keep_held=True,
            )
        except BackendError as exc:
            session.send(_error(exc))
            return None
        session.send({"t": "reading", "reading": to_wire(reading)})
        return reading

    def ask(self, session: _Session, msg: dict[str, Any], reading: Reading) -> None:
        if self.backend is None:
            session.send(_error(BackendError(FailureKind.INTERNAL, "ask before open")))
            return

        def sink(ev: Event) -> None:
            session.send(encode_event(ev))

        options = from_wire(msg["options"], AskOptions)
        history = from_wire(msg["history"], tuple[Turn, ...])
        result = self.backend.ask(reading, history, msg["question"], options, sink, session.cancel.is_set)
        session.send({**encode_event(result), "t": "result"})  # Finished or Failed

    def rewind(self) -> None:
        """Between clients, bring the context back to the corpus so the next question starts at once."""
        if self.backend is not None:
            with contextlib.suppress(BackendError):
                self.backend.rewind()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend, self.identity = None, ()


def serve(home: Path, keep_alive: float, factory: ModelFactory | None = None) -> int:
    """Run a worker for ``home`` until it has been idle ``keep_alive`` seconds; 0 when another serves."""
    import fcntl

    path = socket_path(home)
    lock = path.with_suffix(".lock").open("a+b")  # held for the worker's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another worker serves this home
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a worker that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    worker = _Resident(keep_alive, factory)
    ours = -1
    try:
        listener.bind(str(path))
        ours = path.stat().st_ino
        path.chmod(0o600)
        listener.listen(8)
        worker.serve(listener, path)
    finally:
        worker.close()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == ours:  # not a socket a newer worker made after ours was removed
                path.unlink()
        lock.close()
    return 0


# ---------------------------------------------------------------------------- the client
def connect(home: Path, *, start: bool, keep_alive: float, log: Path | None = None) -> Connection:
    """A connection to the worker for ``home``, starting one when ``start`` and none runs.

    Args:
        log: where the started worker's stderr goes (a failure before its own log opens).

    Raises:
        ResidentUnavailable: no worker runs (and ``start`` is False), or one could not start.
    """
    if not supported():
        raise ResidentUnavailable("this system has no Unix sockets")
    path = socket_path(home)
    chan = _try_connect(path)
    if chan is not None and start:
        chan = _same_installation(chan)
    if chan is not None or not start:
        if chan is None:
            raise ResidentUnavailable("no worker is running")
        return chan
    err = subprocess.DEVNULL if log is None else _open_log(log)
    subprocess.Popen(
        [  # -P: the current folder is not put on sys.path (a source tree must not shadow the install)
            sys.executable, "-P", "-m", "longdesk.app.resident", "serve",
            "--home", str(home), "--keep-alive", str(keep_alive),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,  # Ctrl-C in the terminal is for the client, not the worker
        close_fds=True,
    )
    deadline = time.monotonic() + _START_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.02)
        chan = _try_connect(path)
        if chan is not None:
            return chan
    raise ResidentUnavailable(f"the worker did not start within {_START_WAIT_S:.0f} s")


def _same_installation(chan: Connection) -> Connection | None:
    """``chan`` when its worker runs this installation; else None once that worker has gone.

    Raises:
        ResidentUnavailable: the stale worker did not make way in time.
    """
    version = installed_version()
    try:
        _send(chan, {"op": "hello", "version": version})
    except OSError:
        reply = None
    else:
        reply = _recv_within(chan, 30)
    if reply is not None and reply.get("version") == version:
        return chan
    chan.close()
    pid = int(reply.get("pid", 0)) if reply is not None else 0
    deadline = time.monotonic() + _START_WAIT_S
    while pid and time.monotonic() < deadline:  # it stops after its current client: wait for it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            break
        time.sleep(0.02)
    if pid:
        raise ResidentUnavailable(f"the worker of another installation (pid {pid}) did not stop in time")
    return None


def _open_log(log: Path) -> Any:
    log.parent.mkdir(parents=True, exist_ok=True)
    return log.open("ab")


def _try_connect(path: Path) -> Connection | None:
    try:
        return Client(str(path), family="AF_UNIX")
    except OSError:
        return None


def request(home: Path, op: str) -> dict[str, Any] | None:
    """Send one control request (ping, stop) to a running worker; None when none runs."""
    try:
        chan = connect(home, start=False, keep_alive=0)
    except ResidentUnavailable:
        return None
    with chan:
        _send(chan, {"op": op})
        reply = _recv_within(chan, 30)
        if op != "stop":
            with contextlib.suppress(OSError):
                _send(chan, {"op": "done"})
        return reply


class RemoteBackend:
    """The local backend as served by the worker: the CLI's side of the socket.

    A ``Backend``: the worker keeps what it holds between clients, so ``read`` always keeps a
    held prefix (``keep_held`` is implied).
    """

    def __init__(self, chan: Connection, model: Path, settings: LocalSettings) -> None:
        self.path = model
        self._chan = chan
        self._told = False
        _send(chan, {"op": "open", "model": str(model), "settings": to_wire(settings)})
        reply = self._next(lambda: False)
        if reply["t"] == "error":
            self.close()
            raise BackendError(FailureKind(reply["kind"]), reply["message"])
        self._info = from_wire(reply["info"], BackendInfo)
        self.kept = bool(reply["kept"])
        self.pid = int(reply["pid"])

    def describe(self) -> BackendInfo:
        return self._info

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the worker's model.

        Raises:
            BackendError: the worker went away or refused.
        """
        _send(self._chan, {"op": "count", "text": text})
        msg = self._next(lambda: False)
        if msg["t"] != "counted":
            raise BackendError(FailureKind(msg.get("kind", "internal")), str(msg.get("message", msg)))
        return int(msg["tokens"])

    def read(
        self,
        plan: ContextPlan,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        thinking: ThinkingMode = ThinkingMode.OFF,
        keep_held: bool = True,
    ) -> Reading:
        del keep_held  # the worker always keeps what it holds
        self._told = False
        _send(self._chan, {"op": "read", "plan": to_wire(plan), "thinking": thinking.value})
        while True:
            msg = self._next(cancelled)
            if msg["t"] == "event":
                on_event(decode_event(msg))
            elif msg["t"] == "reading":
                return from_wire(msg["reading"], Reading)
            else:
                raise BackendError(FailureKind(msg["kind"]), msg["message"])

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        del reading  # the worker holds its own handle for this connection
        self._told = False
        _send(
            self._chan,
            {
                "op": "ask",
                "history": to_wire(history),
                "question": question,
                "options": to_wire(options),
            },
        )
        while True:
            try:
                msg = self._next(cancelled)
            except BackendError as exc:
                return Failed(exc.kind, exc.message, partial=True)
            if msg["t"] == "event":
                on_event(decode_event(msg))
            elif msg["t"] == "result":
                result = decode_event(msg)
                assert isinstance(result, Finished | Failed)
                return result
            else:
                return Failed(FailureKind(msg["kind"]), msg["message"])

    def _next(self, cancelled: CancelCheck) -> dict[str, Any]:
        """The next message; tells the worker once when ``cancelled`` turns true meanwhile.

        Raises:
            BackendError: the worker went away.
        """
        while True:
            if cancelled() and not self._told:
                self._told = True  # once per request: the worker stops between tokens or chunks
                with contextlib.suppress(OSError):
                    _send(self._chan, {"op": "cancel"})
            try:
                if not self._chan.poll(0.1):
                    continue
            except (EOFError, OSError):
                pass  # gone: the read below says so
            msg = _recv(self._chan)
            if msg is None:
                raise BackendError(
                    FailureKind.MODEL, "the Longdesk worker stopped unexpectedly (see worker.log)"
                )
            return msg

    def close(self) -> None:
        with contextlib.suppress(OSError):
            _send(self._chan, {"op": "done"})
        self._chan.close()


def _contract(remote: RemoteBackend) -> Backend:
    """Never called: mypy checks here that the worker's client is a whole ``Backend``."""
    return remote


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m longdesk.app.resident")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("--home", required=True)
    run.add_argument("--keep-alive", type=float, default=DEFAULT_KEEP_ALIVE_S)
    ns = parser.parse_args(argv)
    from longdesk.app import logs
    from longdesk.app.paths import Paths

    logs.configure(Paths.default().logs, name=logs.WORKER_LOG_FILE)  # its own file, beside longdesk.log
    return serve(Path(ns.home), ns.keep_alive)


if __name__ == "__main__":
    raise SystemExit(main())
