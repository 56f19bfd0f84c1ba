"""Light and dark themes: follow the system by default, or force one (View ▸ Theme).

The Fusion style with our own palettes looks the same on every platform and under the
offscreen platform used by the tests; "system" reads Qt's colour-scheme hint and follows it
when it changes.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#3b82c4"


class ThemeMode(enum.StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def effective_dark(mode: ThemeMode) -> bool:
    if mode is ThemeMode.SYSTEM:
        return system_is_dark()
    return mode is ThemeMode.DARK


def palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        colors = {
            QPalette.ColorRole.Window: "#1f2125",
            QPalette.ColorRole.WindowText: "#e6e6e6",
            QPalette.ColorRole.Base: "#17181b",
            QPalette.ColorRole.AlternateBase: "#23252a",
            QPalette.ColorRole.ToolTipBase: "#2b2d31",
            QPalette.ColorRole.ToolTipText: "#e6e6e6",
            QPalette.ColorRole.PlaceholderText: "#8a8f98",
            QPalette.ColorRole.Text: "#e6e6e6",
            QPalette.ColorRole.Button: "#2b2d31",
            QPalette.ColorRole.ButtonText: "#e6e6e6",
            QPalette.ColorRole.BrightText: "#ff6b6b",
            QPalette.ColorRole.Highlight: ACCENT,
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#6cb2f0",
            QPalette.ColorRole.LinkVisited: "#a58be0",
            QPalette.ColorRole.Mid: "#3a3d43",
            QPalette.ColorRole.Dark: "#111214",
            QPalette.ColorRole.Light: "#3a3d43",
        }
    else:
        colors = {
            QPalette.ColorRole.Window: "#f4f5f7",
            QPalette.ColorRole.WindowText: "#1d1f23",
            QPalette.ColorRole.Base: "#ffffff",
            QPalette.ColorRole.AlternateBase: "#f0f2f5",
            QPalette.ColorRole.ToolTipBase: "#ffffff",
            QPalette.ColorRole.ToolTipText: "#1d1f23",
            QPalette.ColorRole.PlaceholderText: "#8a8f98",
            QPalette.ColorRole.Text: "#1d1f23",
            QPalette.ColorRole.Button: "#ffffff",
            QPalette.ColorRole.ButtonText: "#1d1f23",
            QPalette.ColorRole.BrightText: "#d0453a",
            QPalette.ColorRole.Highlight: ACCENT,
            QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#1f6fb5",
            QPalette.ColorRole.LinkVisited: "#6a4bb0",
            QPalette.ColorRole.Mid: "#c9ced6",
            QPalette.ColorRole.Dark: "#9aa1ab",
            QPalette.ColorRole.Light: "#ffffff",
        }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    disabled = QColor("#6b7079" if dark else "#a0a5ad")
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def stylesheet(dark: bool) -> str:
    """Small touches Fusion does not give: cards for turns, the question bubble, the bars."""
    card = "#25272c" if dark else "#ffffff"
    border = "#34373d" if dark else "#e1e4e8"
    bubble = "#2d3440" if dark else "#e8f0fa"
    muted = "#9aa1ab" if dark else "#6b7079"
    return f"""
    QFrame#turn {{ background: {card}; border: 1px solid {border}; border-radius: 8px; }}
    QFrame#questionBubble {{ background: {bubble}; border: none; border-radius: 8px; }}
    QLabel#question {{ background: transparent; font-weight: 600; }}
    QLabel#figures, QLabel#citeSummary, QLabel#sourcesSummary, QLabel#viewerNote {{ color: {muted}; }}
    QLabel#dropHint {{ color: {muted}; border: 2px dashed {border}; border-radius: 10px; }}
    QWidget#modelBar, QWidget#askBar {{ background: {card}; border-bottom: 1px solid {border}; }}
    QTextBrowser#answer, QTextBrowser#thinking {{ background: transparent; }}
    QTextBrowser#thinking {{ color: {muted}; }}
    QPushButton#askButton {{ background: {ACCENT}; color: white; border-radius: 6px; padding: 6px 16px; }}
    QPushButton#askButton:disabled {{ background: {border}; color: {muted}; }}
    QPushButton#stopButton {{ background: #d0453a; color: white; border-radius: 6px; padding: 6px 16px; }}
    QLabel#welcomeTitle {{ font-size: 22pt; font-weight: 700; }}
    QFrame#welcomeCard {{ background: {card}; border: 1px solid {border}; border-radius: 10px; }}
    """


def apply_theme(app: QApplication, mode: ThemeMode) -> bool:
    """Apply ``mode``; returns whether the result is dark."""
    dark = effective_dark(mode)
    app.setStyle("Fusion")
    app.setPalette(palette(dark))
    app.setStyleSheet(stylesheet(dark))
    return dark
