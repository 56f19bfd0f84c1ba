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
