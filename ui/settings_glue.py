"""Settings glue: the settings dialog, keys to the OS keyring, applying new settings, About.

Settings are written off the GUI thread; an API key typed in the dialog goes to the OS keyring
through ``app.secrets`` on a pool thread and nowhere else. Applying settings reloads the local
model when its load parameters changed, and reopens the hosted endpoint (and asks for consent
again before sending) when the endpoint or what may be sent changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox

from longdesk.app.secrets import keyring_problem, store_key
from longdesk.app.settings import Settings, save_settings
from longdesk.ui.dialogs import AboutDialog, SettingsDialog, llama_versions
from longdesk.ui.widgets.model_bar import WHERE_HOSTED

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow

# Settings that change what the hosted worker opens or what may be sent to it.
_HOSTED_FIELDS = (
    "hosted_preset",
    "hosted_endpoint",
    "hosted_model",
    "hosted_context_tokens",
    "hosted_tokenizer",
    "hosted_leave_out_secrets",
)


class SettingsGlue(QObject):
    """Edits and applies the window's settings."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window

    @Slot()
    def on_settings(self) -> None:
        w = self.w
        dialog = SettingsDialog(w.settings, w)
        w.runner.run_task(keyring_problem, lambda p: dialog.set_keyring_status(str(p)))
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        key = dialog.entered_key()
        endpoint = new.hosted_endpoint
        if key and endpoint:
            # The OS keyring only (app.secrets); never settings, sessions or logs.
            w.runner.run_task(lambda: store_key(endpoint, key), self._on_key_stored)
        self.apply_settings(new)

    def _on_key_stored(self, problem: object) -> None:
        w = self.w
        if problem:
            message = f"The API key was NOT saved: {problem}."
            box = QMessageBox(QMessageBox.Icon.Warning, "API key not saved", message, parent=w)
            box.open()
        else:
            message = "The API key is saved in the OS keyring."
        w.statusBar().showMessage(message, 15_000)

    def apply_settings(self, new: Settings) -> None:
        w = self.w
        old, w.settings = w.settings, new
        w.save_runner.run_task(
            lambda: save_settings(w.paths.config, new),
            lambda _r: None,
            lambda msg: w.statusBar().showMessage(f"Settings not saved: {msg}", 10_000),
        )
        reload = (
            old.context_tokens,
            old.n_threads,
            old.n_gpu_layers,
            old.default_model,
            old.prompt_format,
        ) != (
            new.context_tokens,
            new.n_threads,
            new.n_gpu_layers,
            new.default_model,
            new.prompt_format,
        )
        hosted_changed = any(getattr(old, f) != getattr(new, f) for f in _HOSTED_FIELDS)
        if reload:
            w.local.probe_and_load(w.local.path if not new.default_model else None)
        if w.where == WHERE_HOSTED and hosted_changed:
            w.hosted.use_hosted()  # the endpoint (or what may be sent) changed: open and count again
        elif not reload and old.max_output_tokens != new.max_output_tokens:
            w.request_plan()
        w.refresh_all()

    @Slot()
    def on_about(self) -> None:
        w = self.w
        dialog = AboutDialog(w)
        w.runner.run_task(llama_versions, lambda v: dialog.set_llama(*v))
        dialog.exec()
