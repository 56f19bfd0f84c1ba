"""Views redraw from the changes the workbench state reports: the conversation turn by turn, the
page, title and ask controls; located citations found by the conversation are saved. No model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.app.sessions import TurnRecord
from longdesk.app.workbench import Change
from longdesk.ui.main_window import MainWindow
from longdesk.ui.widgets.conversation import ConversationView

pytestmark = pytest.mark.gui


def test_the_conversation_redraws_only_the_turns_that_changed(qtbot: QtBot) -> None:
    view = ConversationView(lambda: (None, {}))
    qtbot.addWidget(view)
    first = TurnRecord("First?", "One.", created=1.0)
    second = TurnRecord("Second?", "", created=2.0)
    view.sync_turns([first, second], 1)
    widgets = dict(view.widgets)
    assert widgets[1].figures_label.text() == "answering…"

    more = dataclasses.replace(second, answer="Two")
    view.sync_turns([first, more], 1)
    assert view.widgets == widgets  # the same widgets, redrawn in place
    assert view.widgets[1].turn is more
    assert view.widgets[0].turn is first

    view.sync_turns([first, more], -1)  # the answer ended with nothing new: no longer streaming
    assert view.widgets[1].figures_label.text() != "answering…"
    assert view.widgets[1].regenerate_button.isEnabled()

    again = TurnRecord("Second?", "", created=3.0)  # regenerated: a new turn in its place
    view.sync_turns([first, again], 1)
    assert view.widgets[0] is widgets[0]
    assert view.widgets[1] is not widgets[1]
    assert view.turns == [first, again]

    view.sync_turns([first], -1)
    assert sorted(view.widgets) == [0]


def test_the_window_redraws_what_the_state_reports(qtbot: QtBot, ui_home: Path) -> None:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    state = window.workbench
    seen: list[Change] = []
    state.subscribe(seen.append)
    assert window.center.currentWidget() is window.welcome

    state.set_pending("When does the harbour flood?")
    assert window.center.currentWidget() is window.work_page
    assert "sent as soon as" in window.ask_hint.text()
    assert window.windowTitle() == "New session — Longdesk"
    state.set_pending(None)

    state.begin_turn("When does the harbour flood?", "tiny")
    assert window.windowTitle() == "When does the harbour flood? — Longdesk"
    assert window.stop_button.isVisibleTo(window)
    assert not window.ask_button.isVisibleTo(window)
    assert sorted(window.conversation.widgets) == [0]
    state.append_delta("answer", "At noon.")
    assert window.conversation.widgets[0].turn.answer == "At noon."

    state.end_turn("stop")
    assert not window.stop_button.isVisibleTo(window)
    assert window.ask_button.isVisibleTo(window)
    assert window.thread_button.isEnabled()
    assert seen[:3] == [Change.PENDING, Change.PENDING, Change.TURNS | Change.META]

    with qtbot.waitSignal(window.session_saved, timeout=20_000) as saved:
        window.conversation.located_found.emit(0, ["[D1, line 2]"])
    assert state.session.turns[0].located == ("[D1, line 2]",)
    assert saved.args[0].turns[0].located == ("[D1, line 2]",)
    assert window.store.load(state.session.session_id).turns[0].located == ("[D1, line 2]",)

    state.new_thread()
    assert window.conversation.widgets == {}
    assert not window.thread_button.isEnabled()
