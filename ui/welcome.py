"""The first-run screen: what to drop, and what the embedded default model can and cannot do."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

# Measured with the evaluation harness (bench/eval/RESULTS.md) on 2 shared CPU cores.
CAN = (
    "Read a few pages, a small folder of code or notes, entirely offline",
    "Answer short factual questions in its reading format: 18 of 20 planted facts found "
    "at 1K–16K tokens (11 of 12 up to 4K, none at 32K), a one-line note answered in seconds",
    "Show where each answer is in your sources: a <i>located</i> citation (dotted blue) opens "
    "the line or page it found the answer's words on",
)
CANNOT = (
    "Cite sources itself: it is a base model, not instruction-tuned; located citations are "
    "Longdesk's, never shown as verified",
    "Answer lists or locate verses and functions: none of 39 such questions at 1K–32K tokens",
    "Stand in for DeepSeek-V4-Flash: choose a V4-Flash GGUF or a hosted endpoint for real work",
)


class WelcomePage(QWidget):
    """Signals:
    add_files_requested(), add_folder_requested(), choose_model_requested().
    """

    add_files_requested = Signal()
    add_folder_requested = Signal()
    choose_model_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(48, 36, 48, 36)
        outer.setSpacing(14)
        title = QLabel("Welcome to Longdesk", self)
        title.setObjectName("welcomeTitle")
        intro = QLabel(
            "Drop whole books, document sets and codebases on the Sources panel (or here). The whole "
            "corpus goes into one model context — nothing is left out silently — and every answer "
            "cites the page or line it came from, so you can check it at the source.",
            self,
        )
        intro.setWordWrap(True)
        outer.addWidget(title)
        outer.addWidget(intro)
        buttons = QHBoxLayout()
        add_files = QPushButton("Add files…", self)
        add_folder = QPushButton("Add a folder…", self)
        choose = QPushButton("Use another model…", self)
        add_files.clicked.connect(self.add_files_requested)
        add_folder.clicked.connect(self.add_folder_requested)
        choose.clicked.connect(self.choose_model_requested)
        for b in (add_files, add_folder, choose):
            buttons.addWidget(b)
        buttons.addStretch(1)
        outer.addLayout(buttons)
        card = QFrame(self)
        card.setObjectName("welcomeCard")
        inner = QVBoxLayout(card)
        inner.setContentsMargins(18, 14, 18, 14)
        self.model_title = QLabel("<b>The embedded default model: Gemma 3 270M</b>", card)
        self.model_status = QLabel("Checking the model…", card)
        self.model_status.setObjectName("modelStatus")
        self.model_status.setWordWrap(True)
        can = QLabel("<b>It can</b><ul>" + "".join(f"<li>{x}</li>" for x in CAN) + "</ul>", card)
        cannot = QLabel("<b>It cannot</b><ul>" + "".join(f"<li>{x}</li>" for x in CANNOT) + "</ul>", card)
        for w in (can, cannot):
            w.setWordWrap(True)
            w.setTextFormat(Qt.TextFormat.RichText)
        inner.addWidget(self.model_title)
        inner.addWidget(self.model_status)
        inner.addWidget(can)
        inner.addWidget(cannot)
        outer.addWidget(card)
        keys = QLabel(
            "Shortcuts: Ctrl+O add sources · Ctrl+Enter ask · Esc stop · Ctrl+F find · Ctrl+N new session",
            self,
        )
        keys.setObjectName("sourcesSummary")
        outer.addWidget(keys)
        outer.addStretch(1)
