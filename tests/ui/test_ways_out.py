"""The over-budget note offers the ways out that exist here, each one click: the hosted endpoint
(through the consent dialog), the loaded model at a larger context that fits memory, or leaving
the largest documents out. The real default model counts and loads; the hosted endpoint is the
DeepSeek emulator behind a counting listener, so "nothing was sent" is checked on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.ui.consent_dialog import ConsentDialog
from longdesk.ui.main_window import MainWindow
from longdesk.ui.ways_out import Ways
from longdesk.ui.widgets.model_bar import WHERE_LOCAL
from tests.hosted import deepseek_emulator
from tests.hosted.counting_proxy import Counter
from tests.ui.conftest import TEST_CONTEXT
from tests.ui.helpers import ready_shot
from tests.ui.test_hosted_window import _settings, deepseek  # noqa: F401 - the fixture

pytestmark = [pytest.mark.gui, pytest.mark.model, pytest.mark.slow]

LONG = 180_000


@pytest.fixture
def harbour_log(tmp_path: Path) -> Path:
    """About 3,000 tokens in one long log and 60 in a note: more than the tests' 2K context."""
    root = tmp_path / "harbour-records"
    root.mkdir()
    lines = [
        f"Day {n}: the tide was high at {n % 12 + 1} o'clock and the boats came home." for n in range(220)
    ]
    (root / "tide-log.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "note.md").write_text("# Note\n\nThe harbour floods at noon.\n", encoding="utf-8")
    return root


def _over_budget_window(qtbot: QtBot, sources: Path) -> MainWindow:
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.model_loaded, timeout=LONG):
        window.start_background_work()
    with qtbot.waitSignal(window.ways_out_glue.offered, timeout=LONG):
        window.add_paths([sources])
    assert window.budget.over
    assert window.plan is not None
    assert window.plan.prefix_tokens > TEST_CONTEXT
    return window


def test_a_configured_hosted_endpoint_is_offered_with_its_context_and_cost(
    qtbot: QtBot, ui_home: Path, harbour_log: Path, artifacts: Path,
    deepseek: tuple[str, deepseek_emulator.Emulator, Counter],  # noqa: F811 - the fixture
) -> None:  # fmt: skip
    url, _emu, counter = deepseek
    _settings(ui_home, hosted_preset="deepseek", hosted_endpoint=url)
    window = _over_budget_window(qtbot, harbour_log)
    button = window.ways_out.hosted_button
    assert button.isVisibleTo(window)
    assert "Ask DeepSeek API" in button.text()
    assert "1,048,576-token context" in button.text()
    assert "about $0.00" in button.text()  # a few thousand tokens at DeepSeek's prices
    ready_shot(qtbot, window, artifacts, "budget-over-ways-out.png")

    shown: list[ConsentDialog] = []
    window.hosted.consent_shown.connect(shown.append)
    window.question.setPlainText("When is the tide high on day 7?")
    button.click()
    qtbot.waitUntil(lambda: bool(shown), timeout=LONG)
    dialog = shown[0]
    assert dialog.offer_label.isVisibleTo(dialog)
    assert "DeepSeek API" in dialog.offer_label.text()
    dialog.cancel_button.click()
    assert counter.count() == 0  # nothing left the machine
    assert window.where == WHERE_LOCAL
    assert window.question.toPlainText() == "When is the tide high on day 7?"
    window.close()


def test_the_loaded_model_at_a_larger_context_or_leaving_documents_out(
    qtbot: QtBot, ui_home: Path, harbour_log: Path
) -> None:
    window = _over_budget_window(qtbot, harbour_log)
    ways: Ways = window.ways_out.ways
    assert ways.hosted is not None
    assert not ways.hosted.configured  # none set up: offered as one that can be
    assert (
        "Set up a hosted endpoint (DeepSeek API: 1,048,576-token context)"
        in window.ways_out.hosted_button.text()
    )
    assert ways.model is not None
    assert ways.model.same
    assert ways.model.context > TEST_CONTEXT
    assert (
        f"Reload Gemma 3 270m with a {ways.model.context:,}-token context"
        in window.ways_out.model_button.text()
    )
    assert ways.leave_out is not None
    assert "Leave out the largest document" in window.ways_out.leave_out_button.text()

    # One click leaves the long log out; the rest fits.
    with qtbot.waitSignal(window.corpus_planned, timeout=LONG) as planned:
        window.ways_out.leave_out_button.click()
    assert planned.args[0].budget.fits
    assert not window.budget.over
    assert not window.ways_out.isVisibleTo(window)
    assert {d.name for d in window.session.documents if not d.included} == {"harbour-records/tide-log.txt"}

    # Put it back, then one click reloads the model with a context that holds it all.
    with qtbot.waitSignal(window.ways_out_glue.offered, timeout=LONG):
        window.sources.model.set_included(ways.leave_out.doc_ids, True)
    with qtbot.waitSignal(window.model_loaded, timeout=LONG) as loaded:
        window.ways_out.model_button.click()
    assert loaded.args[0].context_window == ways.model.context
    qtbot.waitUntil(lambda: window.plan is not None and not window.budget.over, timeout=LONG)
    assert window.settings.context_tokens == ways.model.context  # kept for the next start
    window.close()
