"""The resident worker's protocol with a fake model, in-process: every case in well under a second.

A real worker thread serves on a real Unix socket (``resident.serve`` with a model factory that
makes ``FakeModel``s); the client side is the real ``RemoteBackend`` over
``multiprocessing.connection`` frames. What the fake cannot
show (llama.cpp's state kept between clients, the same answer as a fresh process) is checked
once, end to end, in tests/app/test_resident.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection
from pathlib import Path

import pytest

from longdesk.app import resident
from longdesk.app.wire import to_wire
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
    Stage,
    StopReason,
    ThinkingMode,
    Turn,
    Usage,
    Where,
)
from longdesk.engine.backends.local_load import LocalSettings
from longdesk.engine.context.plan import Budget, ContextPlan, DocumentSpan

pytestmark = pytest.mark.skipif(not resident.supported(), reason="the worker needs Unix sockets")

WAIT_S = 10.0  # an upper bound for conditions that hold at once; never reached when all is well


@dataclass
class FakeHeader:
    context_length: int = 8192


@dataclass
class FakeModel:
    """Answers "<question> about <corpus>", word by word; holds one prefix, as a context does."""

    path: Path
    settings: LocalSettings
    header: FakeHeader = field(default_factory=FakeHeader)
    held: str = ""
    reads: list[str] = field(default_factory=list)
    rewinds: int = 0
    closed: bool = False
    stream_until_cancelled: bool = False
    streaming: threading.Event = field(default_factory=threading.Event)  # in such an answer now
    ended: list[StopReason] = field(default_factory=list)  # how each streamed-until-cancel answer ended

    def describe(self) -> BackendInfo:
        return BackendInfo("fake", Where.LOCAL, self.settings.n_ctx, (ThinkingMode.OFF, ThinkingMode.HIGH))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def read(
        self,
        plan: ContextPlan,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        thinking: ThinkingMode = ThinkingMode.OFF,
        keep_held: bool = False,
    ) -> Reading:
        text = plan.system_text
        if keep_held and text == self.held:
            return Reading(self.count_tokens(text), restored=True, detail={"snapshot": "held"})
        self.reads.append(text)
        on_event(Progress(Stage.PREFILL, 5, 10, 50.0, 0.1))
        if cancelled():
            raise BackendError(FailureKind.CANCELLED, "cancelled after 5 of 10 tokens")
        self.held = text
        return Reading(self.count_tokens(text), detail={"snapshot": "none", "thinking": thinking.value})

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        corpus = self.held.split("<corpus>\n")[1].split("\n")[0] if self.held else "nothing"
        for word in f"{question} about {corpus}".split():
            on_event(AnswerDelta(word + " "))
        if self.stream_until_cancelled:
            gate = threading.Event()
            self.streaming.set()
            while not cancelled() and not gate.wait(0.005):  # until the client's cancel arrives
                pass
            self.ended.append(StopReason.CANCELLED if cancelled() else StopReason.LENGTH)
            return Finished(self.ended[-1])
        on_event(Usage(10, 8, 3))
        return Finished(StopReason.STOP)

    def rewind(self) -> None:
        self.rewinds += 1

    def close(self) -> None:
        self.closed = True


class Served:
    """A worker thread serving ``home`` with fake models; ``models`` are the ones it made."""

    def __init__(self, home: Path, keep_alive: float = 30.0) -> None:
        self.home = home
        self.models: list[FakeModel] = []
        self.path = resident.socket_path(home)
        self.thread = threading.Thread(
            target=resident.serve, args=(home, keep_alive, self.make), name="test-worker", daemon=True
        )
        self.thread.start()
        ready = threading.Event()
        while self.thread.is_alive() and not self._connectable():
            ready.wait(0.002)
        assert self.thread.is_alive()

    def make(self, path: Path, settings: LocalSettings) -> FakeModel:
        model = FakeModel(path, settings)
        self.models.append(model)
        return model

    def _connectable(self) -> bool:
        probe = resident._try_connect(self.path)
        if probe is None:
            return False
        with probe:
            probe.send_bytes(b'{"op": "done"}')
        return True

    def client(self, model: Path, n_ctx: int = 4096) -> resident.RemoteBackend:
        conn = resident.connect(self.home, start=False, keep_alive=0)
        return resident.RemoteBackend(conn, model, LocalSettings(n_ctx=n_ctx))

    def stop(self) -> None:
        if self.thread.is_alive():
            resident.request(self.home, "stop")
            self.thread.join(WAIT_S)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "home")
    yield s
    s.stop()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF fake")
    return path


def plan(corpus: str) -> ContextPlan:
    block = f"<corpus>\n{corpus}\n</corpus>\n"
    return ContextPlan(
        "Cite.", (block,), 9, (DocumentSpan("D1", "a.txt", 0, len(block), 5),), Budget(4096, 9, 0, 64)
    )


def run_ask(
    backend: resident.RemoteBackend, p: ContextPlan, question: str, cancel: threading.Event | None = None
) -> tuple[Reading, Finished | Failed, list[Event]]:
    events: list[Event] = []
    flag = cancel or threading.Event()
    reading = backend.read(p, events.append, flag.is_set)
    result = backend.ask(reading, (), question, AskOptions(max_output_tokens=8), events.append, flag.is_set)
    return reading, result, events


def test_the_next_client_is_served_from_the_model_and_reading_held(served: Served, model_file: Path) -> None:
    first = served.client(model_file)
    assert not first.kept
    assert first.describe() == BackendInfo("fake", Where.LOCAL, 4096, (ThinkingMode.OFF, ThinkingMode.HIGH))
    reading, result, events = run_ask(first, plan("the gate is green"), "colour?")
    first.close()
    assert result == Finished(StopReason.STOP)
    assert reading.detail["snapshot"] == "none"
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert answer == "colour? about the gate is green "
    assert [e for e in events if isinstance(e, Progress)] == [Progress(Stage.PREFILL, 5, 10, 50.0, 0.1)]
    assert isinstance(events[0], Progress)
    assert events[0].stage is Stage.PREFILL  # enums survive the wire
    assert Usage(10, 8, 3) in events

    second = served.client(model_file, n_ctx=2048)  # a smaller context is served by the held one
    assert second.kept
    assert second.count_tokens("three little words") == 3
    reading2, result2, events2 = run_ask(second, plan("the gate is green"), "colour?")
    second.close()
    assert reading2.detail["snapshot"] == "held"
    assert result2 == result
    assert "".join(e.text for e in events2 if isinstance(e, AnswerDelta)) == answer
    assert len(served.models) == 1
    assert served.models[0].reads == [plan("the gate is green").system_text]  # read once
    assert served.models[0].rewinds >= 1  # between clients, back to the corpus


def test_another_corpus_is_read_by_the_same_model(served: Served, model_file: Path) -> None:
    a = served.client(model_file)
    run_ask(a, plan("the gate is green"), "colour?")
    a.close()
    b = served.client(model_file)
    assert b.kept
    reading, _result, events = run_ask(b, plan("the shed is red"), "colour?")
    b.close()
    assert reading.detail["snapshot"] == "none"
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == "colour? about the shed is red "
    assert len(served.models) == 1
    assert len(served.models[0].reads) == 2


def test_other_settings_load_the_model_again(served: Served, model_file: Path) -> None:
    served.client(model_file).close()
    bigger = served.client(model_file, n_ctx=8192)  # more than the held context offers
    bigger.close()
    assert not bigger.kept
    assert len(served.models) == 2
    assert served.models[0].closed


def test_cancel_stops_the_answer_and_the_worker_serves_the_next_client(
    served: Served, model_file: Path
) -> None:
    client = served.client(model_file)
    served.models[0].stream_until_cancelled = True
    cancel = threading.Event()
    events: list[Event] = []

    def on_event(ev: Event) -> None:
        events.append(ev)
        if isinstance(ev, AnswerDelta):
            cancel.set()  # Ctrl-C once the answer has begun

    reading = client.read(plan("the gate is green"), on_event, cancel.is_set)
    result = client.ask(reading, (), "essay", AskOptions(), on_event, cancel.is_set)
    client.close()
    assert result == Finished(StopReason.CANCELLED)
    served.models[0].stream_until_cancelled = False
    again = served.client(model_file)
    reading2, result2, _ = run_ask(again, plan("the gate is green"), "colour?")
    again.close()
    assert again.kept
    assert reading2.detail["snapshot"] == "held"
    assert result2 == Finished(StopReason.STOP)


def test_a_client_that_disappears_mid_answer_cancels_it(served: Served, model_file: Path) -> None:
    client = served.client(model_file)
    client.read(plan("the gate is green"), [].append, lambda: False)
    served.models[0].stream_until_cancelled = True
    ask = {"op": "ask", "history": [], "question": "essay", "options": to_wire(AskOptions())}
    resident._send(client._chan, ask)
    assert served.models[0].streaming.wait(WAIT_S)
    client._chan.close()  # gone without a word while the answer streams
    again = served.client(model_file)  # served once the abandoned answer has stopped
    assert served.models[0].ended == [StopReason.CANCELLED]
    served.models[0].stream_until_cancelled = False
    _reading, result, _ = run_ask(again, plan("the gate is green"), "colour?")
    again.close()
    assert result == Finished(StopReason.STOP)


def test_a_failed_load_is_an_error_value(served: Served, tmp_path: Path) -> None:
    with pytest.raises(BackendError) as err:
        served.client(tmp_path / "missing.gguf")
    assert err.value.kind is FailureKind.BAD_INPUT
    assert "missing.gguf" in err.value.message
    assert served.models == []


def test_an_idle_worker_exits_and_removes_its_socket(tmp_path: Path) -> None:
    s = Served(tmp_path / "home", keep_alive=0.05)
    s.thread.join(WAIT_S)
    assert not s.thread.is_alive()
    assert not s.path.exists()


def test_a_socket_left_by_a_killed_worker_is_replaced(tmp_path: Path, model_file: Path) -> None:
    home = tmp_path / "home"
    path = resident.socket_path(home)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # what a SIGKILLed worker leaves: a socket file nobody listens on
    dead.close()
    assert path.exists()
    with pytest.raises(resident.ResidentUnavailable):
        resident.connect(home, start=False, keep_alive=0)
    s = Served(home)
    try:
        client = s.client(model_file)
        _reading, result, _ = run_ask(client, plan("the gate is green"), "colour?")
        client.close()
        assert result == Finished(StopReason.STOP)
    finally:
        s.stop()
    assert not path.exists()


def _reply(chan: Connection) -> bytes:
    assert chan.poll(WAIT_S)
    return chan.recv_bytes()


def test_a_client_speaking_garbage_is_dropped_and_the_worker_serves_on(
    served: Served, model_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Client(str(served.path), family="AF_UNIX") as chan:
        chan.send_bytes(b'{"op": "open"}')  # JSON, but not a whole request
        assert b"bad 'open' request" in _reply(chan)
        (logged,) = [r for r in caplog.records if r.name == "longdesk.app.resident"]
        assert logged.getMessage() == "refused a bad 'open' request"
        assert logged.exc_info is not None  # with its traceback
        chan.send_bytes(b'{"op": "fly"}')
        assert b"unexpected request 'fly'" in _reply(chan)
        chan.send_bytes(b'["op", "ping"]')  # JSON, but not an object
        assert chan.poll(WAIT_S)
        with pytest.raises(EOFError):
            chan.recv_bytes()  # the worker hangs up on it
    with Client(str(served.path), family="AF_UNIX") as chan:
        chan.send_bytes(b"\x00\xff not a request")
        assert chan.poll(WAIT_S)
        with pytest.raises(EOFError):
            chan.recv_bytes()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:  # a frame that claims 2 GiB
        raw.settimeout(WAIT_S)
        raw.connect(str(served.path))
        raw.sendall(b"\x7f\xff\xff\xff{")
        try:
            hung_up = raw.recv(1024) == b""
        except ConnectionResetError:  # it closed with our byte unread
            hung_up = True
        assert hung_up
    client = served.client(model_file)
    _reading, result, _ = run_ask(client, plan("the gate is green"), "colour?")
    client.close()
    assert result == Finished(StopReason.STOP)


def test_each_request_out_of_order_is_refused_by_its_handler(served: Served, model_file: Path) -> None:
    with Client(str(served.path), family="AF_UNIX") as chan:
        chan.send_bytes(b'{"op": "count", "text": "no model yet"}')
        assert b"unexpected request 'count'" in _reply(chan)
        chan.send_bytes(b'{"op": "ask", "question": "before any reading"}')
        assert b"unexpected request 'ask'" in _reply(chan)
        chan.send_bytes(b'{"op": 7}')
        assert b"unexpected request 7" in _reply(chan)
        chan.send_bytes(b'{"op": "ping"}')
        assert b'"t":"pong"' in _reply(chan)  # and it serves on
        chan.send_bytes(b'{"op": "done"}')
    assert set(resident._Resident(0).handlers) == {
        "hello", "ping", "stop", "open", "read", "ask", "count", "done"
    }


def test_a_large_plan_arrives_whole(served: Served, model_file: Path) -> None:
    corpus = "the gate is green and " * 400_000  # 8.8 MB: many socket buffers, one frame
    client = served.client(model_file)
    reading = client.read(plan(corpus), [].append, lambda: False)
    client.close()
    assert served.models[0].reads == [plan(corpus).system_text]
    assert reading.prefix_tokens == len(plan(corpus).system_text.split())


def test_the_socket_and_its_folder_are_this_users_alone(served: Served) -> None:
    st = served.path.lstat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    folder = served.path.parent.lstat()
    assert stat.S_IMODE(folder.st_mode) == 0o700
    assert folder.st_uid == os.getuid()


def _hello(path: Path, version: str) -> dict[str, object] | None:
    with Client(str(path), family="AF_UNIX") as chan:
        resident._send(chan, {"op": "hello", "version": version})
        reply = resident._recv_within(chan, WAIT_S)
        with contextlib.suppress(OSError):  # a worker of another installation has hung up already
            resident._send(chan, {"op": "done"})
        return reply


def test_a_worker_of_this_installation_stays_for_its_clients(served: Served) -> None:
    reply = _hello(served.path, resident.installed_version())
    assert reply is not None
    assert reply["version"] == resident.installed_version()
    assert served.thread.is_alive()
    assert resident.request(served.home, "ping") is not None


def test_a_worker_of_another_installation_makes_way_for_the_new_one(served: Served, model_file: Path) -> None:
    reply = _hello(served.path, "0.0.1+someotherbuild")
    assert reply is not None
    assert reply["version"] == resident.installed_version()  # it says what it runs, then goes
    served.thread.join(WAIT_S)
    assert not served.thread.is_alive()
    assert not served.path.exists()  # the next `longdesk ask` starts a worker of its own
    fresh = Served(served.home)
    try:
        client = fresh.client(model_file)
        assert not client.kept
        client.close()
    finally:
        fresh.stop()


def test_the_installed_version_names_the_distribution() -> None:
    from importlib import metadata

    version = resident.installed_version()
    assert version.startswith(metadata.version("longdesk") + "+")
    assert len(version.split("+")[1]) == 12
