"""The whole path with the real default model: drop, count, budget, ask, stream, stop, reopen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.app.sessions import SessionStore
from longdesk.engine.backends.base import Progress
from longdesk.ui.main_window import MainWindow
from tests.ui.conftest import TEST_CONTEXT, TEST_OUTPUT
from tests.ui.helpers import drop_paths, ready_shot, shot

pytestmark = [pytest.mark.gui, pytest.mark.model, pytest.mark.slow]

LONG = 180_000  # generous: the CI machine is shared and llama.cpp gets a fraction of 2 cores


def _open(qtbot: QtBot, *, restore: bool) -> MainWindow:
    """The window as the launcher shows it; how fast it appears is bench/gui_startup.py's measure."""
    window = MainWindow(Paths.default(), restore_last_session=restore)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_drop_ask_stop_close_and_follow_up(
    qtbot: QtBot, ui_home: Path, code_folder: Path, pdf_book: Path, artifacts: Path
) -> None:
    window = _open(qtbot, restore=False)
    # The window is up before any model work: the model loads only after the first paint.
    assert window.local.info is None
    assert window.local.load_id == 0  # nothing asked of the engine yet
    with qtbot.waitSignal(window.model_loaded, timeout=LONG) as loaded:
        window.start_background_work()
    assert loaded.args[0].context_window == TEST_CONTEXT
    assert window.center.currentWidget() is window.welcome
    assert "Gemma 3 270m" in window.welcome.model_status.text()
    assert "270" in window.welcome.model_title.text()
    assert "fits this machine" in window.model_bar.fit_label.text()
    shot(window, artifacts, "01-first-run.png")

    # Drop a code folder and a PDF on the sources panel.
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG) as planned:
        assert drop_paths(window.sources, [code_folder, pdf_book])
    plan = planned.args[0]
    docs = {d.name: d for d in window.sources.model.documents()}
    assert {"harbour/src/tides.py", "harbour/README.md"} <= set(docs)
    spans = {s.doc_id: s.tokens for s in plan.spans}
    for doc in docs.values():
        assert doc.tokens == spans[doc.doc_id] > 0  # exact counts from the model's tokenizer
    issues = next(g for g in window.sources.model.groups if g.is_issues).rows
    reasons = " ".join(f"{i.name}: {i.reason}" for i in issues)
    assert "logo.bin: binary content" in reasons
    assert "node_modules" in reasons
    # The PDF is read page by page: listed as a document (not an issue), its pages anchored.
    assert pdf_book.name in docs, reasons
    assert pdf_book.name not in reasons
    pdf_span = next(s for s in plan.spans if s.name == pdf_book.name)
    pdf_text = plan.corpus_text[pdf_span.start : pdf_span.end]
    assert [f"<p{n}>" in pdf_text for n in (1, 2, 3)] == [True, True, True]
    assert "the harbour floods at noon" in " ".join(pdf_text.split())
    assert window.center.currentWidget() is window.work_page
    assert f"{plan.prefix_tokens:,}" in window.budget.label.text()
    assert f"of {TEST_CONTEXT:,} tokens" in window.budget.label.text()
    assert not window.budget.over
    ready_shot(qtbot, window, artifacts, "02-sources-and-budget.png")

    # Search within the list, then leave the README out: the corpus shrinks, exactly.
    window.sources.search.setText("tides")
    qtbot.waitUntil(lambda: window.sources.proxy.rowCount() >= 1)
    window.sources.search.clear()
    readme = docs["harbour/README.md"]
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG) as replanned:
        window.sources.model.set_included([readme.doc_id], False)
    assert replanned.args[0].prefix_tokens < plan.prefix_tokens
    assert readme.doc_id not in {s.doc_id for s in replanned.args[0].spans}
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        window.sources.model.set_included([readme.doc_id], True)

    # A reserve that cannot fit turns the meter red before anything is sent.
    window.question.setPlainText("When does the harbour flood?")
    window.apply_settings(dataclasses.replace(window.settings, max_output_tokens=TEST_CONTEXT * 2))
    assert window.budget.over
    assert not window.ask_button.isEnabled()
    assert "Over by" in window.budget.advice.text()
    assert window.budget.advice.isVisibleTo(window)
    shot(window, artifacts, "03-budget-over.png")
    window.ask()
    assert window.session.turns == ()
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        window.apply_settings(dataclasses.replace(window.settings, max_output_tokens=TEST_OUTPUT))
    assert not window.budget.over

    # Ask with Ctrl+Enter; the reading shows progress, the answer streams as Markdown.
    progress: list[Progress] = []
    window.engine.progressed.connect(lambda _rid, p: progress.append(p))
    chunks: list[str] = []
    window.engine.text_streamed.connect(lambda _rid, _kind, text: chunks.append(text))
    window.question.setFocus()
    with qtbot.waitSignal(window.answer_finished, timeout=LONG) as finished:
        QTest.keyClick(window.question, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(window.activity.isVisible, timeout=10_000)
        shot(window, artifacts, "04-reading-progress.png")
    turn = finished.args[0]
    assert turn.answer.strip()
    assert 0 < turn.output_tokens <= TEST_OUTPUT
    assert turn.cached_tokens > 0  # the corpus prefix is reused for the question
    assert any(p.stage == "prefill" and p.done == p.total for p in progress)
    assert "".join(chunks).strip() == turn.answer.strip()
    widget = window.conversation.widgets[0]
    assert "tok/s" in widget.figures_label.text()
    assert widget.copy_button.isEnabled()
    ready_shot(qtbot, window, artifacts, "05-answer.png")

    # Stop mid-answer with Esc.
    window.apply_settings(dataclasses.replace(window.settings, max_output_tokens=400))
    window.question.setPlainText("Repeat every line of every document, one by one, then write a poem.")
    qtbot.waitUntil(lambda: window.plan is not None, timeout=LONG)
    window.ask()
    qtbot.waitUntil(lambda: bool(window.session.turns[-1].answer), timeout=LONG)
    with qtbot.waitSignal(window.answer_finished, timeout=LONG) as stopped:
        QTest.keyClick(window, Qt.Key.Key_Escape)
    assert stopped.args[0].stop_reason == "cancelled"
    assert stopped.args[0].output_tokens < 400
    assert "stopped" in window.conversation.widgets[1].figures_label.text()
    shot(window, artifacts, "06-stopped.png")
    with qtbot.waitSignal(window.session_saved, timeout=30_000):
        window.apply_settings(dataclasses.replace(window.settings, max_output_tokens=TEST_OUTPUT))
        window.autosave()
    session_id = window.session.session_id
    window.close()

    saved = SessionStore(Paths.default().data / "sessions").load(session_id)
    assert saved.turns[0].stop_reason in ("stop", "length")
    assert saved.turns[1].stop_reason == "cancelled"
    assert saved.turns[1].answer  # the text streamed before Esc is kept

    # Reopen: the last session comes back with its conversation and its document list at once.
    window2 = _open(qtbot, restore=True)
    with qtbot.waitSignal(window2.model_loaded, timeout=LONG):
        window2.start_background_work()
    qtbot.waitUntil(lambda: window2.session.session_id == session_id, timeout=30_000)
    assert len(window2.conversation.widgets) == 2
    assert {d.name for d in window2.sources.model.documents()} == set(docs)
    qtbot.waitUntil(lambda: window2.plan is not None, timeout=LONG)
    window2.question.setPlainText("And at what hour is the tide high?")
    with qtbot.waitSignal(window2.answer_finished, timeout=LONG) as followed:
        window2.ask()
    assert followed.args[0].answer.strip()
    assert len(window2.session.turns) == 3
    # The corpus was not read again: its saved state came back from the snapshot folder.
    assert window2.reading_note.startswith("Restored from a saved snapshot"), window2.reading_note
    ready_shot(qtbot, window2, artifacts, "07-reopened-follow-up.png")
    window2.close()
