"""The menu bar and its keyboard shortcuts (new session Ctrl+N, add sources Ctrl+O, ask
Ctrl+Enter, stop Esc, find Ctrl+F), built for a main window from the slots it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from longdesk.app import logs
from longdesk.ui.theme import ThemeMode

Slot0 = Callable[[], object]


@dataclass(frozen=True, slots=True)
class MenuSlots:
    """What each menu action does."""

    new_session: Slot0
    new_thread: Slot0
    add_files: Slot0
    add_folder: Slot0
    choose_model: Slot0
    export: Slot0
    run_question_list: Slot0
    settings: Slot0
    quit: Slot0
    find: Slot0
    ask: Slot0
    stop: Slot0
    regenerate_last: Slot0
    about: Slot0
    set_theme: Callable[[ThemeMode], object]


def build_menus(
    window: QMainWindow, slots: MenuSlots, recent: QMenu, theme: ThemeMode
) -> dict[ThemeMode, QAction]:
    """Create the menus of ``window`` (``recent`` becomes File ▸ Open recent); returns the theme
    actions, one per ThemeMode."""
    bar = window.menuBar()

    def action(
        menu_name: str,
        text: str,
        slot: Slot0,
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
    action("&File", "New session", slots.new_session, QKeySequence.StandardKey.New)
    action("&File", "New thread on these sources", slots.new_thread, "Ctrl+Shift+N")
    action("&File", "Add files…", slots.add_files, QKeySequence.StandardKey.Open)
    action("&File", "Add folder…", slots.add_folder, "Ctrl+Shift+O")
    action("&File", "Use another model…", slots.choose_model)
    recent.setTitle("Open recent")
    menus["&File"].addMenu(recent)
    action("&File", "Export conversation as Markdown…", slots.export, "Ctrl+E")
    action("&File", "Run a question list…", slots.run_question_list)
    menus["&File"].addSeparator()
    action("&File", "Settings…", slots.settings, QKeySequence.StandardKey.Preferences)
    action("&File", "Quit", slots.quit, QKeySequence.StandardKey.Quit)
    action("&Edit", "Find…", slots.find, QKeySequence.StandardKey.Find)
    action("&Conversation", "Ask", slots.ask, "Ctrl+Return")
    action("&Conversation", "Stop", slots.stop, "Escape")
    action("&Conversation", "Regenerate last answer", slots.regenerate_last)
    group = QActionGroup(window)
    theme_menu = menus["&View"].addMenu("Theme")
    themes: dict[ThemeMode, QAction] = {}
    for mode, label in (
        (ThemeMode.SYSTEM, "Follow the system"),
        (ThemeMode.LIGHT, "Light"),
        (ThemeMode.DARK, "Dark"),
    ):
        act = QAction(label, window, checkable=True)
        act.setChecked(mode is theme)
        act.triggered.connect(lambda _c=False, m=mode: slots.set_theme(m))
        group.addAction(act)
        theme_menu.addAction(act)
        themes[mode] = act
    action("&Help", "Show log", lambda: show_log(window))
    action("&Help", "Copy diagnostics", lambda: copy_diagnostics(window))
    menus["&Help"].addSeparator()
    action("&Help", "About Longdesk", slots.about)
    return themes


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
