"""Reopening a hosted session in a new window: the sources are read again (a changed file is
noticed), but an unchanged corpus is neither parsed nor counted again, and the plan that comes
back is the one a question is sent with (same prefix, same exact count, consent asked)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.engine.backends import hosted_tokens
from longdesk.engine.isolation import Sandbox
from longdesk.ui.consent_dialog import ConsentDialog
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets.model_bar import WHERE_HOSTED
from tests.hosted import deepseek_emulator

pytestmark = [pytest.mark.gui, pytest.mark.network]

TIMEOUT = 60_000


@pytest.fixture
def hosted_home(ui_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings that name the DeepSeek emulator; its key in the environment only."""
    with deepseek_emulator.running() as (url, emu):
        monkeypatch.setenv("DEEPSEEK_API_KEY", emu.api_key)
        path = ui_home / "config" / "settings.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data.update(hosted_preset="deepseek", hosted_endpoint=url, max_output_tokens=64)
        path.write_text(json.dumps(data), encoding="utf-8")
        yield ui_home


@pytest.fixture
def library(tmp_path: Path, pdf_book: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    pdf_book.rename(root / pdf_book.name)
    (root / "notes.md").write_text("# Notes\n\nThe kettle is blue.\n", encoding="utf-8")
    (root / "tide.py").write_text("def tide(hour):\n    return hour % 12\n", encoding="utf-8")
    return root


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    """What the reading and counting really did: parser calls and tokenizer calls."""
    done: dict[str, list[object]] = {"parsed": [], "encoded": []}
    call = Sandbox.call

    def parsing(
        self: Sandbox, fn: Callable[..., object], what: object, *args: object, **kw: object
    ) -> object:
        done["parsed"].append(what)
        return call(self, fn, what, *args, **kw)

    monkeypatch.setattr(Sandbox, "call", parsing)
    real = hosted_tokens._deepseek_encoder

    class Encoder:
        def encode(self, text: str, **kwargs: object) -> list[int]:
            done["encoded"].append(len(text))
            return real().encode(text, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(hosted_tokens, "_deepseek_encoder", Encoder)
    return done


def _window(qtbot: QtBot) -> MainWindow:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def _hosted(window: MainWindow) -> None:
    window.model_bar.where.setCurrentIndex(window.model_bar.where.findData(WHERE_HOSTED))


def _reopen(qtbot: QtBot, session_id: str) -> MainWindow:
    """A new window opens the session from the list, then Hosted is chosen: until it is planned."""
    window = _window(qtbot)
    with qtbot.waitSignal(window.corpus_planned, timeout=TIMEOUT):
        window.open_session(session_id)
        qtbot.waitUntil(lambda: window.session.session_id == session_id, timeout=TIMEOUT)
        _hosted(window)
    return window


def test_a_reopened_hosted_session_is_planned_from_the_caches(
    qtbot: QtBot, hosted_home: Path, library: Path, work: dict[str, list[object]]
) -> None:
    first = _window(qtbot)
    with qtbot.waitSignal(first.corpus_planned, timeout=TIMEOUT):
        first.add_paths([library])
        _hosted(first)
    plan = first.plan
    assert plan is not None
    assert len(work["parsed"]) == 1  # the PDF, in the isolated parser
    assert work["encoded"]  # counted once with the V4 vocabulary
    with qtbot.waitSignal(first.session_saved, timeout=TIMEOUT):
        first.autosave()
    session_id = first.session.session_id
    first.close()

    work["parsed"].clear()
    work["encoded"].clear()
    again = _reopen(qtbot, session_id)
    assert work["parsed"] == []  # the parse cache held the PDF
    assert work["encoded"] == []  # every count came from the count cache
    replan = again.plan
    assert replan is not None
    assert replan.system_text == plan.system_text  # byte-identical prefix
    assert replan.prefix_tokens == plan.prefix_tokens
    assert replan.spans == plan.spans
    # Ready means ready: asking now shows the consent for exactly this plan.
    shown: list[ConsentDialog] = []
    again.hosted.consent_shown.connect(shown.append)
    again.question.setPlainText("What colour is the kettle?")
    again.ask()
    qtbot.waitUntil(lambda: bool(shown), timeout=TIMEOUT)
    assert shown[0].request.plan is replan
    shown[0].cancel_button.click()
    again.close()

    # A file changed on disk while the session was closed: it is read and counted again.
    notes = library / "notes.md"
    notes.write_text(notes.read_text(encoding="utf-8") + "The oven is broken.\n", encoding="utf-8")
    work["encoded"].clear()
    third = _reopen(qtbot, session_id)
    assert third.plan is not None
    assert "The oven is broken." in third.plan.system_text
    changed = next(s for s in third.plan.spans if s.name.endswith("notes.md"))
    assert work["encoded"] == [changed.end - changed.start]  # that block alone
    assert work["parsed"] == []  # the PDF did not change
    third.close()
