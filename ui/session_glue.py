"""Session persistence glue: autosave, the sessions list, open, new, rename, delete, export.

Every read and write runs on a pool (saves on a one-thread pool, so saves of one session
never overtake each other); the GUI thread only applies the results. A reopened session shows
its stored document list and conversation at once and re-reads its sources in the background.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog

from longdesk.app.atomic import atomic_write_text
from longdesk.app.sessions import Listing, Session, export_markdown

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow


class SessionGlue(QObject):
    """Keeps the window's session on disk and the sessions panel in step with the store."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self._problems: list[str] = []

    def _say(self, message: str, ms: int) -> None:
        self.w.statusBar().showMessage(message, ms)

    def autosave(self) -> None:
        """Write the session off the GUI thread (one writer, in order)."""
        w = self.w
        if not w.session.sources and not w.session.turns:
            return
        snapshot = w.session
        w.state.setValue("last_session", snapshot.session_id)
        w.save_runner.run_task(
            lambda: w.store.save(snapshot),
            self._on_saved,
            lambda msg: self._say(f"The session was not saved: {msg}", 15_000),
        )

    def _on_saved(self, saved: object) -> None:
        self.w.session_saved.emit(saved)
        self.refresh_sessions()

    def refresh_sessions(self) -> None:
        self.w.runner.run_task(self.w.store.list, self._on_listed)

    def _on_listed(self, listing: object) -> None:
        assert isinstance(listing, Listing)
        w = self.w
        w.sessions_panel.current_id = w.session.session_id
        # Damaged files are reported once by the store (then kept aside); keep the notes visible.
        self._problems.extend(p for p in listing.problems if p not in self._problems)
        w.sessions_panel.set_sessions(listing.sessions, self._problems)
        w.recent_menu.clear()
        for s in listing.sessions[:8]:
            act = w.recent_menu.addAction(s.title)
            act.triggered.connect(lambda _c=False, sid=s.session_id: self.open_session(sid))
        w.sessions_listed.emit(listing)

    @Slot(str)
    def open_session(self, session_id: str) -> None:
        w = self.w
        if w.streaming:
            self._say("Stop the answer before switching sessions.", 5000)
            return
        w.runner.run_task(lambda: w.store.load(session_id), self._on_session_loaded, self._on_open_failed)

    def _on_open_failed(self, message: str) -> None:
        self._say(f"Could not open the session: {message}", 15_000)
        self.refresh_sessions()

    def _on_session_loaded(self, session: object) -> None:
        assert isinstance(session, Session)
        w = self.w
        same_sources = w.corpus is not None and session.sources == w.session.sources
        w.session = session
        w.state.setValue("last_session", session.session_id)
        w.conversation.set_turns(session.turns)
        w.viewer.setVisible(False)
        w.use_local()
        if same_sources:
            w.request_plan()
        else:
            # Lazy reopen: the stored list shows at once; the sources are read again in the background.
            w.forget_corpus()
            w.sources.set_documents(session.documents, [], session.sources)
            if session.sources:
                w.ingest_sources()
        self._say(f"Opened “{session.title}”", 5000)
        self.refresh_sessions()
        w.refresh_all()

    @Slot()
    def new_session(self) -> None:
        w = self.w
        if w.streaming:
            w.stop()
        w.session = Session.new()
        w.forget_corpus()
        w.conversation.set_turns([])
        w.sources.set_documents([], [], [])
        w.viewer.setVisible(False)
        w.refresh_all()

    @Slot()
    def new_thread(self) -> None:
        """A new conversation on the same sources: the corpus stays read."""
        w = self.w
        if w.streaming:
            return
        fresh = Session.new(sources=w.session.sources)
        w.session = dataclasses.replace(
            fresh, excluded=w.session.excluded, documents=w.session.documents, model=w.session.model
        )
        w.conversation.set_turns([])
        w.refresh_all()

    @Slot(str, str)
    def rename_session(self, session_id: str, title: str) -> None:
        w = self.w
        if session_id == w.session.session_id:
            w.session = dataclasses.replace(w.session, title=" ".join(title.split()) or w.session.title)
        w.save_runner.run_task(
            lambda: w.store.rename(session_id, title),
            lambda _s: self.refresh_sessions(),
            lambda msg: self._say(f"Could not rename: {msg}", 10_000),
        )

    @Slot(str)
    def delete_session(self, session_id: str) -> None:
        w = self.w
        if session_id == w.session.session_id:
            self.new_session()
        w.save_runner.run_task(
            lambda: w.store.delete(session_id),
            lambda _r: self.refresh_sessions(),
            lambda msg: self._say(f"Could not delete: {msg}", 10_000),
        )

    @Slot()
    def on_export(self) -> None:
        w = self.w
        if not w.session.turns:
            self._say("Nothing to export yet.", 4000)
            return
        name, _ = QFileDialog.getSaveFileName(
            w, "Export conversation", str(Path.home() / f"{w.session.title[:40]}.md"), "Markdown (*.md)"
        )
        if name:
            self.export_to(Path(name))

    def export_to(self, path: Path) -> None:
        text = export_markdown(self.w.session)
        self.w.save_runner.run_task(
            lambda: atomic_write_text(path, text),
            lambda _r: self._say(f"Exported to {path}", 8000),
            lambda msg: self._say(f"Export failed: {msg}", 10_000),
        )
