"""Logging in the window: a forced internal error leaves its traceback in the log under an id
that the message on screen names; a background job without a failure handler is logged, not
dropped; Help ▸ Copy diagnostics puts the facts a bug report needs on the clipboard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from longdesk.app import logs
from longdesk.app.paths import Paths
from longdesk.engine.backends.base import Backend
from longdesk.ui import menus
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets import conversation
from tests.ui.helpers import shot

pytestmark = [pytest.mark.gui]


@pytest.fixture
def log_file(ui_home: Path) -> Iterator[Path]:
    path = logs.configure(ui_home / "logs")
    yield path
    logs.shutdown()


def _entry(log: Path, failure_id: str) -> str:
    """The log entry with ``failure_id``: its line and the traceback lines after it."""
    text = log.read_text(encoding="utf-8")
    start = text.rfind("\n", 0, text.index(f"[{failure_id}]")) + 1
    rest = text[start:].splitlines()
    entry = [rest[0]]
    for line in rest[1:]:
        if re.match(r"\d{4}-\d\d-\d\d ", line):
            break
        entry.append(line)
    return "\n".join(entry)


def forced_failure(path: Path, settings: object) -> Backend:
    raise RuntimeError(f"forced failure while opening {path.name}")


def test_a_forced_internal_error_is_logged_with_its_traceback_under_the_id_shown(
    qtbot: QtBot, log_file: Path, artifacts: Path
) -> None:
    window = MainWindow(Paths.default(), backend_factory=forced_failure, restore_last_session=False)
    qtbot.addWidget(window)
    window.show()
    window.start_background_work()
    qtbot.waitUntil(lambda: "Internal error" in window.welcome.model_status.text(), timeout=60_000)
    shown = window.welcome.model_status.text()
    shot(window, artifacts, "logging-internal-error.png")
    found = re.search(r"Internal error ([0-9a-f]{8})", shown)
    assert found, shown
    assert "RuntimeError: forced failure" in shown
    assert "Help ▸ Show log" in shown
    entry = _entry(log_file, found.group(1))
    assert "ERROR" in entry.splitlines()[0]
    assert "Traceback (most recent call last)" in entry
    assert "in forced_failure" in entry  # the frame that raised, not only the message
    assert "RuntimeError: forced failure while opening" in entry


def test_a_job_without_a_failure_handler_is_logged_not_dropped(qtbot: QtBot, log_file: Path) -> None:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    done: list[object] = []

    def broken() -> int:
        return {}["missing key"]  # type: ignore[no-any-return]

    window.runner.run_task(broken, done.append)  # no on_failed
    qtbot.waitUntil(lambda: "without a failure handler failed" in log_file.read_text(), timeout=10_000)
    text = log_file.read_text()
    assert "KeyError: 'missing key'" in text
    assert "in broken" in text
    assert done == []


def test_copy_diagnostics_and_show_log(qtbot: QtBot, log_file: Path) -> None:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    logs.report("a remembered problem")
    text = menus.copy_diagnostics(window)
    assert QGuiApplication.clipboard().text() == text
    assert text.startswith("Longdesk ")
    assert f"Log {log_file}" in text
    assert "a remembered problem" in text  # the log's last lines come along
    assert "llama_cpp_python 0.3.36" in text
    logs.shutdown()
    assert logs.log_file() is None
    assert not menus.show_log(window)  # no log configured: says so instead of opening nothing
    assert "no log file" in window.statusBar().currentMessage()


def test_a_failing_citation_check_is_logged_with_its_traceback(
    qtbot: QtBot, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, answer: str, *, final: bool) -> list[object]:
        raise ValueError("checker bug")

    monkeypatch.setattr(conversation.AnswerCitations, "update", broken)
    checker = conversation.CitationChecker(lambda: (None, {}))
    try:
        with qtbot.waitSignal(checker.checked, timeout=10_000) as got:
            checker.submit(1, "An answer [D1, line 1].", final=True)
        assert got.args == [1, []]  # shown without checked citations; the thread lives on
        text = log_file.read_text()
        assert "citation check failed" in text
        assert "ValueError: checker bug" in text
        assert "in broken" in text
        with qtbot.waitSignal(checker.checked, timeout=10_000):
            checker.submit(2, "Another answer.", final=True)
    finally:
        checker.close()
