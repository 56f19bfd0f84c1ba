"""The reliability ledger: every hostile input and injected fault is recorded and summed up.

Each test records what it tried through the ``ledger`` fixture. At the end of the run one
summary line gives the figures the project reports: hostile inputs tried, crashes of the app
process, hangs, errors that name the problem (counted only where a test checked the message,
out of those checked); faults injected and saved data lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class Ledger:
    hostile_tried: int = 0
    crashes: int = 0
    hangs: int = 0
    named: int = 0
    named_checked: int = 0
    faults_injected: int = 0
    data_lost: int = 0
    notes: list[str] = field(default_factory=list)

    def hostile(
        self, *, crashed: bool = False, hung: bool = False, named: bool | None = None, what: str = ""
    ) -> None:
        """Record one hostile input; ``named`` is None where no error message was checked."""
        self.hostile_tried += 1
        self.crashes += int(crashed)
        self.hangs += int(hung)
        if named is not None:
            self.named_checked += 1
            self.named += int(named)
        if what and (crashed or hung or named is False):
            self.notes.append(what)

    def fault(self, *, lost: bool = False, what: str = "") -> None:
        self.faults_injected += 1
        self.data_lost += int(lost)
        if lost and what:
            self.notes.append(what)

    def line(self) -> str:
        return (
            f"reliability: {self.hostile_tried} hostile inputs tried, {self.crashes} crashes, "
            f"{self.hangs} hangs, {self.named} of {self.named_checked} errors checked named the problem; "
            f"{self.faults_injected} faults injected, {self.data_lost} saved data lost"
        )


_LEDGER = Ledger()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    return _LEDGER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LEDGER.hostile_tried or _LEDGER.faults_injected:
        terminalreporter.write_line(_LEDGER.line())
        for note in _LEDGER.notes:
            terminalreporter.write_line(f"  reliability problem: {note}")
