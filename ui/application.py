"""Start the Qt application and show the main window at once; the model loads later."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app import __version__
from ui.main_window import MainWindow


def run_gui() -> int:
    QGuiApplication.setApplicationName("Longdesk")
    QGuiApplication.setApplicationDisplayName("Longdesk")
    QGuiApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("longdesk")
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow()
    window.show()
    # Model discovery runs after the first paint so the window never waits for it.
    QTimer.singleShot(0, window.start_background_work)
    return int(app.exec())
