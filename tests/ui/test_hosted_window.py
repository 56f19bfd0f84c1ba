"""The window's hosted path, driven through the real widgets: the switch, the consent dialog,
what is (not) sent, streaming, reasoning, costs, cache hits, a cut stream, and the offer to fall
back when the local model cannot serve.

Every request is counted by a listener on 127.0.0.1 in front of the server (llama-cpp-python's
own OpenAI-compatible server with the default model, or the DeepSeek emulator), so "nothing was
sent" is checked where it matters: on the wire.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.citations import Check
from longdesk.app.paths import Paths
from longdesk.ui.consent_dialog import ConsentDialog
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL
from tests.conftest import SERVER_CTX
from tests.hosted import deepseek_emulator
from tests.hosted.counting_proxy import Counter, counting
from tests.ui.helpers import shot

pytestmark = [pytest.mark.gui, pytest.mark.network]

LONG = 180_000
ROOT = Path(__file__).resolve().parents[2]


def _settings(home: Path, **hosted: object) -> None:
    path = home / "config" / "settings.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(hosted)
    path.write_text(json.dumps(data), encoding="utf-8")


def _window(qtbot: QtBot) -> tuple[MainWindow, list[ConsentDialog]]:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    qtbot.waitExposed(window)
    shown: list[ConsentDialog] = []
    window.hosted.consent_shown.connect(shown.append)
    return window, shown


def _switch_to_hosted(qtbot: QtBot, window: MainWindow, sources: list[Path]) -> None:
    """The user adds sources and picks Hosted in the model bar; the corpus is counted for it."""
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        window.add_paths(sources)
        window.model_bar.where.setCurrentIndex(window.model_bar.where.findData(WHERE_HOSTED))
    assert window.where == WHERE_HOSTED
    assert window.info is not None
    assert window.info.where == "hosted"
    # The endpoint's libraries, loaded when it opened, are exempt from later collections (each
    # full pass would walk their ~160,000 objects while the window's thread waits for the GIL).
    assert window.hosted.engine is not None
    hosted = window.hosted.engine.worker._hosted
    assert hosted is not None
    assert hosted._client is not None
    assert not any(o is hosted._client for o in gc.get_objects())


def _ask(window: MainWindow, question: str) -> None:
    window.question.setPlainText(question)
    window.ask()


@pytest.fixture
def kitchen(tmp_path: Path) -> Path:
    """Notes to ask about, and a secrets file the walker flags (never sent by default)."""
    root = tmp_path / "kitchen"
    root.mkdir()
    (root / "notes.md").write_text("The kettle is blue.\nThe oven is broken.\n", encoding="utf-8")
    (root / ".env").write_text("DB_PASSWORD=hunter2\n", encoding="utf-8")
    return root


@pytest.mark.model
@pytest.mark.slow
def test_consent_cancel_sends_nothing_send_streams_and_a_changed_corpus_asks_again(
    qtbot: QtBot, ui_home: Path, llama_server: str, default_model: Path, kitchen: Path, tmp_path: Path,
    artifacts: Path,
) -> None:  # fmt: skip
    with counting(llama_server) as (url, counter):
        _settings(
            ui_home,
            hosted_preset="openai-compatible",
            hosted_endpoint=url,
            hosted_model=str(default_model),
            hosted_context_tokens=SERVER_CTX,
            hosted_tokenizer=str(default_model),
            max_output_tokens=24,
        )
        window, shown = _window(qtbot)
        _switch_to_hosted(qtbot, window, [kitchen])
        assert window.plan is not None
        assert "hunter2" not in window.plan.system_text  # the secrets file is left out
        assert counter.count() == 0  # opening the endpoint and counting sent nothing

        # The first question asks for consent; Cancel sends nothing at all.
        _ask(window, "What colour is the kettle?")
        assert len(shown) == 1
        dialog = shown[0]
        assert dialog.isVisible()
        assert list(dialog.document_names()) == ["kitchen/notes.md"]
        notes = dialog.request.included[0]
        assert notes.tokens == window.plan.spans[0].tokens > 0  # exact, with the server's vocabulary
        assert dialog.left_out_group is not None
        assert "kitchen/.env" in dialog.left_out_group.child(0).text(0)
        assert "127.0.0.1" in dialog.where_label.text()
        assert f"{dialog.request.prompt_tokens:,} tokens per request" in dialog.totals_label.text()
        assert "Cost: unknown" in dialog.totals_label.text()  # no price table for a private server
        assert dialog.send_button.isEnabled()
        shot(dialog, artifacts, "hosted-consent.png")
        dialog.cancel_button.click()
        qtbot.waitUntil(lambda: window.hosted.dialog is None)
        assert counter.count() == 0
        assert window.session.turns == ()
        assert window.question.toPlainText() == "What colour is the kettle?"  # given back, not lost

        # Ask again and agree: the answer streams into the conversation.
        chunks: list[str] = []
        window.hosted.engine.text_streamed.connect(lambda _rid, _kind, text: chunks.append(text))  # type: ignore[union-attr]
        window.ask()
        assert len(shown) == 2
        with qtbot.waitSignal(window.answer_finished, timeout=LONG) as finished:
            shown[1].send_button.click()
        turn = finished.args[0]
        assert turn.where == "hosted"
        assert turn.stop_reason in ("stop", "length")
        assert turn.answer.strip()
        assert len(chunks) >= 2, "the answer did not stream"
        assert "".join(chunks).strip() == turn.answer.strip()
        assert counter.chats() == 1
        figures = window.conversation.widgets[0].figures_label.text()
        assert "cache hit 0 / miss" in figures  # the server sends no usage: counted here, no cache figures
        shot(window, artifacts, "hosted-answer.png")

        # The same corpus again: no second question about consent.
        with qtbot.waitSignal(window.answer_finished, timeout=LONG):
            _ask(window, "Is the oven broken?")
        assert len(shown) == 2
        assert counter.chats() == 2

        # A changed corpus asks again (and Cancel still sends nothing).
        garden = tmp_path / "garden"
        garden.mkdir()
        (garden / "trees.txt").write_text("Three apple trees.\n", encoding="utf-8")
        with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
            window.add_paths([garden])
        _ask(window, "How many trees?")
        assert len(shown) == 3
        assert "garden/trees.txt" in shown[2].document_names()
        shown[2].cancel_button.click()
        assert counter.chats() == 2
        assert len(window.session.turns) == 2
        window.close()


@pytest.fixture
def deepseek(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, deepseek_emulator.Emulator, Counter]]:
    """The DeepSeek emulator behind a counting listener; its key in the environment only."""
    with deepseek_emulator.running() as (emu_url, emu), counting(emu_url) as (url, counter):
        monkeypatch.setenv("DEEPSEEK_API_KEY", emu.api_key)
        yield url, emu, counter


def test_deepseek_reasoning_costs_cache_hits_and_a_cut_stream(
    qtbot: QtBot, ui_home: Path, kitchen: Path, deepseek: tuple[str, deepseek_emulator.Emulator, Counter],
    artifacts: Path,
) -> None:  # fmt: skip
    url, emu, counter = deepseek
    _settings(ui_home, hosted_preset="deepseek", hosted_endpoint=url, max_output_tokens=64)
    window, shown = _window(qtbot)
    _switch_to_hosted(qtbot, window, [kitchen])
    with qtbot.waitSignal(window.corpus_planned, timeout=60_000):  # the reserve changes: counted again
        window.model_bar.thinking.setCurrentIndex(window.model_bar.thinking.findData("high"))
    assert window.plan is not None
    notes_id = next(s.doc_id for s in window.plan.spans if s.name == "kitchen/notes.md")
    emu.answer_text = f'The kettle is blue [{notes_id}, line 1] "The kettle is blue."'
    _ask(window, "What colour is the kettle?")
    assert "Estimated cost of the first question: at most $" in shown[0].totals_label.text()
    shot(shown[0], artifacts, "hosted-consent-deepseek.png")
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as first:
        shown[0].send_button.click()
    turn = first.args[0]
    # Reasoning is kept apart from the answer.
    assert turn.thinking == emu.thinking_text
    assert turn.answer == emu.answer_text
    widget = window.conversation.widgets[0]
    assert not widget.thinking_toggle.isHidden()
    assert emu.thinking_text not in widget.answer_view.toPlainText()
    # Citations are checked against the sources exactly as for local answers (off the GUI thread).
    qtbot.waitUntil(
        lambda: window.conversation.citation_checker.idle and bool(widget.citations), timeout=10_000
    )
    assert [c.check for c in widget.citations] == [Check.VERIFIED]
    # Cost and cache figures of the turn, and the session's cost.
    assert turn.cost is not None
    assert turn.cost > 0
    assert f"cache hit 0 / miss {turn.prompt_tokens:,}" in widget.figures_label.text()
    assert "$" in widget.figures_label.text()
    assert "session $" in window.model_bar.state_label.text()

    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as second:
        _ask(window, "And the oven?")
    assert len(shown) == 1  # agreed once for this corpus
    hit = second.args[0].cached_tokens
    assert hit > 0  # the corpus went first and unchanged: the provider's cache served it
    second_miss = second.args[0].prompt_tokens - hit
    assert f"cache hit {hit:,} / miss {second_miss:,}" in window.conversation.widgets[1].figures_label.text()
    window.conversation.widgets[1].thinking_toggle.click()  # reasoning, shown apart from the answer
    shot(window, artifacts, "hosted-answer-deepseek.png")

    # The connection drops mid-answer: the part received stays, marked incomplete.
    emu.thinking_text = "Short."
    emu.answer_text = "The kettle is blue, the oven is broken, and nothing else in the notes says more."
    emu.faults.append("cut")
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as cut:
        _ask(window, "Tell me about the kitchen.")
    partial = cut.args[0]
    assert partial.stop_reason == "incomplete"
    assert partial.answer
    assert emu.answer_text.startswith(partial.answer)  # what arrived, unchanged
    assert "INCOMPLETE" in window.conversation.widgets[2].figures_label.text()
    assert "dropped" in window.statusBar().currentMessage()
    assert counter.chats() == 3

    # Continue the cut answer: the same consent, the text received stays and the rest follows.
    cut_widget = window.conversation.widgets[2]
    assert cut_widget.continue_button.isVisibleTo(cut_widget)
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as resumed:
        cut_widget.continue_button.click()
    whole = resumed.args[0]
    assert whole.stop_reason == "stop"
    assert whole.answer.startswith(partial.answer)
    assert len(whole.answer) > len(partial.answer)
    assert whole.output_tokens > partial.output_tokens  # both requests counted, and paid for
    assert whole.cost > partial.cost
    last = emu.requests[-1]["messages"]
    assert last[-2] == {"role": "assistant", "content": partial.answer}  # the cut text, resent
    assert not cut_widget.continue_button.isVisibleTo(cut_widget)
    assert len(shown) == 1
    assert counter.chats() == 4
    window.close()


def test_the_hosted_model_is_offered_when_the_local_one_cannot_load(
    qtbot: QtBot, ui_home: Path, kitchen: Path, tmp_path: Path,
    deepseek: tuple[str, deepseek_emulator.Emulator, Counter],
) -> None:  # fmt: skip
    url, _emu, counter = deepseek
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    _settings(ui_home, hosted_preset="deepseek", hosted_endpoint=url, default_model=str(broken))
    window, shown = _window(qtbot)
    window.start_background_work()
    qtbot.waitUntil(lambda: window.local.failure is not None, timeout=30_000)
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        window.add_paths([kitchen])
        _ask(window, "What colour is the kettle?")
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    dialog = shown[0]
    assert dialog.offer_label.isVisibleTo(dialog)
    assert "The local model cannot serve this" in dialog.offer_label.text()
    assert "DeepSeek API" in dialog.offer_label.text()
    dialog.cancel_button.click()
    assert counter.count() == 0
    assert window.where == WHERE_LOCAL
    assert window.question.toPlainText() == "What colour is the kettle?"
    window.close()


def test_settings_dialog_sets_the_endpoint_and_says_when_there_is_no_keyring(qtbot: QtBot) -> None:
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    from longdesk.app.secrets import keyring_problem
    from longdesk.app.settings import Settings
    from longdesk.ui.dialogs import SettingsDialog

    previous = keyring.get_keyring()
    try:
        keyring.set_keyring(NoKeyring())
        problem = keyring_problem()
    finally:
        keyring.set_keyring(previous)
    assert "keyring is not available" in problem
    dialog = SettingsDialog(Settings(hosted_preset="openai-compatible"))
    qtbot.addWidget(dialog)
    dialog.set_keyring_status(problem)
    assert "No usable OS keyring here" in dialog.keyring_status.text()
    assert "LONGDESK_API_KEY" in dialog.keyring_status.text()
    dialog.preset.setCurrentIndex(dialog.preset.findData("deepseek"))
    assert dialog.endpoint.text() == "https://api.deepseek.com"  # the preset's URL, filled in
    assert "DEEPSEEK_API_KEY" in dialog.key.toolTip()
    dialog.hosted_model.setText("deepseek-v4-pro")
    dialog.hosted_context.setValue(65_536)
    dialog.key.setText("sk-never-in-a-file")
    result = dialog.result_settings()
    assert (
        result.hosted_preset,
        result.hosted_endpoint,
        result.hosted_model,
        result.hosted_context_tokens,
    ) == (
        "deepseek",
        "https://api.deepseek.com",
        "deepseek-v4-pro",
        65_536,
    )
    assert "sk-never-in-a-file" not in result.to_json()
    dialog.set_keyring_status("")
    assert "kept in the OS keyring" in dialog.keyring_status.text()
