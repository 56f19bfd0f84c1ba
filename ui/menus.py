"""The menu bar and its keyboard shortcuts (new session Ctrl+N, add sources Ctrl+O, ask
Ctrl+Enter, stop Esc, find Ctrl+F), built for a MainWindow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from longdesk.app import logs
from longdesk.ui.batch_dialog import open_batch_dialog
from longdesk.ui.theme import ThemeMode

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow


@dataclass(frozen=True, slots=True)
class MenuActions:
    """What the window keeps of its menus."""

    recent: QMenu
    themes: dict[ThemeMode, QAction]


def build_menus(window: MainWindow) -> MenuActions:
    """Create the menus of ``window``; every action calls one of its slots."""
    bar = window.menuBar()

    def action(
        menu_name: str,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
    ) -> QAction:
        menu = menus[menu_name]
        act = QAction(text, window)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    menus = {name: bar.addMenu(name) for name in ("&File", "&Edit", "&Conversation", "&View", "&Help")}
    action("&File", "New session", window.new_session, QKeySequence.StandardKey.New)
    action("&File", "New thread on these sources", window.new_thread, "Ctrl+Shift+N")
    action("&File", "Add files…", window.sources_glue.on_add_files, QKeySequence.StandardKey.Open)
    action("&File", "Add folder…", window.sources_glue.on_add_folder, "Ctrl+Shift+O")
    action("&File", "Use another model…", window.local.on_choose_model)
    recent = menus["&File"].addMenu("Open recent")
    action("&File", "Export conversation as Markdown…", window.on_export, "Ctrl+E")
    action("&File", "Run a question list…", lambda: open_batch_dialog(window))
    menus["&File"].addSeparator()
    action("&File", "Settings…", window.settings_glue.on_settings, QKeySequence.StandardKey.Preferences)
    action("&File", "Quit", window.close, QKeySequence.StandardKey.Quit)
    action("&Edit", "Find…", window.on_find, QKeySequence.StandardKey.Find)
    action("&Conversation", "Ask", window.ask, "Ctrl+Return")
    action("&Conversation", "Stop", window.stop, "Escape")
    action(
        "&Conversation", "Regenerate last answer", lambda: window.regenerate(len(window.session.turns) - 1)
    )
    group = QActionGroup(window)
    theme_menu = menus["&View"].addMenu("Theme")
    themes: dict[ThemeMode, QAction] = {}
    for mode, label in (
        (ThemeMode.SYSTEM, "Follow the system"),
        (ThemeMode.LIGHT, "Light"),
        (ThemeMode.DARK, "Dark"),
    ):
        act = QAction(label, window, checkable=True)
        act.setChecked(mode is window.theme)
        act.triggered.connect(lambda _c=False, m=mode: window.set_theme(m))
        group.addAction(act)
        theme_menu.addAction(act)
        themes[mode] = act
    action("&Help", "Show log", lambda: show_log(window))
    action("&Help", "Copy diagnostics", lambda: copy_diagnostics(window))
    menus["&Help"].addSeparator()
    action("&Help", "About Longdesk", window.settings_glue.on_about)
    return MenuActions(recent, themes)


def show_log(window: QMainWindow) -> bool:
    """Help ▸ Show log: open the log file in the system's viewer; False when there is none."""
    path = logs.log_file()
    if path is None or not path.is_file():
        window.statusBar().showMessage("There is no log file yet (it starts with the first entry)", 10_000)
        return False
    opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
    window.statusBar().showMessage(f"Log: {path}" if opened else f"Could not open {path}", 15_000)
    return bool(opened)


def copy_diagnostics(window: QMainWindow) -> str:
    """Help ▸ Copy diagnostics: versions, platform and the log's last lines, on the clipboard."""
    from PySide6 import __version__ as pyside_version

    text = logs.diagnostics({"Qt binding": f"PySide6 {pyside_version}", "Qt platform": _platform_name()})
    clipboard = QGuiApplication.clipboard()
    clipboard.setText(text)
    window.statusBar().showMessage("Diagnostics copied to the clipboard", 10_000)
    return text


def _platform_name() -> str:
    app = QGuiApplication.instance()
    return QGuiApplication.platformName() if app is not None else "?"
