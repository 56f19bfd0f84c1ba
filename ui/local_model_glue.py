"""Local model glue: check the GGUF header, load it on the engine worker, say what went wrong.

The header check and the first import of the model stack (numpy, llama.cpp) run on a pool
thread; loading runs on the engine worker. Why the local model cannot serve is kept
(``failure``), so that asking can offer the hosted model instead (``ui.hosted_glue``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from longdesk.app.paths import Paths
from longdesk.app.settings import Settings
from longdesk.app.workspace import context_for
from longdesk.engine.backends.base import BackendInfo, FailureKind
from longdesk.ui.application import freeze_long_lived_objects
from longdesk.ui.dialogs import pick_model_file
from longdesk.ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL
from longdesk.ui.workers.engine_worker import LoadModel

if TYPE_CHECKING:
    from longdesk.app.models import ModelEntry
    from longdesk.ui.main_window import MainWindow


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
    """The local model's life in the window: probe, load, choose another, switch back to it.

    Attributes:
        info: BackendInfo of the loaded local model, None until loaded.
        failure: (kind, message) when the local model cannot serve, else None.
        entry: the header facts of the model being used.
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.info: BackendInfo | None = None
        self.failure: tuple[FailureKind, str] | None = None
        self.entry: ModelEntry | None = None
        self.path: Path | None = None
        self.load_id = 0

    def probe_and_load(self, explicit: Path | None) -> None:
        w = self.w
        w.model_bar.set_state("checking…")
        self.failure = None
        w.runner.run_task(
            lambda: probe_model(w.paths, w.settings, explicit),
            self.on_model_probed,
            lambda msg: self.problem(f"The model could not be checked: {msg}"),
        )

    def on_model_probed(self, entry: ModelEntry) -> None:
        w = self.w
        self.entry = entry
        w.model_bar.set_entry(entry)
        if entry.error:
            self.problem(f"The model is unusable: {entry.error}")
            w.model_ready.emit(entry)
            return
        fit = entry.memory.describe() if entry.memory else ""
        w.welcome.model_status.setText(
            f"{entry.name} — {entry.architecture}, {entry.quantization}, {entry.size_bytes / 1e6:,.0f} MB, "
            f"context {entry.context_length:,} tokens. Memory: {fit}"
        )
        self.path = entry.path
        n_ctx = context_for(entry.context_length, w.settings.context_tokens)
        from longdesk.engine.backends.local import LocalSettings  # already imported by the probe

        local = LocalSettings(
            n_ctx=n_ctx,
            n_threads=w.settings.n_threads,
            n_gpu_layers=w.settings.n_gpu_layers,
            prompt_format=w.settings.prompt_format,
            # Read once, ask forever: readings are saved and restored across sessions.
            snapshot_dir=w.paths.snapshots,
            snapshot_budget_bytes=int(w.settings.snapshot_budget_gb * (1 << 30)),
        )
        self.info = None
        if w.where != WHERE_HOSTED:
            w.info = None
            w.model_bar.set_state("loading…")
        w.activity.start(f"Loading {entry.name}…", cancellable=False)
        self.load_id = w.engine.submit(lambda rid: LoadModel(rid, entry.path, local))
        w.model_ready.emit(entry)

    def problem(self, message: str, kind: FailureKind = FailureKind.MODEL) -> None:
        w = self.w
        self.failure = (kind, message)
        if w.where != WHERE_HOSTED:
            w.model_bar.set_state("no model")
            w.statusBar().showMessage(message)
        w.welcome.model_status.setText(message)
        w.activity.finish()

    @Slot()
    def on_choose_model(self) -> None:
        path = pick_model_file(self.w, self.w.settings.models_dir or str(Path.home()))
        if path is not None:
            self.use_model(path)

    @Slot(object)
    def use_model(self, path: object) -> None:
        assert isinstance(path, Path)
        self.w.session = dataclasses.replace(self.w.session, model=str(path))
        self.use_local()
        self.probe_and_load(path)

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        w = self.w
        if rid != self.load_id or not isinstance(info, BackendInfo):
            return
        self.info = info
        self.failure = None
        w.activity.finish()
        if w.where != WHERE_HOSTED:
            w.info = info
            w.model_bar.set_info(info)
            w.statusBar().showMessage(f"{info.name} is ready (context {info.context_window:,} tokens)", 5000)
        freeze_long_lived_objects()  # the model's libraries are loaded: keep them out of later GC passes
        w.model_loaded.emit(info)
        if w.corpus is not None and w.where != WHERE_HOSTED:
            w.request_plan()
        w.refresh_all()

    def use_local(self) -> None:
        """Answer with the local model again (the hosted worker keeps its endpoint open)."""
        w = self.w
        w.model_bar.set_where(WHERE_LOCAL)
        if w.where == WHERE_LOCAL:
            return
        w.where = WHERE_LOCAL
        w.info = self.info
        w.plan = None
        if self.entry is not None:
            w.model_bar.set_entry(self.entry)
        if self.info is not None:
            w.model_bar.set_info(self.info)
        else:
            w.model_bar.set_state("no model" if self.failure else "loading…")
        w.request_plan()
