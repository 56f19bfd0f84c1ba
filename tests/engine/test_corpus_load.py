"""Reading text, Markdown and code files and folders into anchored documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.context.pack import pack
from engine.corpus.load import SourceError, load_sources
from engine.corpus.model import AnchorKind, DocumentKind, Problem


def _tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("".join(f"x{i} = {i}\n" for i in range(1, 26)))
    (root / "README.md").write_text("# Title\n\nSome prose.\n")
    (root / "notes.txt").write_text("line one\r\nline two\r\n")
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 10)
    (root / "empty.txt").write_text("")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("module.exports = 1;\n")
    return root


def test_folder_becomes_anchored_documents(tmp_path: Path) -> None:
    corpus = load_sources([_tree(tmp_path / "proj")])
    names = [d.name for d in corpus.documents]
    assert names == ["proj/README.md", "proj/notes.txt", "proj/src/app.py"]
    code = corpus.documents[2]
    assert code.kind is DocumentKind.CODE
    assert code.language == "python"
    assert [(s.anchor.start, s.anchor.end) for s in code.segments] == [(1, 10), (11, 20), (21, 25)]
    assert all(s.anchor.kind is AnchorKind.LINES for s in code.segments)
    assert corpus.documents[1].text == "line one\nline two\n"  # newlines normalised
    reasons = {Path(i.source).name: (i.problem, i.reason) for i in corpus.issues}
    assert reasons["blob.txt"] == (Problem.SKIPPED, "binary content")
    assert reasons["empty.txt"] == (Problem.SKIPPED, "empty")
    assert reasons["node_modules"][1].startswith("excluded by default")


def test_same_sources_pack_to_identical_bytes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj")
    a = pack(load_sources([root]), len, 100_000)
    b = pack(load_sources([root]), len, 100_000)
    assert a.system_text == b.system_text
    assert '<doc id="D3" name="proj/src/app.py" kind="code">\n<L1>\nx1 = 1\n' in a.corpus_text
    assert "<L11>\nx11 = 11\n" in a.corpus_text
    for span in a.spans:
        assert a.corpus_text[span.start : span.end].startswith(f'<doc id="{span.doc_id}"')


def test_missing_path_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        load_sources([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no readable documents"):
        load_sources([tmp_path / "empty"])


def test_budget_says_by_how_much_it_does_not_fit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("word " * 1000)
    plan = pack(load_sources([tmp_path / "a.txt"]), len, 2000, reserved_output=100)
    assert not plan.budget.fits
    assert plan.budget.over_by == plan.budget.used - 2000
    assert "does NOT fit" in plan.budget.describe()
