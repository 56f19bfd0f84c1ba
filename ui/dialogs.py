"""Dialogs: settings, About (with the bundled llama.cpp), and the ask-before-opening link prompt."""

from __future__ import annotations

import dataclasses
import logging
import platform
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QUrl, Slot, qVersion
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from longdesk.app import __version__
from longdesk.app.settings import Settings
from longdesk.engine.backends.hosted_presets import PRESETS

log = logging.getLogger(__name__)


def llama_versions() -> tuple[str, str]:
    """(llama-cpp-python version, llama.cpp system info); runs on a pool thread (heavy import)."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
        text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
        return str(llama_cpp.__version__), text.strip()
    except Exception as exc:
        log.exception("llama.cpp's version and system info are unavailable")
        return "unavailable", f"{type(exc).__name__}: {exc}"


class SettingsDialog(QDialog):
    """Edit ``Settings``; an API key typed here goes to the OS keyring only, never into settings.

    ``set_keyring_status`` says (after a check on a pool thread) whether this machine has a
    keyring at all; without one a key cannot be kept and the dialog says so.
    """

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Longdesk Settings")
        self.setMinimumWidth(560)
        self._settings = settings
        form = QFormLayout()
        self.models_dir = QLineEdit(settings.models_dir, self)
        self.models_dir.setPlaceholderText("a folder scanned for .gguf files")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self.on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.models_dir, 1)
        row.addWidget(browse)
        form.addRow("Models folder", row)
        self.default_model = QLineEdit(settings.default_model, self)
        self.default_model.setPlaceholderText("empty: the embedded Gemma 3 270M")
        form.addRow("Default model", self.default_model)
        self.prompt_format = QComboBox(self)
        self.prompt_format.setObjectName("promptFormat")
        for key, text in (
            ("auto", "Automatic (from the model file)"),
            ("reading", "Reading: documents, then Question/Answer (base models)"),
            ("chat", "Chat turns with the citing instructions (instruction models)"),
        ):
            self.prompt_format.addItem(text, key)
        self.prompt_format.setCurrentIndex(max(0, self.prompt_format.findData(settings.prompt_format)))
        form.addRow("Prompt format", self.prompt_format)
        self.context = QSpinBox(self)
        self.context.setRange(0, 1_048_576)
        self.context.setSingleStep(4096)
        self.context.setSpecialValueText("model's trained context (up to 32,768)")
        self.context.setValue(settings.context_tokens)
        form.addRow("Context window", self.context)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 512)
        self.threads.setSpecialValueText("physical cores")
        self.threads.setValue(settings.n_threads)
        form.addRow("CPU threads", self.threads)
        self.gpu_layers = QSpinBox(self)
        self.gpu_layers.setRange(-1, 1000)
        self.gpu_layers.setSpecialValueText("all layers")
        self.gpu_layers.setValue(settings.n_gpu_layers)
        form.addRow("Accelerator layers", self.gpu_layers)
        self.max_output = QSpinBox(self)
        self.max_output.setRange(16, 262_144)
        self.max_output.setValue(settings.max_output_tokens)
        form.addRow("Longest answer (tokens)", self.max_output)
        self.snapshot_budget = QDoubleSpinBox(self)
        self.snapshot_budget.setRange(0.0, 100_000.0)
        self.snapshot_budget.setSuffix(" GB")
        self.snapshot_budget.setValue(settings.snapshot_budget_gb)
        form.addRow("Snapshot disk budget", self.snapshot_budget)
        self.preset = QComboBox(self)
        self.preset.setObjectName("hostedPreset")
        for key, preset in PRESETS.items():
            self.preset.addItem(preset.label, key)
        self.preset.setCurrentIndex(max(0, self.preset.findData(settings.hosted_preset)))
        self.preset.currentIndexChanged.connect(self.on_preset_current_index_changed)
        form.addRow("Hosted endpoint", self.preset)
        self.endpoint = QLineEdit(settings.hosted_endpoint, self)
        self.endpoint.setPlaceholderText("https://api.deepseek.com or http://my-server:8000/v1")
        form.addRow("Base URL", self.endpoint)
        self.hosted_model = QLineEdit(settings.hosted_model, self)
        form.addRow("Hosted model", self.hosted_model)
        self.hosted_context = QSpinBox(self)
        self.hosted_context.setRange(0, 16_777_216)
        self.hosted_context.setSingleStep(4096)
        self.hosted_context.setSpecialValueText("the preset's (DeepSeek: 1,048,576), else unknown")
        self.hosted_context.setValue(settings.hosted_context_tokens)
        form.addRow("Hosted context", self.hosted_context)
        self.hosted_tokenizer = QLineEdit(settings.hosted_tokenizer, self)
        self.hosted_tokenizer.setPlaceholderText("the GGUF the server runs, for exact token counts")
        form.addRow("Server's GGUF", self.hosted_tokenizer)
        self.key = QLineEdit(self)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("kept in the OS keyring only")
        form.addRow("API key", self.key)
        self.keyring_status = QLabel("Checking the OS keyring…", self)
        self.keyring_status.setObjectName("keyringStatus")
        self.keyring_status.setWordWrap(True)
        form.addRow("", self.keyring_status)
        self._fill_preset_hints()
        self.leave_out_secrets = QCheckBox(
            "Never send files flagged as secrets (.env, keys) to a hosted model"
        )
        self.leave_out_secrets.setChecked(settings.hosted_leave_out_secrets)
        form.addRow("Privacy", self.leave_out_secrets)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _fill_preset_hints(self) -> None:
        preset = PRESETS[str(self.preset.currentData())]
        self.endpoint.setPlaceholderText(preset.base_url or "http://my-server:8000/v1 (required)")
        self.hosted_model.setPlaceholderText(
            preset.default_model or "empty: the first model the server lists"
        )
        env = " or ".join(preset.key_env)
        required = "required" if preset.key_required else "optional"
        self.key.setToolTip(f"API key ({required}); without the keyring, set {env} in the environment")

    @Slot(int)
    def on_preset_current_index_changed(self, _index: int) -> None:
        preset = PRESETS[str(self.preset.currentData())]
        if preset.base_url and not self.endpoint.text().strip():
            self.endpoint.setText(preset.base_url)
        self._fill_preset_hints()

    def set_keyring_status(self, problem: str) -> None:
        """'' when keys can be kept in the OS keyring; else why not, said plainly."""
        if problem:
            env = " or ".join(PRESETS[str(self.preset.currentData())].key_env)
            self.keyring_status.setText(
                f"⚠ No usable OS keyring here: {problem}. A key typed above cannot be saved; "
                f"set {env} in the environment instead."
            )
            self.keyring_status.setStyleSheet("color: #d0453a;")
        else:
            self.keyring_status.setText("A key typed above is kept in the OS keyring, never in a file.")
            self.keyring_status.setStyleSheet("")

    @Slot()
    def on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir.text())
        if folder:
            self.models_dir.setText(folder)

    def result_settings(self) -> Settings:
        return dataclasses.replace(
            self._settings,
            models_dir=self.models_dir.text().strip(),
            default_model=self.default_model.text().strip(),
            prompt_format=str(self.prompt_format.currentData()),
            context_tokens=self.context.value(),
            n_threads=self.threads.value(),
            n_gpu_layers=self.gpu_layers.value(),
            max_output_tokens=self.max_output.value(),
            snapshot_budget_gb=self.snapshot_budget.value(),
            hosted_preset=str(self.preset.currentData()),
            hosted_endpoint=self.endpoint.text().strip(),
            hosted_model=self.hosted_model.text().strip(),
            hosted_context_tokens=self.hosted_context.value(),
            hosted_tokenizer=self.hosted_tokenizer.text().strip(),
            hosted_leave_out_secrets=self.leave_out_secrets.isChecked(),
        )

    def entered_key(self) -> str:
        return self.key.text().strip()


class AboutDialog(QDialog):
    """Versions of Longdesk, Python, Qt and the bundled llama.cpp."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Longdesk")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        title = QLabel(f"<h2>Longdesk {__version__}</h2>", self)
        blurb = QLabel(
            "Read whole books, document sets and codebases with one long-context model, "
            "and check every answer at its source.",
            self,
        )
        blurb.setWordWrap(True)
        self.versions = QLabel(self)
        self.versions.setObjectName("aboutVersions")
        self.versions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.versions.setWordWrap(True)
        self.set_llama("checking…", "")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        for w in (title, blurb, self.versions):
            layout.addWidget(w)
        layout.addWidget(buttons)

    def set_llama(self, version: str, system_info: str) -> None:
        rows = [
            ("Longdesk", __version__),
            ("Python", platform.python_version()),
            ("Qt", qVersion()),
            ("PySide6", pyside_version),
            ("llama-cpp-python (bundled llama.cpp)", version),
            ("llama.cpp system info", system_info),
        ]
        self.versions.setText(
            "<table>"
            + "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )


def confirm_link(parent: QWidget, url: QUrl) -> bool:
    """Show the full address of a link from model output and ask before opening it."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Open link?")
    box.setText("The answer links to this address:")
    box.setInformativeText(url.toString(QUrl.ComponentFormattingOption.FullyEncoded))
    box.setStandardButtons(QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Open


def pick_model_file(parent: QWidget, start: str) -> Path | None:
    name, _ = QFileDialog.getOpenFileName(parent, "Choose a GGUF model", start, "GGUF models (*.gguf)")
    return Path(name) if name else None
