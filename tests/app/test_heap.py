"""``app.heap.trim`` gives freed memory back to the system (glibc) and is harmless elsewhere."""

from __future__ import annotations

import sys
import threading

import psutil
import pytest

from longdesk.app import heap


def test_trim_says_whether_it_could() -> None:
    first = heap.trim()
    assert isinstance(first, bool)
    assert heap.trim() is first  # the function is looked up once
    if not sys.platform.startswith("linux"):
        assert first is False


@pytest.mark.skipif(not heap.trim(), reason="needs glibc's malloc_trim")
def test_memory_freed_on_a_worker_thread_goes_back_to_the_system() -> None:
    proc = psutil.Process()

    def churn() -> None:
        # 1 KiB strings come from the thread's malloc arena, not from Python's small-object pools;
        # one in a hundred stays alive, so the freed rest cannot be returned from the heap's top.
        held = [b"x" * 1000 + bytes([i % 256]) for i in range(100_000)]
        keep.extend(held[::100])
        del held

    keep: list[bytes] = []
    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = proc.memory_info().rss
    assert heap.trim()
    after = proc.memory_info().rss
    assert before - after > 40 * 2**20  # most of the ~100 MB freed
    assert len(keep) == 1000
