"""Start the Qt application and show the main window at once; the model loads later."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from longdesk.app import __version__

# How long a thread running Python may keep the GIL while another waits for it. Python's 5 ms
# default means each GIL hand-over the GUI thread waits for (one per Qt-to-Python call) can
# cost 5 ms while a worker counts tokens or a pool thread imports numpy and llama.cpp; a tick
# of the event loop needs several. 1 ms keeps those phases inside the 50 ms stall budget
# (bench/gui_startup.py) at a negligible cost to the workers, whose heavy parts run in C.
GIL_SWITCH_INTERVAL_S = 0.001


def tune_interpreter() -> None:
    """Make the GUI thread wait less for the GIL (process-wide; the GUI process only)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def freeze_long_lived_objects() -> None:
    """Exempt the objects alive now (modules, widgets, the loaded libraries' Python side) from
    later garbage-collector passes.

    A full collection walks every tracked object holding the GIL: with Qt, numpy and
    llama-cpp-python loaded that is 25-50 ms, and when a worker thread triggers it the GUI
    thread waits that long (measured in bench/gui_startup.py as the model-load stall). Called
    once the window is built and again once the model is loaded, so later passes walk only
    what was made since. Objects frozen here are never collected: startup garbage stays, a
    few hundred kilobytes at most.
    """
    gc.freeze()


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
