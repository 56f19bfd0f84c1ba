"""The main window: the first-run screen on the default model (the workbench grows from here)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

from app.models import ModelEntry, default_model_path, describe_model
from app.paths import Paths
from engine.models.default_model import DEFAULT_MODEL_LIMITS


class _TaskSignals(QObject):
    """Signals:
    done(object): the task's return value.
    failed(str): the task's error, as one line.
    """

    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    """Runs ``fn`` on the global thread pool; the result comes back as a signal (main thread)."""

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # noqa: BLE001 - errors are values: shown, never raised on a pool thread
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(result)


def _probe_default_model(paths: Paths) -> ModelEntry:
    return describe_model(default_model_path(paths), "default")


class MainWindow(QMainWindow):
    """Longdesk's main window.

    Signals:
        model_ready(object): the default model's ModelEntry once it has been checked.
    """

    model_ready = Signal(object)

    def __init__(self, paths: Paths | None = None) -> None:
        super().__init__()
        self.paths = paths or Paths.default()
        self.setWindowTitle("Longdesk")
        self.resize(1100, 720)
        self._tasks: list[_Task] = []

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(48, 40, 48, 40)
        layout.setSpacing(16)
        title = QLabel("<h1>Longdesk</h1>", central)
        intro = QLabel(
            "Drop whole books, document sets and codebases here. The whole corpus goes into one "
            "model context, and every answer cites the page or line it came from.",
            central,
        )
        intro.setWordWrap(True)
        self.model_label = QLabel("Preparing the embedded default model…", central)
        self.model_label.setObjectName("modelStatus")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        limits = QLabel(DEFAULT_MODEL_LIMITS, central)
        limits.setObjectName("modelLimits")
        limits.setWordWrap(True)
        for w in (title, intro, self.model_label, limits):
            layout.addWidget(w)
        layout.addStretch(1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready")

    @Slot()
    def start_background_work(self) -> None:
        """Check the default model off the GUI thread (assembling it on first use)."""
        task = _Task(lambda: _probe_default_model(self.paths))
        task.signals.done.connect(self.on_model_probe_done)
        task.signals.failed.connect(self.on_model_probe_failed)
        self._tasks.append(task)
        task.setAutoDelete(False)
        QThreadPool.globalInstance().start(task)

    @Slot(object)
    def on_model_probe_done(self, entry: object) -> None:
        assert isinstance(entry, ModelEntry)
        if entry.error:
            self.model_label.setText(f"Default model unusable: {entry.error}")
        else:
            fit = entry.memory.describe() if entry.memory else ""
            self.model_label.setText(
                f"Model: <b>{entry.name}</b> — {entry.architecture}, {entry.quantization}, "
                f"{entry.size_bytes / 1e6:,.0f} MB, context {entry.context_length:,} tokens.<br>"
                f"Memory: {fit}"
            )
        self.model_ready.emit(entry)

    @Slot(str)
    def on_model_probe_failed(self, message: str) -> None:
        self.model_label.setText(f"Default model unavailable: {message}")
