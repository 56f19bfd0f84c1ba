"""The child-process runner: limits hold, failures are typed values, the parent survives."""

from __future__ import annotations

import signal

import pytest

from longdesk.engine.isolation import (
    Cancelled,
    Crashed,
    Limits,
    MemoryLimit,
    Raised,
    Sandbox,
    Timeout,
    run_isolated,
)
from tests.engine import isolation_targets as targets


def test_value_comes_back_and_the_sandbox_is_reused() -> None:
    with Sandbox(Limits(wall_s=20)) as sandbox:
        value = {"a": [1, 2.5, "x", b"y", (3,)]}
        assert sandbox.call(targets.echo, value) == value
        first = sandbox.call(targets.pid)
        assert sandbox.call(targets.pid) == first
        assert sandbox.starts == 1


def test_a_function_that_never_returns_is_stopped_at_the_wall_clock_limit() -> None:
    with Sandbox(Limits(wall_s=20)) as sandbox:
        first = sandbox.call(targets.pid)  # started: the limit below concerns the call alone
        with pytest.raises(Timeout, match=r"longer than 0\.5 s"):
            sandbox.call(targets.sleep_forever, limits=Limits(wall_s=0.5))
        assert not _alive(first)  # the stuck child was killed, not left behind
        assert sandbox.call(targets.echo, 7) == 7  # a fresh child takes over
        assert sandbox.starts == 2


def test_too_much_memory_is_a_memory_limit_error() -> None:
    with Sandbox(Limits(wall_s=20, memory_bytes=256 << 20)) as sandbox:
        assert sandbox.call(targets.allocate, 64 << 20) == 64 << 20
        with pytest.raises(MemoryLimit, match="out of memory"):
            sandbox.call(targets.allocate, 2 << 30)
        assert sandbox.call(targets.allocate, 1 << 20) == 1 << 20


def test_a_segfault_is_a_crash_and_the_parent_survives() -> None:
    with Sandbox(Limits(wall_s=20)) as sandbox:
        with pytest.raises(Crashed) as info:
            sandbox.call(targets.segfault)
        assert info.value.signal_number == signal.SIGSEGV
        assert "SIGSEGV" in info.value.message
        with pytest.raises(Crashed) as exited:
            sandbox.call(targets.exit_now, 3)
        assert exited.value.exit_code == 3
        assert sandbox.call(targets.echo, "alive") == "alive"


def test_exceptions_and_refused_answers_are_failures() -> None:
    with pytest.raises(Raised, match="bad input") as info:
        run_isolated(targets.fail, "bad input", limits=Limits(wall_s=20))
    assert info.value.error_type == "ValueError"
    with pytest.raises(Raised, match="refused type"):
        run_isolated(targets.opaque, limits=Limits(wall_s=20))
    with Sandbox(Limits(wall_s=20), allowed_types=[targets.Opaque]) as sandbox:
        assert isinstance(sandbox.call(targets.opaque), targets.Opaque)


def test_progress_is_relayed_and_cancel_stops_the_call_at_once() -> None:
    seen: list[object] = []
    with Sandbox(Limits(wall_s=20)) as sandbox:
        assert sandbox.call(targets.count_slowly, 3, on_progress=seen.append) == 3
        assert seen == [1, 2, 3]
        seen.clear()
        child = sandbox.call(targets.pid)

        def cancelled() -> bool:
            return len(seen) >= 5  # the user cancels after the fifth step

        with pytest.raises(Cancelled):
            sandbox.call(targets.count_slowly, 1000, on_progress=seen.append, cancelled=cancelled)
        assert seen[:5] == [1, 2, 3, 4, 5]
        assert len(seen) <= 6  # stopped within one step of the cancel (a step is 50 ms)
        assert not _alive(child)


def test_local_functions_are_refused() -> None:
    def local() -> None:
        return None

    with Sandbox() as sandbox, pytest.raises(ValueError, match="module-level"):
        sandbox.call(local)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting to be reaped does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
