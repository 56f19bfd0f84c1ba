"""Desktop manners without a model: themes, sessions list, lazy reopen, export, shortcuts, About."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.app.sessions import DocRecord, Session, SessionStore, TurnRecord
from longdesk.app.settings import Settings
from longdesk.engine.corpus.ids import assign_ids
from longdesk.ui.main_window import MainWindow
from longdesk.ui.theme import ThemeMode
from longdesk.ui.workers.engine_worker import local_backend
from tests.ui.helpers import drop_paths, ready_shot, shot

pytestmark = pytest.mark.gui


def _window(qtbot: QtBot, **kwargs: object) -> MainWindow:
    window = MainWindow(Paths.default(), backend_factory=local_backend, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    qtbot.waitExposed(window)
    return window


def _saved_session(folder: Path, code_folder: Path, title: str, turns: int) -> Session:
    # The ids the corpus engine gives these documents (stable, derived from their names).
    readme_id, tides_id = assign_ids(["harbour/README.md", "harbour/src/tides.py"])
    docs = (
        DocRecord(
            readme_id, "harbour/README.md", str(code_folder / "README.md"), "markdown", "3 lines", 20, True, 3
        ),
        DocRecord(
            tides_id,
            "harbour/src/tides.py",
            str(code_folder / "src/tides.py"),
            "code",
            "12 lines",
            90,
            True,
            12,
        ),
    )
    answers = tuple(
        TurnRecord(
            f"question {i}?",
            f"Answer {i} with a cite [{tides_id}, lines 5-6].",
            output_tokens=12,
            seconds=0.5,
        )
        for i in range(turns)
    )
    session = dataclasses.replace(
        Session.new(title, (str(code_folder),)), documents=docs, turns=answers, model="gemma.gguf"
    )
    return SessionStore(folder).save(session)


@pytest.mark.model
def test_theme_follows_choice_and_is_remembered(qtbot: QtBot, ui_home: Path, artifacts: Path) -> None:
    window = _window(qtbot, restore_last_session=False)
    window.set_theme(ThemeMode.DARK)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    with qtbot.waitSignal(window.model_loaded, timeout=180_000):  # the picture shows the window ready
        window.start_background_work()
    ready_shot(qtbot, window, artifacts, "theme-dark.png")
    window.set_theme(ThemeMode.LIGHT)
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    assert window.theme_actions[ThemeMode.LIGHT].isChecked()
    window.set_theme(ThemeMode.DARK)
    window.close()
    again = _window(qtbot, restore_last_session=False)
    assert again.theme is ThemeMode.DARK
    again.set_theme(ThemeMode.SYSTEM)
    again.close()


def test_sessions_list_rename_delete_and_lazy_reopen(
    qtbot: QtBot, ui_home: Path, code_folder: Path, tmp_path: Path, artifacts: Path
) -> None:
    folder = Paths.default().data / "sessions"
    big = _saved_session(folder, code_folder, "Tides", turns=45)
    other = _saved_session(folder, code_folder, "Other", turns=1)
    (folder / "broken.longdesk.json").write_text("{ not json", encoding="utf-8")
    window = _window(qtbot, restore_last_session=False)
    with qtbot.waitSignal(window.sessions_listed, timeout=10_000) as listed:
        window.refresh_sessions()
    assert {s.title for s in listed.args[0].sessions} == {"Tides", "Other"}
    assert not window.sessions_panel.problems.isHidden()
    assert "kept aside" in window.sessions_panel.problems.text()

    # Opening shows the stored document list and the last 30 turns at once; the sources are
    # read again in the background (not on the GUI thread) before the next question.
    with qtbot.waitSignal(window.sessions_listed, timeout=10_000):
        window.open_session(big.session_id)
    assert window.session.session_id == big.session_id
    assert len(window.conversation.widgets) == 30
    assert not window.conversation.earlier_button.isHidden()
    assert [d.name for d in window.sources.model.documents()] == ["harbour/README.md", "harbour/src/tides.py"]
    qtbot.waitUntil(lambda: window.corpus is not None, timeout=20_000)
    window.conversation.on_earlier_button_clicked()
    assert len(window.conversation.widgets) == 45
    window.left_tabs.setCurrentWidget(window.sessions_panel)
    inner = window.conversation.widget()
    # Every turn gets the height its contents need (nothing is squeezed).
    qtbot.waitUntil(lambda: inner.height() >= inner.minimumSizeHint().height(), timeout=5000)
    last = window.conversation.widgets[44]
    qtbot.waitUntil(lambda: last.question_label.height() >= last.question_label.sizeHint().height())
    shot(window, artifacts, "sessions-reopened.png")

    with qtbot.waitSignal(window.sessions_listed, timeout=10_000):
        window.rename_session(other.session_id, "Renamed  one")
    qtbot.waitUntil(lambda: "Renamed one" in [s.title for s in SessionStore(folder).list().sessions])
    with qtbot.waitSignal(window.sessions_listed, timeout=10_000):
        window.delete_session(other.session_id)
    qtbot.waitUntil(lambda: other.session_id not in window.sessions_panel.ids())

    out = tmp_path / "export.md"
    window.export_to(out)
    qtbot.waitUntil(out.exists, timeout=10_000)
    text = out.read_text(encoding="utf-8")
    tides_id = assign_ids(["harbour/README.md", "harbour/src/tides.py"])[1]
    assert f"[{tides_id}, lines 5-6] (harbour/src/tides.py, lines 5-6)" in text
    assert text.startswith("# Tides")


def test_drop_routes_models_and_sources(
    qtbot: QtBot, ui_home: Path, code_folder: Path, tmp_path: Path
) -> None:
    window = _window(qtbot, restore_last_session=False)
    models: list[object] = []
    sources: list[object] = []
    window.sources.model_dropped.disconnect()
    window.sources.sources_dropped.disconnect()
    window.sources.model_dropped.connect(models.append)
    window.sources.sources_dropped.connect(sources.append)
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    assert drop_paths(window.sources, [gguf, code_folder])
    assert models == [gguf]
    assert sources == [[code_folder]]
    # The filter narrows the tree to matching documents.
    window.sources.set_documents(
        [
            DocRecord("D1", "harbour/README.md", "/x/README.md", "markdown", "3 lines", 20),
            DocRecord("D2", "harbour/src/tides.py", "/x/tides.py", "code", "12 lines", 90),
        ],
        [("logo.bin", "skipped", "binary content")],
        ["/x/harbour"],
    )
    window.sources.search.setText("tides")
    proxy = window.sources.proxy
    group = proxy.index(0, 0)
    assert proxy.rowCount(group) == 1
    assert proxy.index(0, 0, group).data() == "src/tides.py"


def test_settings_round_trip_and_keys_never_in_the_file(qtbot: QtBot, ui_home: Path) -> None:
    window = _window(qtbot, restore_last_session=False)
    new = dataclasses.replace(window.settings, hosted_endpoint="http://127.0.0.1:9/v1", n_threads=3)
    window.apply_settings(new)
    window.save_runner.wait(5000)
    qtbot.waitUntil(lambda: "127.0.0.1:9" in (Paths.default().config / "settings.json").read_text())
    data = json.loads((Paths.default().config / "settings.json").read_text())
    assert data["n_threads"] == 3
    assert not any("key" in k.lower() for k in data)


def test_about_names_the_bundled_llama_cpp(qtbot: QtBot, ui_home: Path) -> None:
    from longdesk.ui.dialogs import AboutDialog, SettingsDialog, llama_versions

    version, system_info = llama_versions()
    assert version == "0.3.36"
    assert "AVX" in system_info or "CPU" in system_info
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.set_llama(version, system_info)
    text = dialog.versions.text()
    assert "llama-cpp-python (bundled llama.cpp)" in text
    assert "0.3.36" in text
    assert "PySide6" in text
    settings = SettingsDialog(dataclasses.replace(Settings(), n_threads=4))
    qtbot.addWidget(settings)
    settings.key.setText("sk-secret")
    settings.endpoint.setText("http://127.0.0.1:8000/v1")
    result = settings.result_settings()
    assert result.n_threads == 4
    assert result.hosted_endpoint == "http://127.0.0.1:8000/v1"
    assert "sk-secret" not in result.to_json()


def test_turn_renders_markdown_reasoning_figures_and_copy(qtbot: QtBot, artifacts: Path) -> None:
    from longdesk.ui.widgets.conversation import ConversationView

    answer = (
        "The tide is **high** at noon [D1, line 2].\n\n"
        "| hour | tide |\n|---|---|\n| 12 | high |\n| 18 | low |\n\n"
        "```python\ndef tide(hour):\n    return 'high'\n```\n"
    )
    turn = TurnRecord(
        "When is the tide high?",
        answer,
        thinking="The table lists hour 12 as high.",
        prompt_tokens=1200,
        cached_tokens=1100,
        output_tokens=50,
        seconds=2.0,
        cost=0.0012,
        currency="$",
    )
    view = ConversationView(lambda: (None, {}))
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.set_turns([turn])
    widget = view.widgets[0]
    doc = widget.answer_view.document()
    assert doc.toPlainText().count("high") >= 2
    assert "|12|high|" in doc.toMarkdown().replace(" ", "")  # a real table, not pipes in text
    assert "```python" in doc.toMarkdown()
    assert not widget.thinking_toggle.isHidden()
    assert widget.thinking_view.isHidden()  # reasoning starts collapsed once the answer is done
    widget.thinking_toggle.click()
    assert not widget.thinking_view.isHidden()
    figures = widget.figures_label.text()
    assert "50 tokens" in figures
    assert "25.0 tok/s" in figures
    assert "1,100 of 1,200 prompt tokens cached" in figures
    assert "$0.0012" in figures
    widget.copy_button.click()
    assert QApplication.clipboard().text() == answer
    shot(view, artifacts, "turn-markdown-reasoning.png")
