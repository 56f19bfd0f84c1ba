"""Functions that the isolation tests run in a child process (importable by module name)."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable


def echo(value: object) -> object:
    return value


def pid() -> int:
    return os.getpid()


def sleep_forever() -> None:
    while True:
        time.sleep(1)


def allocate(n_bytes: int) -> int:
    block = bytearray(n_bytes)
    return len(block)


def segfault() -> None:
    ctypes.string_at(0)


def fail(message: str) -> None:
    raise ValueError(message)


def exit_now(code: int) -> None:
    os._exit(code)


def count_slowly(n: int, report: Callable[[object], None]) -> int:
    for i in range(n):
        report(i + 1)
        time.sleep(0.05)
    return n


class Opaque:
    """A type the parent did not allow in answers."""


def opaque() -> Opaque:
    return Opaque()
