"""`longdesk FILE...` opens the window on those files; a second launch hands its files to it.

Real processes, started the way a desktop starts them (`longdesk %F`), offscreen. What the
window lists is read from the session it saves, which is what the Sources panel shows and
what reopening shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longdesk.app.cli.commands import build_parser
from longdesk.app.sessions import SESSION_SUFFIX, Session
from longdesk.ui.main import COMMANDS, split_args
from tests.engine.corpus_files import make_epub

pytestmark = pytest.mark.gui

WAIT_S = 90.0


def _launch(home: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "LONGDESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.Popen(
        [sys.executable, "-m", "longdesk.ui.main", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _listed(home: Path) -> list[set[str]]:
    """The document names of each saved session (written atomically, so whole or absent)."""
    return [
        {d.name for d in Session.from_json(path.read_text(encoding="utf-8")).documents}
        for path in sorted((home / "data" / "sessions").glob(f"*{SESSION_SUFFIX}"))
    ]


def _wait_for(home: Path, wanted: set[str], proc: subprocess.Popen[str]) -> set[str]:
    deadline = time.monotonic() + WAIT_S
    seen: list[set[str]] = []
    while time.monotonic() < deadline:
        seen = _listed(home)
        for names in seen:
            if wanted <= names:
                return names
        assert proc.poll() is None, f"the window exited: {proc.communicate()[0]}"
        time.sleep(0.05)
    raise AssertionError(f"no saved session lists {wanted}; sessions: {seen}")


@pytest.fixture
def window_proc(ui_home: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_commands_of_the_launcher_are_the_cli_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # argparse keeps its subparsers here
    assert set(sub.choices or {}) == COMMANDS
    assert split_args(["ask", "x", "-q", "y"]) == (True, ["ask", "x", "-q", "y"])
    assert split_args(["--version"]) == (True, ["--version"])
    assert split_args(["book.pdf"]) == (False, ["book.pdf"])
    assert split_args(["--", "ask"]) == (False, ["ask"])


def test_missing_file_is_a_clear_error(ui_home: Path, tmp_path: Path) -> None:
    proc = _launch(ui_home, "inpsect", cwd=tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "no such file or folder: inpsect" in out
    assert "commands: ask, batch, inspect" in out


def test_open_files_then_hand_more_to_the_open_window(
    ui_home: Path, pdf_book: Path, tmp_path: Path, window_proc: list[subprocess.Popen[str]]
) -> None:
    first = _launch(ui_home, str(pdf_book))
    window_proc.append(first)
    assert _wait_for(ui_home, {"harbour-book.pdf"}, first) == {"harbour-book.pdf"}

    make_epub(tmp_path / "other.epub", "Other", [("Tides", "<p>The tide turns at six.</p>")])
    (tmp_path / "ask").write_text("A file named like a command.\n", encoding="utf-8")
    second = _launch(ui_home, "other.epub", cwd=tmp_path)  # a relative path, from its own folder
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert _wait_for(ui_home, {"harbour-book.pdf", "other.epub"}, first) == {"harbour-book.pdf", "other.epub"}

    third = _launch(ui_home, "--", "ask", cwd=tmp_path)
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0, out
    names = _wait_for(ui_home, {"harbour-book.pdf", "other.epub", "ask"}, first)
    assert names == {"harbour-book.pdf", "other.epub", "ask"}
    assert first.poll() is None  # still the one window
    assert len(_listed(ui_home)) == 1  # one session: the later files joined the first window's
