"""Long work made visible: what is happening, how far, how fast, how long still, and Cancel."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget


def duration(seconds: float | None) -> str:
    """``0:42``, ``12:05``, ``1:02:03``; ``?`` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class ActivityBar(QWidget):
    """A status-bar widget for the current long step.

    Signals:
        cancel_requested(): the user pressed Cancel.
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("activityBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("", self)
        self.label.setObjectName("activityLabel")
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.active = False
        self.setVisible(False)

    def start(self, text: str, *, cancellable: bool = True) -> None:
        self.active = True
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.cancel_button.setVisible(cancellable)
        self.setVisible(True)

    def progress(self, what: str, done: int, total: int, unit: str, rate: float, eta_s: float | None) -> None:
        """``Reading: 12,288 / 40,960 tokens (30%) · 420 tokens/s · 1:08 left``."""
        self.active = True
        pct = 100.0 * done / total if total else 0.0
        rate_text = f" · {rate:,.0f} {unit}/s" if rate > 0 else ""
        eta = f" · {duration(eta_s)} left" if eta_s is not None and done < total else ""
        self.label.setText(f"{what}: {done:,} / {total:,} {unit} ({pct:.0f}%){rate_text}{eta}")
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(min(done, total))
        self.setVisible(True)

    def finish(self) -> None:
        self.active = False
        self.setVisible(False)
