"""Helpers for window tests: simulated drag and drop, and screenshots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget


def drop_paths(target: QWidget, paths: Sequence[Path]) -> bool:
    """Drag ``paths`` over ``target`` and drop them, as a file manager would; returns accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = target.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        enter = QDragEnterEvent(QPointF(centre), *args)  # type: ignore[call-overload]  # Qt 6.12+
    except TypeError:
        enter = QDragEnterEvent(centre, *args)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


def shot(widget: QWidget, folder: Path, name: str) -> Path:
    path = folder / name
    for _ in range(3):  # let pending layout requests (nested layouts take several passes) settle
        QApplication.sendPostedEvents()
        QApplication.processEvents()
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


# Words the window shows while it is still getting ready; a screenshot of a ready state has none.
BUSY_WORDS = ("checking…", "Starting…", "counting…", "Counting tokens…", "loading…", "Loading the model…",
              "Connecting to", "connecting to")  # fmt: skip


def busy_texts(window: QWidget) -> list[str]:
    """The visible texts of ``window`` that say it is still getting ready (empty when ready)."""
    from PySide6.QtWidgets import QLabel, QMainWindow

    texts = [label.text() for label in window.findChildren(QLabel) if label.isVisibleTo(window)]
    if isinstance(window, QMainWindow):
        texts.append(window.statusBar().currentMessage())
    return [t for t in texts if any(word in t for word in BUSY_WORDS)]


def ready_shot(qtbot: object, window: QWidget, folder: Path, name: str, timeout: int = 180_000) -> Path:
    """A screenshot of a ready state: taken once nothing in the window says it is still busy."""
    from pytestqt.qtbot import QtBot

    assert isinstance(qtbot, QtBot)
    activity = getattr(window, "activity", None)
    qtbot.waitUntil(
        lambda: not busy_texts(window) and not (activity is not None and activity.active), timeout=timeout
    )
    return shot(window, folder, name)
