"""The budget meter: corpus, conversation, question, thinking and output against the window.

``context = corpus + conversation + question + reserved thinking + reserved output``. The bar
shows each part with its exact token count and turns red *before* a request that would not
fit is sent, with what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

PART_COLORS = (
    ("corpus", QColor("#3b82c4")),
    ("conversation", QColor("#8a63c9")),
    ("question", QColor("#2aa198")),
    ("thinking", QColor("#d08a2d")),
    ("output", QColor("#7d8b99")),
)
OVER_COLOR = QColor("#d0453a")


@dataclass(frozen=True, slots=True)
class BudgetFigures:
    """Token figures for the meter (all exact, from the model's tokenizer)."""

    window: int
    corpus: int
    conversation: int = 0
    question: int = 0
    thinking: int = 0
    output: int = 0

    @property
    def used(self) -> int:
        return self.corpus + self.conversation + self.question + self.thinking + self.output

    @property
    def fits(self) -> bool:
        return self.window > 0 and self.used <= self.window

    @property
    def over_by(self) -> int:
        return max(0, self.used - self.window)

    def parts(self) -> list[tuple[str, int]]:
        return [
            ("corpus", self.corpus),
            ("conversation", self.conversation),
            ("question", self.question),
            ("thinking", self.thinking),
            ("output", self.output),
        ]

    def advice(self) -> str:
        """What to do when it does not fit, in words."""
        if self.fits:
            return ""
        if self.corpus + self.output > self.window:
            return (
                f"Over by {self.over_by:,} tokens: leave documents out (untick them in Sources) "
                "or choose a model with a larger context."
            )
        return (
            f"Over by {self.over_by:,} tokens: start a new thread on the same sources, "
            "shorten the question, or lower the reserved output."
        )


class _Bar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figures: BudgetFigures | None = None
        self.setMinimumHeight(12)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(300, 12)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        track = self.palette().color(QPalette.ColorRole.Mid)
        track.setAlpha(60)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(track)
        p.drawRoundedRect(rect, 5, 5)
        f = self.figures
        if f is None or f.window <= 0:
            return
        scale = rect.width() / max(f.window, f.used)
        x = rect.left()
        p.setClipRect(rect)
        for (_name, color), (_n, tokens) in zip(PART_COLORS, f.parts(), strict=True):
            w = tokens * scale
            if w <= 0:
                continue
            p.setBrush(OVER_COLOR if not f.fits else color)
            p.drawRect(QRectF(x, rect.top(), w, rect.height()))
            x += w
        if not f.fits:
            edge = rect.left() + f.window * scale
            p.setBrush(QColor("#ffffff"))
            p.drawRect(QRectF(edge - 1, rect.top(), 2, rect.height()))


class BudgetMeter(QWidget):
    """The bar and its exact numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("budgetMeter")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        self.bar = _Bar(self)
        self.label = QLabel("", self)
        self.label.setObjectName("budgetLabel")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.advice = QLabel("", self)
        self.advice.setObjectName("budgetAdvice")
        self.advice.setWordWrap(True)
        self.advice.setStyleSheet(f"color: {OVER_COLOR.name()}; font-weight: 600;")
        self.advice.setVisible(False)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        layout.addWidget(self.advice)
        self.figures: BudgetFigures | None = None

    @property
    def over(self) -> bool:
        return self.figures is not None and not self.figures.fits

    def set_figures(self, figures: BudgetFigures | None) -> None:
        self.figures = figures
        self.bar.figures = figures
        self.bar.update()
        if figures is None:
            self.label.setText(
                "The token budget appears once the model is loaded and the sources are counted."
            )
            self.advice.setVisible(False)
            return
        bits = []
        for (name, color), (_n, tokens) in zip(PART_COLORS, figures.parts(), strict=True):
            if tokens or name in ("corpus", "output"):
                bits.append(f"<span style='color:{color.name()}'>■</span> {name} {tokens:,}")
        share = 100 * figures.used / figures.window if figures.window else 0.0
        verdict = (
            f"<b>{figures.used:,}</b> of {figures.window:,} tokens ({share:.1f}%)"
            if figures.window
            else "context window unknown"
        )
        self.label.setText(" &nbsp; ".join(bits) + f" &nbsp;=&nbsp; {verdict}")
        self.advice.setText(figures.advice())
        self.advice.setVisible(not figures.fits)
