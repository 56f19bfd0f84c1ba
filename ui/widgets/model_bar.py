"""The model bar: which model answers, whether it fits this machine, thinking mode, local/hosted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from longdesk.engine.backends.base import BackendInfo, ThinkingMode

THINKING_LABELS = {
    ThinkingMode.OFF: "Thinking: off",
    ThinkingMode.HIGH: "Thinking: high",
    ThinkingMode.MAX: "Thinking: max",
}
if TYPE_CHECKING:
    from longdesk.app.models import ModelEntry

WHERE_LOCAL = "local"
WHERE_HOSTED = "hosted"


class ModelBar(QWidget):
    """Model name, memory verdict, state, thinking mode and the local/hosted switch.

    Signals:
        thinking_changed(str): the chosen ThinkingMode value.
        where_changed(str): "local" or "hosted".
        choose_model_requested(): the user wants to pick a GGUF file.
    """

    thinking_changed = Signal(str)
    where_changed = Signal(str)
    choose_model_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(10)
        self.where = QComboBox(self)
        self.where.setObjectName("whereSwitch")
        self.where.addItem("Local", WHERE_LOCAL)
        self.where.addItem("Hosted", WHERE_HOSTED)
        self.where.setToolTip("Run the model on this machine, or on a hosted endpoint (asks for consent)")
        self.where.currentIndexChanged.connect(self.on_where_current_index_changed)
        self.name_label = QLabel("Model: checking…", self)
        self.name_label.setObjectName("modelName")
        self.name_label.setTextFormat(Qt.TextFormat.RichText)
        self.fit_label = QLabel("", self)
        self.fit_label.setObjectName("modelFit")
        self.state_label = QLabel("", self)
        self.state_label.setObjectName("modelState")
        self.state_label.setMinimumWidth(
            self.state_label.fontMetrics().horizontalAdvance("loaded · context 1,048,576")
        )
        self.name_label.setMinimumWidth(120)
        self.choose_button = QPushButton("Change model…", self)
        self.choose_button.clicked.connect(self.choose_model_requested)
        self.thinking = QComboBox(self)
        self.thinking.setObjectName("thinkingMode")
        for mode, label in THINKING_LABELS.items():
            self.thinking.addItem(label, mode.value)
        self.thinking.currentIndexChanged.connect(self.on_thinking_current_index_changed)
        layout.addWidget(self.where)
        layout.addWidget(self.name_label, 1)
        layout.addWidget(self.fit_label)
        layout.addWidget(self.state_label)
        layout.addWidget(self.thinking)
        layout.addWidget(self.choose_button)
        self.set_thinking_modes((ThinkingMode.OFF,))

    def set_entry(self, entry: ModelEntry) -> None:
        """Header facts and the memory verdict, before the model is loaded."""
        if entry.error:
            self.name_label.setText(f"<b>Model unusable</b>: {entry.error}")
            self.fit_label.setText("")
            return
        size = (
            f"{entry.size_bytes / 1e9:,.1f} GB"
            if entry.size_bytes >= 1e9
            else f"{entry.size_bytes / 1e6:,.0f} MB"
        )
        self.name_label.setText(
            f"<b>{entry.name}</b> &nbsp;<span style='color:gray'>{entry.architecture} · "
            f"{entry.quantization} · {size} · trained context {entry.context_length:,}</span>"
        )
        self.name_label.setToolTip(str(entry.path))
        if entry.memory is not None:
            fits = entry.memory.fits
            mark = "✓ fits this machine" if fits else "✗ does not fit this machine"
            self.fit_label.setText(mark)
            self.fit_label.setStyleSheet(f"color: {'#2e9d5b' if fits else '#d0453a'};")
            self.fit_label.setToolTip(entry.memory.describe())

    def set_state(self, text: str) -> None:
        self.state_label.setText(text)

    def set_info(self, info: BackendInfo) -> None:
        self.set_state(f"loaded · context {info.context_window:,}")
        self.set_thinking_modes(info.thinking_modes)

    def set_hosted(self, info: BackendInfo, session_cost: str) -> None:
        """A hosted model: its name and endpoint, its context, and what this session cost so far."""
        name = info.name.replace("\\", "/").rsplit("/", 1)[-1]  # a server may name its model by path
        self.name_label.setText(
            f"<b>{name}</b> &nbsp;<span style='color:gray'>{info.architecture} · {info.endpoint}</span>"
        )
        self.name_label.setToolTip("\n".join((info.name, *info.notes)))
        self.fit_label.setText("hosted: sends only what you agree to")
        self.fit_label.setStyleSheet("color: #b7791f;")
        self.fit_label.setToolTip(
            "A consent dialog lists the documents, tokens and cost before anything is sent."
        )
        window = f"context {info.context_window:,}" if info.context_window else "context: the server's"
        self.set_state(f"{window} · session {session_cost}" if session_cost else window)
        self.set_thinking_modes(info.thinking_modes)

    def set_thinking_modes(self, modes: Sequence[ThinkingMode]) -> None:
        """Enable only the modes the model supports; the selector hides when there is no choice."""
        allowed = {m.value for m in modes}
        model = self.thinking.model()
        for i in range(self.thinking.count()):
            item = model.item(i)  # type: ignore[attr-defined]
            item.setEnabled(self.thinking.itemData(i) in allowed)
        if self.thinking.currentData() not in allowed:
            self.thinking.setCurrentIndex(0)
        self.thinking.setEnabled(len(allowed) > 1)
        self.thinking.setToolTip(
            "Thinking mode (off / high / max)" if len(allowed) > 1 else "This model has no thinking mode"
        )

    def thinking_mode(self) -> ThinkingMode:
        return ThinkingMode(self.thinking.currentData())

    def set_where(self, where: str) -> None:
        self.where.blockSignals(True)
        self.where.setCurrentIndex(0 if where == WHERE_LOCAL else 1)
        self.where.blockSignals(False)

    @Slot(int)
    def on_where_current_index_changed(self, _index: int) -> None:
        self.where_changed.emit(str(self.where.currentData()))

    @Slot(int)
    def on_thinking_current_index_changed(self, _index: int) -> None:
        self.thinking_changed.emit(str(self.thinking.currentData()))
