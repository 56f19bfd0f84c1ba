"""The window opens at once and reports the default model once it is checked off-thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.paths import Paths
from ui.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_window_shows_before_the_model_and_then_reports_it(
    qtbot: QtBot, longdesk_home: Path, artifacts: Path
) -> None:
    t0 = time.perf_counter()
    window = MainWindow(Paths.default())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert time.perf_counter() - t0 < 1.5
    assert "Preparing" in window.model_label.text()
    with qtbot.waitSignal(window.model_ready, timeout=30_000) as blocker:
        window.start_background_work()
    entry = blocker.args[0]
    assert entry.architecture == "gemma3"
    assert "context 32,768 tokens" in window.model_label.text()
    assert window.grab().save(str(artifacts / "first-run.png"))
