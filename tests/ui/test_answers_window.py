"""The window with the embedded default model: a one-line corpus, its answer, a located citation.

The regression of the issue: the answer pane filled with "You answer questions about the
documents below..." and the packed corpus. Now the base model reads in the reading format, the
answer streams without any of the instructions, and a *located* citation, drawn apart from the
model's own, opens the line the answer was found on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from longdesk.app.citations import Check
from longdesk.app.paths import Paths
from longdesk.engine.context.pack import default_instructions
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets.safe_browser import CHECK_COLORS
from tests.ui.helpers import drop_paths, shot

pytestmark = [pytest.mark.gui, pytest.mark.model, pytest.mark.slow]

LONG = 180_000


def test_the_default_model_answers_and_the_answer_is_located(
    qtbot: QtBot, ui_home: Path, tmp_path: Path, artifacts: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keeper.txt").write_text("The lighthouse keeper on Skerry Island is named Tobias Venn.\n")
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.model_loaded, timeout=LONG) as loaded:
        window.start_background_work()
    assert any("Prompt format: reading" in n for n in loaded.args[0].notes)
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        assert drop_paths(window.sources, [folder])
    chunks: list[str] = []
    window.engine.text_streamed.connect(lambda _rid, _kind, text: chunks.append(text))
    window.question.setPlainText("Who keeps the lighthouse?")
    window.question.setFocus()
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.answer_finished, timeout=LONG) as finished:
        QTest.keyClick(window.question, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    seconds = time.perf_counter() - t0
    turn = finished.args[0]
    streamed = "".join(chunks)
    assert "Tobias Venn" in turn.answer
    assert streamed.strip() == turn.answer.strip()
    for line in default_instructions().splitlines():  # nothing of the instructions streams
        assert line[:40] not in streamed
    assert "<doc" not in streamed
    assert "Question:" not in streamed
    assert turn.stop_reason == "stop"
    assert 0 < turn.output_tokens <= 64  # the reading format's answer cap
    widget = window.conversation.widgets[0]
    qtbot.waitUntil(lambda: any(c.check is Check.LOCATED for c in widget.citations), timeout=20_000)
    (located,) = [c for c in widget.citations if c.check is Check.LOCATED]
    assert located.place() == "line 1"
    assert "not cited by the model" in located.reason
    assert "1 located" in widget.cites_label.text()
    shown = widget.answer_view.toPlainText()
    assert shown.startswith(turn.answer.strip())
    assert located.raw in shown  # drawn after the answer
    colours = {fmt.foreground().color().name() for _h, fmt in widget.answer_view.citation_formats()}
    assert colours == {CHECK_COLORS[Check.LOCATED].name()}
    assert CHECK_COLORS[Check.LOCATED].name() != CHECK_COLORS[Check.VERIFIED].name()
    shot(window, artifacts, "answer-located.png")

    (_href, rect) = widget.answer_view.citation_rects()[0]
    with qtbot.waitSignal(window.viewer_shown, timeout=20_000) as opened:
        QTest.mouseClick(widget.answer_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args[0].check is Check.LOCATED
    assert window.viewer.code_view.marked == (1, 1)
    shot(window, artifacts, "answer-located-opened.png")
    print(f"answered in {seconds:.1f} s after asking")
