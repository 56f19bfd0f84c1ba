"""The resident worker: `longdesk ask` twice, the second run answers from the model and the
corpus state the first one left loaded, with the same answer as a fresh process."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longdesk.app import worker
from tests.app.test_cli import longdesk

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not worker.supported(), reason="the worker needs Unix sockets"),
]

QUESTION = "What colour is the gate?"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.txt").write_text(
        "The garden has three apple trees and one pear tree.\nThe gate is painted green.\n"
    )
    (folder / "kitchen.md").write_text("# Kitchen\n\nThe kettle is blue. The oven is broken.\n")
    return folder


@pytest.fixture
def keep_alive(longdesk_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(worker.KEEP_ALIVE_ENV, "120")
    yield longdesk_home
    longdesk("worker", "stop")


def ask(folder: Path) -> tuple[str, str]:
    r = longdesk("ask", str(folder), "-q", QUESTION, "--max-tokens", "8")
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def worker_pid(stderr: str) -> int:
    found = re.search(r"worker \(pid (\d+)\)", stderr)
    assert found, stderr
    return int(found.group(1))


def wait_gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_second_ask_is_answered_by_the_worker_with_the_same_answer(
    keep_alive: Path, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_out, first_err = ask(notes)
    assert "in a worker (pid" in first_err
    pid = worker_pid(first_err)
    assert "read " in first_err  # the worker read the corpus (and saved its snapshot)

    second_out, second_err = ask(notes)
    assert f"already loaded in the worker (pid {pid})" in second_err
    assert "the worker already holds the reading" in second_err
    assert second_out == first_out  # the held state answers exactly as the fresh one did

    status = longdesk("worker", "status")
    assert f"pid {pid}" in status.stdout
    assert "gemma-3-270m" in status.stdout

    # Without the worker the same question in a fresh process restores the snapshot the
    # worker saved, and gives the same answer.
    monkeypatch.setenv(worker.KEEP_ALIVE_ENV, "0")
    fresh_out, fresh_err = ask(notes)
    assert "worker" not in fresh_err
    assert "restored the reading" in fresh_err
    assert fresh_out == first_out

    stop = longdesk("worker", "stop")
    assert f"(pid {pid}) is stopping" in stop.stdout
    assert wait_gone(pid)
    assert not worker.socket_path(keep_alive / "config").exists()
    assert "no worker is running" in longdesk("worker", "status").stdout


def test_another_corpus_is_read_by_the_same_worker(keep_alive: Path, notes: Path, tmp_path: Path) -> None:
    _out, err = ask(notes)
    pid = worker_pid(err)
    other = tmp_path / "other"
    other.mkdir()
    (other / "shed.txt").write_text("The shed door is painted red.\n")
    _out, err = ask(other)
    assert f"already loaded in the worker (pid {pid})" in err
    assert "read " in err
    assert "already holds" not in err


def test_an_idle_worker_exits_and_removes_its_socket(
    longdesk_home: Path, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(worker.KEEP_ALIVE_ENV, "1")
    _out, err = ask(notes)
    pid = worker_pid(err)
    assert wait_gone(pid)
    assert not worker.socket_path(longdesk_home / "config").exists()


def test_a_killed_worker_is_replaced_by_the_next_ask(keep_alive: Path, notes: Path) -> None:
    first_out, err = ask(notes)
    pid = worker_pid(err)
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    assert worker.socket_path(keep_alive / "config").exists()  # left behind by the kill
    out, err = ask(notes)
    new = worker_pid(err)
    assert new != pid
    assert "restored the reading" in err  # from the snapshot the killed worker saved
    assert out == first_out


def test_ctrl_c_stops_the_answer_in_the_worker_which_stays_ready(keep_alive: Path, notes: Path) -> None:
    import subprocess
    import sys

    from tests.app.test_cli import ROOT

    _out, err = ask(notes)  # the worker holds the corpus now
    pid = worker_pid(err)
    exe = Path(sys.executable).with_name("longdesk")
    # The default model answers in one short line, so Ctrl-C lands in a long reading instead.
    big = notes.parent / "wall"
    big.mkdir()
    (big / "stones.txt").write_text("".join(f"Stone {i} of the garden wall is grey.\n" for i in range(1500)))
    proc = subprocess.Popen(
        [str(exe), "ask", str(big), "-q", "Which stone is grey?", "--no-snapshot"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=os.environ.copy(),
    )
    assert proc.stderr is not None
    seen = b""
    while b"prefill:" not in seen:  # reading has begun
        chunk = proc.stderr.read1(4096)
        assert chunk, seen.decode()
        seen += chunk
    proc.send_signal(signal.SIGINT)
    _rest, err_bytes = proc.communicate(timeout=60)
    assert proc.returncode == 130, (seen + err_bytes).decode()
    assert "cancelled" in (seen + err_bytes).decode()
    # The worker stopped, stays up, and answers the next question from its snapshot.
    out, err = ask(notes)
    assert worker_pid(err) == pid
    assert "restored the reading" in err or "already holds the reading" in err
    assert out


def test_a_client_speaking_garbage_is_dropped_and_the_worker_serves_on(keep_alive: Path, notes: Path) -> None:
    import socket

    _out, err = ask(notes)
    pid = worker_pid(err)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(30)
        raw.connect(str(worker.socket_path(keep_alive / "config")))
        raw.sendall(b'{"op": "open"}\n')  # JSON, but not a whole request
        assert b"bad 'open' request" in raw.recv(4096)
        raw.sendall(b"\x00\xff not a request\n")
        assert raw.recv(1024) == b""  # the worker hangs up on it
    _out, err = ask(notes)
    assert f"already loaded in the worker (pid {pid})" in err
