"""`longdesk ask` with the embedded default model answers a one-line corpus and locates it.

The regression of the issue: on a fresh set-up the base model, wrapped in chat turns, printed
the instructions and the corpus back for minutes. Now it reads in the reading format, answers
on one line and the CLI prints where the answer is in the source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.app.test_cli import longdesk

pytestmark = pytest.mark.model

LIGHTHOUSE = "The lighthouse keeper on Skerry Island is named Tobias Venn.\n"


def test_ask_on_a_one_line_corpus_names_the_keeper_and_locates_it(
    longdesk_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keeper.txt").write_text(LIGHTHOUSE)
    # The time limit: a runaway answer (minutes) fails here; a healthy one takes seconds.
    r = longdesk("ask", str(folder), "-q", "Who keeps the lighthouse?", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Tobias Venn" in r.stdout
    assert "You answer questions" not in r.stdout + r.stderr
    assert "<doc" not in r.stdout
    located = [line for line in r.stderr.splitlines() if "located " in line and "line 1]" in line]
    assert located, r.stderr
    assert re.search(r"\[D\w+, line 1\]\s+D\w+ notes/keeper\.txt line 1: not cited by the model", located[0])
    assert "verified" not in located[0]
    assert "1 located in the source" in r.stderr
    tokens = re.search(r"longdesk: (\d+) tokens in .* stop: (\w+)", r.stderr)
    assert tokens is not None, r.stderr
    assert int(tokens[1]) <= 64  # the reading format's answer cap
    assert tokens[2] == "stop"
