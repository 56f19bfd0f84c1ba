"""File ▸ Run a question list… with the real default model: a JSONL list answered one question
at a time, each answer kept as a thread of the sources, the report exported, a thread opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.ui.batch_dialog import BatchDialog
from longdesk.ui.main_window import MainWindow
from tests.ui.helpers import drop_paths, shot

pytestmark = [pytest.mark.gui, pytest.mark.model, pytest.mark.slow]
LONG = 240_000


def test_a_question_list_runs_as_threads_and_exports_the_report(
    qtbot: QtBot, ui_home: Path, code_folder: Path, tmp_path: Path, artifacts: Path
) -> None:
    settings = ui_home / "config" / "settings.json"  # one thread: see tests/app/test_batch_model.py
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "n_threads": 1}))
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    with qtbot.waitSignal(window.model_loaded, timeout=LONG):
        window.start_background_work()
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG):
        assert drop_paths(window.sources, [code_folder])

    action = next(a for a in window.findChildren(QAction) if a.text() == "Run a question list…")
    action.trigger()
    dialog = window.findChild(BatchDialog)
    assert isinstance(dialog, BatchDialog)
    assert dialog.isVisible()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "When does the harbour flood?"\n')
    assert not dialog.load_file(bad)
    assert "bad.jsonl, line 1: not JSON" in dialog.status.text()

    questions = tmp_path / "harbour.jsonl"
    questions.write_text(
        '{"id": "flood", "question": "When does the harbour flood?", "max_tokens": 6}\n'
        '{"id": "tide", "question": "What does the tide function return?", "max_tokens": 6}\n'
    )
    assert dialog.load_file(questions)
    assert dialog.table.rowCount() == 2
    assert dialog.table.item(0, 0).text() == "flood"
    assert dialog.start_button.isEnabled()
    shot(dialog, artifacts, "batch-01-loaded.png")

    done: list[object] = []
    dialog.question_done.connect(lambda row, record: done.append((row, record)))
    with qtbot.waitSignal(dialog.run_finished, timeout=LONG) as finished:
        dialog.start()
        assert dialog.stop_button.isEnabled()
    assert finished.args == [2]
    assert [row for row, _r in done] == [0, 1]  # type: ignore[misc]
    assert dialog.table.item(0, 2).text() == "answered"
    assert dialog.table.item(1, 3).text().endswith(" s")
    assert dialog.progress.value() == 2
    assert "2 of 2 answered" in dialog.status.text()
    shot(dialog, artifacts, "batch-02-answered.png")

    def threads_saved() -> bool:
        titles = {s.title for s in window.store.list().sessions}
        return {"When does the harbour flood?", "What does the tide function return?"} <= titles

    qtbot.waitUntil(threads_saved, timeout=20_000)

    out = tmp_path / "export"
    out.mkdir()
    dialog.export_to(out)
    qtbot.waitUntil((out / "report.md").exists, timeout=20_000)
    report = (out / "report.md").read_text()
    assert "### flood. When does the harbour flood?" in report
    assert "### tide. What does the tide function return?" in report
    assert "2 of 2 answered" in report
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    answers = [r for r in records if r["type"] == "answer"]
    assert [a["qid"] for a in answers] == ["flood", "tide"]
    assert all(a["answer"] == dialog.records[n]["answer"] for n, a in enumerate(answers))

    with qtbot.waitSignal(window.sessions_listed, timeout=20_000):
        dialog.on_table_cell_double_clicked(1, 1)
    qtbot.waitUntil(lambda: window.session.title == "What does the tide function return?", timeout=20_000)
    assert window.session.turns[0].answer == answers[1]["answer"]
    shot(window, artifacts, "batch-03-thread-opened.png")
