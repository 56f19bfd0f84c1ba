"""The log files: the window and the CLI write ``longdesk.log``, the resident worker its own
``worker.log`` beside it, and the diagnostics a bug report needs carry the last lines of both."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from longdesk.app import logs


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "logs"
    logs.shutdown()


def test_the_worker_writes_its_own_file_and_the_diagnostics_show_both(folder: Path) -> None:
    worker = logs.configure(folder, name=logs.WORKER_LOG_FILE)  # what `resident.main` does
    assert worker == folder / "worker.log"
    logging.getLogger("longdesk.app.resident").warning("a worker's problem")
    logs.shutdown()
    assert "a worker's problem" in worker.read_text()
    assert not (folder / logs.LOG_FILE).exists()  # never the window's and the CLI's file

    main = logs.configure(folder)  # the window or the CLI, later
    assert main == folder / "longdesk.log"
    logs.report("a window's problem")
    assert "a worker's problem" not in main.read_text()
    text = logs.diagnostics()
    assert f"Log {main}" in text
    assert f"Worker log {worker}" in text
    mine = text.index("Last ")
    theirs = text.index("worker log lines:")
    assert mine < text.index("a window's problem") < theirs < text.index("a worker's problem")


def test_without_a_worker_log_the_diagnostics_name_one_file(folder: Path) -> None:
    main = logs.configure(folder)
    logs.report("only the window")
    text = logs.diagnostics()
    assert f"Log {main}" in text
    assert "Worker log" not in text
    assert "worker log lines" not in text
    assert "only the window" in text
