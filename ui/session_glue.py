"""Session persistence glue: autosave, the sessions list, open, new, rename, delete, export.

Every read and write runs on a pool (saves on a one-thread pool, so saves of one session
never overtake each other); the GUI thread only applies the results. A reopened session shows
its stored document list and conversation at once and re-reads its sources in the background.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMenu, QStatusBar

from longdesk.app.sessions import Listing, Session, SessionStore, export_markdown
from longdesk.app.workbench import Workbench
from longdesk.engine.atomic import atomic_write_text
from longdesk.ui.ask_flow import AskFlow
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.sessions_panel import SessionsPanel
from longdesk.ui.sources_glue import SourcesGlue
from longdesk.ui.widgets.source_viewer import SourceViewer
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.pool import TaskRunner


class SessionGlue(QObject):
    """Keeps the workbench's session on disk and the sessions panel in step with the store.

    Signals:
        saved(object): the Session as written.
        listed(object): the Listing shown in the sessions panel.
    """

    saved = Signal(object)
    listed = Signal(object)

    def __init__(
        self,
        state: Workbench,
        store: SessionStore,
        runner: TaskRunner,
        save_runner: TaskRunner,
        window_state: QSettings,
        asking: AskFlow,
        sources_glue: SourcesGlue,
        local: LocalModelGlue,
        panel: SessionsPanel,
        recent_menu: QMenu,
        sources: SourcesPanel,
        viewer: SourceViewer,
        status: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.store = store
        self.runner = runner
        self.save_runner = save_runner
        self.window_state = window_state
        self.asking = asking
        self.sources_glue = sources_glue
        self.local = local
        self.panel = panel
        self.recent_menu = recent_menu
        self.sources = sources
        self.viewer = viewer
        self.status = status
        self._problems: list[str] = []
        panel.open_requested.connect(self.open_session)
        panel.rename_requested.connect(self.rename_session)
        panel.delete_requested.connect(self.delete_session)

    def _say(self, message: str, ms: int) -> None:
        self.status.showMessage(message, ms)

    @Slot()
    def autosave(self) -> None:
        """Write the session off the GUI thread (one writer, in order)."""
        snapshot = self.state.session
        if not snapshot.sources and not snapshot.turns:
            return
        self.window_state.setValue("last_session", snapshot.session_id)
        store = self.store
        self.save_runner.run_task(
            lambda: store.save(snapshot),
            self._on_saved,
            lambda msg: self._say(f"The session was not saved: {msg}", 15_000),
        )

    def _on_saved(self, saved: object) -> None:
        self.saved.emit(saved)
        self.refresh_sessions()

    @Slot()
    def refresh_sessions(self) -> None:
        self.runner.run_task(self.store.list, self._on_listed)

    def _on_listed(self, listing: object) -> None:
        assert isinstance(listing, Listing)
        self.panel.current_id = self.state.session.session_id
        # Damaged files are reported once by the store (then kept aside); keep the notes visible.
        self._problems.extend(p for p in listing.problems if p not in self._problems)
        self.panel.set_sessions(listing.sessions, self._problems)
        self.recent_menu.clear()
        for s in listing.sessions[:8]:
            act = self.recent_menu.addAction(s.title)
            act.triggered.connect(lambda _c=False, sid=s.session_id: self.open_session(sid))
        self.listed.emit(listing)

    @Slot(str)
    def open_session(self, session_id: str) -> None:
        if self.state.streaming:
            self._say("Stop the answer before switching sessions.", 5000)
            return
        store = self.store
        self.runner.run_task(lambda: store.load(session_id), self._on_session_loaded, self._on_open_failed)

    def _on_open_failed(self, message: str) -> None:
        self._say(f"Could not open the session: {message}", 15_000)
        self.refresh_sessions()

    def _on_session_loaded(self, session: object) -> None:
        assert isinstance(session, Session)
        state = self.state
        same_sources = state.corpus is not None and session.sources == state.session.sources
        state.open_session(session, keep_corpus=same_sources)
        self.window_state.setValue("last_session", session.session_id)
        self.viewer.setVisible(False)
        self.local.use_local()
        if same_sources:
            self.sources_glue.request_plan()
        else:
            # Lazy reopen: the stored list shows at once; the sources are read again in the background.
            self.sources.set_documents(session.documents, [], session.sources)
            if session.sources:
                self.sources_glue.ingest_sources()
        self._say(f"Opened “{session.title}”", 5000)
        self.refresh_sessions()

    @Slot()
    def new_session(self) -> None:
        if self.state.streaming:
            self.asking.stop()
        self.state.new_session()
        self.sources.set_documents([], [], [])
        self.viewer.setVisible(False)

    @Slot()
    def new_thread(self) -> None:
        """A new conversation on the same sources: the corpus stays read."""
        if self.state.streaming:
            return
        self.state.new_thread()

    @Slot(str, str)
    def rename_session(self, session_id: str, title: str) -> None:
        self.state.rename(session_id, title)
        store = self.store
        self.save_runner.run_task(
            lambda: store.rename(session_id, title),
            lambda _s: self.refresh_sessions(),
            lambda msg: self._say(f"Could not rename: {msg}", 10_000),
        )

    @Slot(str)
    def delete_session(self, session_id: str) -> None:
        if session_id == self.state.session.session_id:
            self.new_session()
        store = self.store
        self.save_runner.run_task(
            lambda: store.delete(session_id),
            lambda _r: self.refresh_sessions(),
            lambda msg: self._say(f"Could not delete: {msg}", 10_000),
        )

    @Slot()
    def on_export(self) -> None:
        session = self.state.session
        if not session.turns:
            self._say("Nothing to export yet.", 4000)
            return
        name, _ = QFileDialog.getSaveFileName(
            self.panel.window(),
            "Export conversation",
            str(Path.home() / f"{session.title[:40]}.md"),
            "Markdown (*.md)",
        )
        if name:
            self.export_to(Path(name))

    def export_to(self, path: Path) -> None:
        text = export_markdown(self.state.session)
        self.save_runner.run_task(
            lambda: atomic_write_text(path, text),
            lambda _r: self._say(f"Exported to {path}", 8000),
            lambda msg: self._say(f"Export failed: {msg}", 10_000),
        )
