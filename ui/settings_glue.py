"""Settings glue: the settings dialog, keys to the OS keyring, applying new settings, About.

Settings are written off the GUI thread; an API key typed in the dialog goes to the OS keyring
through ``app.secrets`` on a pool thread and nowhere else. Applying settings reloads the local
model when its load parameters changed, and reopens the hosted endpoint (and asks for consent
again before sending) when the endpoint or what may be sent changed.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox, QStatusBar

from longdesk.app.paths import Paths
from longdesk.app.secrets import keyring_problem, store_key
from longdesk.app.settings import Settings, save_settings
from longdesk.app.workbench import Workbench
from longdesk.engine.events import Where
from longdesk.ui.dialogs import AboutDialog, SettingsDialog, llama_versions
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.sources_glue import SourcesGlue
from longdesk.ui.workers.pool import TaskRunner

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
    """Edits and applies the workbench's settings."""

    def __init__(
        self,
        state: Workbench,
        paths: Paths,
        runner: TaskRunner,
        save_runner: TaskRunner,
        local: LocalModelGlue,
        hosted: HostedGlue,
        sources_glue: SourcesGlue,
        status: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.paths = paths
        self.runner = runner
        self.save_runner = save_runner
        self.local = local
        self.hosted = hosted
        self.sources_glue = sources_glue
        self.status = status

    @Slot()
    def on_settings(self) -> None:
        dialog = SettingsDialog(self.state.settings, self.status.window())
        self.runner.run_task(keyring_problem, lambda p: dialog.set_keyring_status(str(p)))
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        key = dialog.entered_key()
        endpoint = new.hosted_endpoint
        if key and endpoint:
            # The OS keyring only (app.secrets); never settings, sessions or logs.
            self.runner.run_task(lambda: store_key(endpoint, key), self._on_key_stored)
        self.apply_settings(new)

    def _on_key_stored(self, problem: object) -> None:
        if problem:
            message = f"The API key was NOT saved: {problem}."
            box = QMessageBox(
                QMessageBox.Icon.Warning, "API key not saved", message, parent=self.status.window()
            )
            box.open()
        else:
            message = "The API key is saved in the OS keyring."
        self.status.showMessage(message, 15_000)

    def save(self, new: Settings) -> None:
        """Write ``new`` to the settings file off the GUI thread."""
        config = self.paths.config
        self.save_runner.run_task(
            lambda: save_settings(config, new),
            lambda _r: None,
            lambda msg: self.status.showMessage(f"Settings not saved: {msg}", 10_000),
        )

    def apply_settings(self, new: Settings) -> None:
        old = self.state.settings
        self.state.set_settings(new)
        self.save(new)
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
            self.local.probe_and_load(self.local.path if not new.default_model else None)
        if self.state.where is Where.HOSTED and hosted_changed:
            self.hosted.use_hosted()  # the endpoint (or what may be sent) changed: open and count again
        elif not reload and old.max_output_tokens != new.max_output_tokens:
            self.sources_glue.request_plan()

    @Slot()
    def on_about(self) -> None:
        dialog = AboutDialog(self.status.window())
        self.runner.run_task(llama_versions, lambda v: dialog.set_llama(*v))
        dialog.exec()
