"""Start the Qt application and show the main window at once; the model loads later."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from longdesk.app import __version__
from longdesk.ui.interpreter import freeze_long_lived_objects, tune_interpreter

__all__ = ["freeze_long_lived_objects", "run_gui", "tune_interpreter"]


def run_gui(sources: Sequence[Path] = ()) -> int:
    """Show the window (on a new session with ``sources`` when given) and run the event loop.

    When this user's window is already open, ``sources`` are handed to it instead and this
    launch ends at once (``ui.single_instance``); a launch without sources opens a window of
    its own only when none is open either, else it brings the open one to the front.
    """
    tune_interpreter()
    QGuiApplication.setApplicationName("Longdesk")
    QGuiApplication.setApplicationDisplayName("Longdesk")
    QGuiApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("longdesk")
    # Fractional scale factors (125 %, 150 %) render crisply instead of being rounded.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    from longdesk.app.paths import Paths
    from longdesk.ui.single_instance import InstanceServer, hand_over, server_name

    paths = Paths.default()
    name = server_name(paths)
    if hand_over(name, sources):
        return 0
    from longdesk.ui.main_window import MainWindow
    from longdesk.ui.theme import apply_theme

    window = MainWindow(paths, restore_last_session=not sources)
    assert isinstance(app, QApplication)
    apply_theme(app, window.theme)
    window.theme_applied = True
    server = InstanceServer(name, window)
    server.paths_received.connect(window.open_paths)
    server.listen()
    window.show()
    freeze_long_lived_objects()

    def start() -> None:
        # Model loading, the session list and the last session start after the first paint.
        window.start_background_work()
        if sources:
            window.open_paths(list(sources))

    QTimer.singleShot(0, start)
    code = int(app.exec())
    server.close()
    return code
