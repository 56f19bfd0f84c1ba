"""Local model glue: check the GGUF header, load it on the engine worker, say what went wrong.

The header check and the first import of the model stack (numpy, llama.cpp) run on a pool
thread; loading runs on the engine worker. Why the local model cannot serve is kept
(``failure``), so that asking can offer the hosted model instead (``ui.hosted_glue``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QStatusBar

from longdesk.app.paths import Paths
from longdesk.app.settings import Settings
from longdesk.app.workbench import Workbench
from longdesk.app.workspace import context_for
from longdesk.engine.backends.base import BackendInfo, FailureKind
from longdesk.engine.events import Where
from longdesk.ui.activity import ActivityBar
from longdesk.ui.dialogs import pick_model_file
from longdesk.ui.interpreter import freeze_long_lived_objects
from longdesk.ui.welcome import WelcomePage
from longdesk.ui.widgets.model_bar import WHERE_LOCAL, ModelBar
from longdesk.ui.workers.engine_worker import EngineController, LoadModel
from longdesk.ui.workers.pool import TaskRunner

if TYPE_CHECKING:
    from longdesk.app.models import ModelEntry


def probe_model(paths: Paths, settings: Settings, explicit: Path | None) -> ModelEntry:
    """Runs on a pool thread; it also imports the model stack (numpy, llama.cpp) off the GUI thread."""
    from longdesk.app.models import default_model_path, describe_model
    from longdesk.engine.backends.local import LocalSettings  # noqa: F401 - warm the import for the GUI thread

    if explicit is not None:
        return describe_model(explicit, "chosen")
    if settings.default_model:
        return describe_model(Path(settings.default_model).expanduser(), "settings")
    return describe_model(default_model_path(paths), "default")


class LocalModelGlue(QObject):
    """The local model's life: probe, load, choose another, switch back to it.

    Attributes:
        info: BackendInfo of the loaded local model, None until loaded.
        failure: (kind, message) when the local model cannot serve, else None.
        entry: the header facts of the model being used.

    Signals:
        model_ready(object): the ModelEntry of the model about to be loaded (header checked).
        model_loaded(object): BackendInfo once the model is loaded on the worker.
        plan_requested(): the corpus is to be counted again (by the backend now active).
    """

    model_ready = Signal(object)
    model_loaded = Signal(object)
    plan_requested = Signal()

    def __init__(
        self,
        state: Workbench,
        engine: EngineController,
        runner: TaskRunner,
        paths: Paths,
        model_bar: ModelBar,
        welcome: WelcomePage,
        status: QStatusBar,
        activity: ActivityBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.engine = engine
        self.runner = runner
        self.paths = paths
        self.model_bar = model_bar
        self.welcome = welcome
        self.status = status
        self.activity = activity
        self.info: BackendInfo | None = None
        self.failure: tuple[FailureKind, str] | None = None
        self.entry: ModelEntry | None = None
        self.path: Path | None = None
        self.load_id = 0

    def probe_and_load(self, explicit: Path | None) -> None:
        self.model_bar.set_state("checking…")
        self.failure = None
        paths, settings = self.paths, self.state.settings
        self.runner.run_task(
            lambda: probe_model(paths, settings, explicit),
            self.on_model_probed,
            lambda msg: self.problem(f"The model could not be checked: {msg}"),
        )

    def on_model_probed(self, entry: ModelEntry) -> None:
        self.entry = entry
        self.model_bar.set_entry(entry)
        if entry.error:
            self.problem(f"The model is unusable: {entry.error}")
            self.model_ready.emit(entry)
            return
        fit = entry.memory.describe() if entry.memory else ""
        self.welcome.model_status.setText(
            f"{entry.name} — {entry.architecture}, {entry.quantization}, {entry.size_bytes / 1e6:,.0f} MB, "
            f"context {entry.context_length:,} tokens. Memory: {fit}"
        )
        self.path = entry.path
        settings = self.state.settings
        n_ctx = context_for(entry.context_length, settings.context_tokens)
        from longdesk.engine.backends.local import LocalSettings  # already imported by the probe

        local = LocalSettings(
            n_ctx=n_ctx,
            n_threads=settings.n_threads,
            n_gpu_layers=settings.n_gpu_layers,
            prompt_format=settings.prompt_format,
            # Read once, ask forever: readings are saved and restored across sessions.
            snapshot_dir=self.paths.snapshots,
            snapshot_budget_bytes=int(settings.snapshot_budget_gb * (1 << 30)),
        )
        self.info = None
        if self.state.where is not Where.HOSTED:
            self.model_bar.set_state("loading…")
            self.state.set_backend(None)
        self.activity.start(f"Loading {entry.name}…", cancellable=False)
        self.load_id = self.engine.submit(lambda rid: LoadModel(rid, entry.path, local))
        self.model_ready.emit(entry)

    def problem(self, message: str, kind: FailureKind = FailureKind.MODEL) -> None:
        self.failure = (kind, message)
        if self.state.where is not Where.HOSTED:
            self.model_bar.set_state("no model")
            self.status.showMessage(message)
        self.welcome.model_status.setText(message)
        self.activity.finish()

    @Slot()
    def on_choose_model(self) -> None:
        path = pick_model_file(self.model_bar.window(), self.state.settings.models_dir or str(Path.home()))
        if path is not None:
            self.use_model(path)

    @Slot(object)
    def use_model(self, path: object) -> None:
        assert isinstance(path, Path)
        self.state.set_model(path)
        self.use_local()
        self.probe_and_load(path)

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        if rid != self.load_id or not isinstance(info, BackendInfo):
            return
        self.info = info
        self.failure = None
        self.activity.finish()
        local = self.state.where is not Where.HOSTED
        if local:
            self.model_bar.set_info(info)
            self.status.showMessage(f"{info.name} is ready (context {info.context_window:,} tokens)", 5000)
        freeze_long_lived_objects()  # the model's libraries are loaded: keep them out of later GC passes
        if local:
            self.state.set_backend(info)
        self.model_loaded.emit(info)
        if local and self.state.corpus is not None:
            self.plan_requested.emit()

    def use_local(self) -> None:
        """Answer with the local model again (the hosted worker keeps its endpoint open)."""
        self.model_bar.set_where(WHERE_LOCAL)
        if self.state.where is Where.LOCAL:
            return
        if self.entry is not None:
            self.model_bar.set_entry(self.entry)
        if self.info is not None:
            self.model_bar.set_info(self.info)
        else:
            self.model_bar.set_state("no model" if self.failure else "loading…")
        self.state.set_where(Where.LOCAL, self.info)
        self.plan_requested.emit()
