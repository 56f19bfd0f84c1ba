"""`longdesk ask` shows the answer's citations after it, verified and unverified apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.test_cli import longdesk


@pytest.mark.model
def test_ask_prints_the_citation_summary(longdesk_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.txt").write_text("The garden has three apple trees.\nThe gate is painted green.\n")
    r = longdesk("ask", str(folder), "-q", "What colour is the gate? Cite the line.", "--max-tokens", "32")
    assert r.returncode == 0, r.stderr
    summary = [line for line in r.stderr.splitlines() if line.startswith("longdesk: citations: ")]
    assert len(summary) == 1, r.stderr
    marks = [line for line in r.stderr.splitlines() if line.startswith(("  \u2713 ", "  \u2717 "))]
    located = [line for line in r.stderr.splitlines() if line.startswith("  \u2192 located ")]
    found = summary[0].removeprefix("longdesk: citations: ")
    assert found.startswith("no citations") or found.startswith(f"{len(marks)} citation")
    # The base model does not cite; Longdesk shows where the answer's words are, never "verified".
    assert (f"{len(located)} located" in found) if located else "located" not in found
    assert all("verified" not in line for line in located)
