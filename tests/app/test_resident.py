"""The resident worker, end to end: `longdesk ask` twice, the second run answers from the model
and the corpus state the first one left loaded, with the same answer as a fresh process.

The protocol itself (held readings, another corpus, cancel, idle exit, stale sockets, garbage,
the installation handshake) is tested in tests/app/test_resident_protocol.py with a fake model
in-process, in well under a second; this one real run checks that the pieces meet.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longdesk.app import resident
from tests.app.test_cli import longdesk

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.skipif(not resident.supported(), reason="the worker needs Unix sockets"),
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
    monkeypatch.setenv(resident.KEEP_ALIVE_ENV, "120")
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
    log = (keep_alive / "logs" / "worker.log").read_text().splitlines()
    assert any("started:" in line and "resident.py serve --home" in line for line in log), log  # its own log
    cli_log = (keep_alive / "logs" / "longdesk.log").read_text()
    assert "resident.py serve" not in cli_log  # the CLI's file is the CLI's alone
    assert "gemma-3-270m" in status.stdout

    # Without the worker the same question in a fresh process restores the snapshot the
    # worker saved, and gives the same answer.
    monkeypatch.setenv(resident.KEEP_ALIVE_ENV, "0")
    fresh_out, fresh_err = ask(notes)
    assert "worker" not in fresh_err
    assert "restored the reading" in fresh_err
    assert fresh_out == first_out

    stop = longdesk("worker", "stop")
    assert f"(pid {pid}) is stopping" in stop.stdout
    assert wait_gone(pid)
    assert not resident.socket_path(keep_alive / "config").exists()
    assert "no worker is running" in longdesk("worker", "status").stdout
