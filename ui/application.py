"""Start the Qt application and show the main window at once; the model loads later."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app import __version__


def run_gui() -> int:
    QGuiApplication.setApplicationName("Longdesk")
    QGuiApplication.setApplicationDisplayName("Longdesk")
    QGuiApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("longdesk")
    # Fractional scale factors (125 %, 150 %) render crisply instead of being rounded.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    from ui.main_window import MainWindow
    from ui.theme import apply_theme

    window = MainWindow()
    assert isinstance(app, QApplication)
    apply_theme(app, window.theme)
    window.theme_applied = True
    window.show()
    # Model loading, the session list and the last session start after the first paint.
    QTimer.singleShot(0, window.start_background_work)
    return int(app.exec())
