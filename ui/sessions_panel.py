"""The session list: open, rename, delete; the most recent first."""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.sessions import SessionSummary


def when(stamp: float) -> str:
    age = time.time() - stamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return time.strftime("%H:%M", time.localtime(stamp))
    return time.strftime("%Y-%m-%d", time.localtime(stamp))


class SessionsPanel(QWidget):
    """Signals:
    open_requested(str): session id to open.
    rename_requested(str, str): session id, new title.
    delete_requested(str): session id.
    """

    open_requested = Signal(str)
    rename_requested = Signal(str, str)
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.list = QListWidget(self)
        self.list.setObjectName("sessionList")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self.on_list_custom_context_menu_requested)
        self.list.itemActivated.connect(self.on_list_item_activated)
        self.problems = QLabel("", self)
        self.problems.setObjectName("sessionProblems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d0453a;")
        self.problems.setVisible(False)
        hint = QLabel("Double-click to open · right-click to rename or delete", self)
        hint.setObjectName("sourcesSummary")
        layout.addWidget(self.list, 1)
        layout.addWidget(self.problems)
        layout.addWidget(hint)
        self.current_id = ""

    def set_sessions(self, sessions: Sequence[SessionSummary], problems: Sequence[str] = ()) -> None:
        self.list.clear()
        for s in sessions:
            item = QListWidgetItem(f"{s.title}\n{when(s.updated)}")
            item.setData(Qt.ItemDataRole.UserRole, s.session_id)
            item.setToolTip(str(s.path))
            font = item.font()
            font.setBold(s.session_id == self.current_id)
            item.setFont(font)
            self.list.addItem(item)
        self.problems.setText("\n".join(problems))
        self.problems.setVisible(bool(problems))

    def ids(self) -> list[str]:
        return [str(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    @Slot(QListWidgetItem)
    def on_list_item_activated(self, item: QListWidgetItem) -> None:
        self.open_requested.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    @Slot(QPoint)
    def on_list_custom_context_menu_requested(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        sid = str(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        open_action = menu.addAction("Open")
        rename_action = menu.addAction("Rename…")
        delete_action = menu.addAction("Delete…")
        chosen = menu.exec(self.list.mapToGlobal(pos))
        if chosen is open_action:
            self.open_requested.emit(sid)
        elif chosen is rename_action:
            title = item.text().split("\n", 1)[0]
            new, ok = QInputDialog.getText(self, "Rename session", "Name:", text=title)
            if ok and new.strip():
                self.rename_requested.emit(sid, new)
        elif chosen is delete_action:
            answer = QMessageBox.question(
                self, "Delete session", f"Delete “{item.text().split(chr(10))[0]}”?"
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.delete_requested.emit(sid)
