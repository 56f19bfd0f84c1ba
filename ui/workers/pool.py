"""Short jobs off the GUI thread (ingestion, page rendering, file writes) on a QThreadPool.

``run_task(fn, on_done, on_failed)`` runs ``fn`` on the pool and calls one of the callbacks
on the GUI thread with its result, or with its error as one line (errors are values) that
names its log entry; the traceback is logged, and a job with no ``on_failed`` is logged too,
never dropped. Jobs
that report progress get a ``JobContext`` whose ``report`` is throttled to about 10 signals
a second and whose ``cancelled`` is a thread-safe flag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from longdesk.app.logs import report

_log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.1


class JobCancelled(Exception):
    """Raised inside a job when its context was cancelled; reported as ``cancelled``."""


class JobContext:
    """Given to progress-reporting jobs: throttled progress out, cancel flag in."""

    def __init__(self, emit: Callable[[int, int, str], None]) -> None:
        self._emit = emit
        self._event = threading.Event()
        self._last = 0.0
        self.started = time.monotonic()

    def cancel(self) -> None:
        self._event.set()

    def cancelled(self) -> bool:
        return self._event.is_set()

    def report(self, done: int, total: int, what: str = "") -> None:
        """Progress from the job's thread; raises ``JobCancelled`` once cancelled."""
        if self._event.is_set():
            raise JobCancelled
        now = time.monotonic()
        if done < total and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        self._emit(done, total, what)


class _Signals(QObject):
    """Lives on the GUI thread, so signals emitted on a pool thread arrive there, queued.

    Signals:
        done(object): the job's result.
        failed(str): the job's error as one line ("cancelled" when it was cancelled).
        progressed(int, int, str): done, total, what is being worked on.
    """

    done = Signal(object)
    failed = Signal(str)
    progressed = Signal(int, int, str)

    def __init__(
        self,
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None] | None,
        on_progress: Callable[[int, int, str], None] | None,
        on_end: Callable[[_Signals], None],
        is_closed: Callable[[], bool],
    ) -> None:
        super().__init__()
        self._on_done_cb = on_done
        self._on_failed_cb = on_failed
        self._on_progress_cb = on_progress
        self._on_end = on_end
        self._is_closed = is_closed
        self.done.connect(self.on_self_done)
        self.failed.connect(self.on_self_failed)
        self.progressed.connect(self.on_self_progressed)

    @Slot(object)
    def on_self_done(self, result: object) -> None:
        self._on_end(self)
        if not self._is_closed():
            self._on_done_cb(result)

    @Slot(str)
    def on_self_failed(self, message: str) -> None:
        self._on_end(self)
        if self._on_failed_cb is None:
            if message != "cancelled":  # nobody shows it: the log keeps it (with its traceback)
                _log.warning("a background task without a failure handler failed: %s", message)
        elif not self._is_closed():
            self._on_failed_cb(message)

    @Slot(int, int, str)
    def on_self_progressed(self, done: int, total: int, what: str) -> None:
        if self._on_progress_cb is not None and not self._is_closed():
            self._on_progress_cb(done, total, what)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[JobContext], Any], signals: _Signals, context: JobContext) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.signals = signals
        self.context = context

    def run(self) -> None:
        try:
            result = self.fn(self.context)
        except JobCancelled:
            self.signals.failed.emit("cancelled")
        except Exception as exc:  # noqa: BLE001 - errors are values, never raised on a pool thread
            text = str(exc) or type(exc).__name__
            line = text.splitlines()[0] if text else type(exc).__name__
            failure_id = report(f"background task failed: {line}", exc, logger=_log)
            self.signals.failed.emit(f"{line} (log entry {failure_id})")
        else:
            self.signals.done.emit(result)


class TaskRunner(QObject):
    """Starts jobs on a pool and keeps their signal objects alive until they report back."""

    def __init__(self, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self._live: set[_Signals] = set()
        self.closed = False

    def run_job(
        self,
        fn: Callable[[JobContext], Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> JobContext:
        """Run ``fn(context)`` on the pool; callbacks run on the GUI thread."""
        signals = _Signals(on_done, on_failed, on_progress, self._live.discard, lambda: self.closed)
        self._live.add(signals)
        context = JobContext(signals.progressed.emit)
        self.pool.start(_Job(fn, signals, context))
        return context

    def run_task(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None] | None = None,
    ) -> JobContext:
        """Run ``fn()`` on the pool; ``on_done(result)`` or ``on_failed(message)`` on the GUI thread."""
        return self.run_job(lambda _ctx: fn(), on_done, on_failed)

    def pending(self) -> int:
        return len(self._live)

    def wait(self, msecs: int = 5000) -> bool:
        """Wait for running jobs (at shutdown)."""
        return bool(self.pool.waitForDone(msecs))

    def close(self, msecs: int = 5000) -> bool:
        """Wait for running jobs, then drop every result still to be delivered (window closed)."""
        done = self.wait(msecs)
        self.closed = True
        return done
