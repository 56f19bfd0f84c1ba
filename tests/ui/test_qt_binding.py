"""The Qt binding keeps Python's reference counts straight (PySide6 6.12.0 did not).

PySide6 6.12.0 on Python 3.11 dropped a reference to ``None`` on every call of a void method;
the process aborted with "none_dealloc" after a few thousand calls. pyproject.toml excludes
that release; this test catches a binding with the same fault.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, QTimer

pytestmark = pytest.mark.gui


def test_void_calls_keep_none_alive() -> None:
    obj = QObject()
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(20_000):
        obj.setObjectName("x")
        timer.stop()
    # Python 3.12+ makes None immortal (constant count); before that the count must not fall.
    assert sys.getrefcount(None) >= before - 100
