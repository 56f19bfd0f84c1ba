"""The child-process runner: limits hold, failures are typed values, the parent survives."""

from __future__ import annotations

import signal

import pytest

from longdesk.engine.isolation import (
    Cancelled,
    Crashed,
    Failed,
    Limits,
    MemoryLimit,
    Timeout,
    Worker,
    run_isolated,
)
from tests.engine import isolation_targets as targets


def test_value_comes_back_and_the_worker_is_reused() -> None:
    with Worker(Limits(wall_s=20)) as worker:
        assert worker.call(targets.echo, {"a": [1, 2.5, "x", b"y", (3,)]}) == {"a": [1, 2.5, "x", b"y", (3,)]}
        first = worker.call(targets.pid)
        assert worker.call(targets.pid) == first
        assert worker.starts == 1


def test_a_function_that_never_returns_is_stopped_at_the_wall_clock_limit() -> None:
    with Worker(Limits(wall_s=20)) as worker:
        first = worker.call(targets.pid)  # started: the limit below concerns the call alone
        with pytest.raises(Timeout, match=r"longer than 0\.5 s"):
            worker.call(targets.sleep_forever, limits=Limits(wall_s=0.5))
        assert not _alive(first)  # the stuck child was killed, not left behind
        assert worker.call(targets.echo, 7) == 7  # a fresh child takes over
        assert worker.starts == 2


def test_too_much_memory_is_a_memory_limit_error() -> None:
    with Worker(Limits(wall_s=20, memory_bytes=256 << 20)) as worker:
        assert worker.call(targets.allocate, 64 << 20) == 64 << 20
        with pytest.raises(MemoryLimit, match="out of memory"):
            worker.call(targets.allocate, 2 << 30)
        assert worker.call(targets.allocate, 1 << 20) == 1 << 20


def test_a_segfault_is_a_crash_and_the_parent_survives() -> None:
    with Worker(Limits(wall_s=20)) as worker:
        with pytest.raises(Crashed) as info:
            worker.call(targets.segfault)
        assert info.value.signal_number == signal.SIGSEGV
        assert "SIGSEGV" in info.value.message
        with pytest.raises(Crashed) as exited:
            worker.call(targets.exit_now, 3)
        assert exited.value.exit_code == 3
        assert worker.call(targets.echo, "alive") == "alive"


def test_exceptions_and_refused_answers_are_failures() -> None:
    with pytest.raises(Failed, match="bad input") as info:
        run_isolated(targets.fail, "bad input", limits=Limits(wall_s=20))
    assert info.value.error_type == "ValueError"
    with pytest.raises(Failed, match="refused type"):
        run_isolated(targets.opaque, limits=Limits(wall_s=20))
    with Worker(Limits(wall_s=20), allowed_types=[targets.Opaque]) as worker:
        assert isinstance(worker.call(targets.opaque), targets.Opaque)


def test_progress_is_relayed_and_cancel_stops_the_call_at_once() -> None:
    seen: list[object] = []
    with Worker(Limits(wall_s=20)) as worker:
        assert worker.call(targets.count_slowly, 3, on_progress=seen.append) == 3
        assert seen == [1, 2, 3]
        seen.clear()
        child = worker.call(targets.pid)

        def cancelled() -> bool:
            return len(seen) >= 5  # the user cancels after the fifth step

        with pytest.raises(Cancelled):
            worker.call(targets.count_slowly, 1000, on_progress=seen.append, cancelled=cancelled)
        assert seen[:5] == [1, 2, 3, 4, 5]
        assert len(seen) <= 6  # stopped within one step of the cancel (a step is 50 ms)
        assert not _alive(child)


def test_local_functions_are_refused() -> None:
    def local() -> None:
        return None

    with Worker() as worker, pytest.raises(ValueError, match="module-level"):
        worker.call(local)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting to be reaped does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
