"""`longdesk inspect` on a mixed folder: every document with exact tokens, every left-out file with why."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

from longdesk.app.cli.commands import main
from longdesk.engine.context.pack import document_block
from longdesk.engine.corpus.load import load_sources
from tests.engine.corpus_files import (
    make_encrypted_pdf,
    make_epub,
    make_mobi,
    make_pdf,
    make_scanned_pdf,
    make_xps,
)


def _mixed(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("".join(f"def f{i}():\n    return {i}\n" for i in range(30)))
    (root / "src" / "debug.log").write_text("noise\n")
    (root / ".gitignore").write_text("*.log\n")
    make_pdf(root / "report.pdf", ["Quarterly figures rose.", "Costs fell."], [(1, "Summary", 1)])
    make_epub(root / "novel.epub", "Novel", [("Dawn", "The sun rose."), ("Dusk", "The sun set.")])
    with zipfile.ZipFile(root / "extras.zip", "w") as zf:
        zf.writestr("notes/todo.md", "# Todo\n\n- read\n")
        zf.writestr("../../evil.sh", "rm -rf /\n")
    make_xps(root / "memo.xps", [["Harbour report."], ["Tides and winds."]])
    make_mobi(root / "tale.mobi", "Tale", [("The Sea", "Waves roll."), ("The Land", "Hills rise.")])
    whole = make_mobi(root / "cut.mobi", "Cut", [("A", "Alpha " * 800), ("B", "Beta " * 800)]).read_bytes()
    (root / "cut.mobi").write_bytes(whole[: len(whole) // 2])
    make_encrypted_pdf(root / "locked.pdf")
    make_scanned_pdf(root / "scan.pdf")
    (root / "broken.epub").write_bytes(b"PK\x03\x04" + os.urandom(64))
    (root / "blob.dat").write_bytes(b"\x00\x01" * 100)
    (root / "link").symlink_to("/etc/hostname")
    os.mkfifo(root / "fifo")
    return root


@pytest.mark.model
def test_inspect_lists_documents_with_exact_tokens_and_every_left_out_file(
    tmp_path: Path, longdesk_home: Path, default_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from longdesk.engine.backends.local import Tokenizer

    root = _mixed(tmp_path / "mixed")
    assert main(["inspect", str(root), "--show-packed"]) == 0
    first = capsys.readouterr().out
    corpus = load_sources([root])
    names = {d.name for d in corpus.documents}
    assert names == {
        "mixed/.gitignore",
        "mixed/extras.zip!notes/todo.md",
        "mixed/memo.xps",
        "mixed/tale.mobi",
        "mixed/novel.epub",
        "mixed/report.pdf",
        "mixed/src/app.py",
    }
    tokenizer = Tokenizer(default_model)
    try:
        for doc in corpus.documents:
            exact = tokenizer.count(document_block(doc))
            row = re.search(rf"^  {doc.doc_id} +{re.escape(doc.name)} +\S+ +.+? +([\d,]+)$", first, re.M)
            assert row is not None, doc.name
            assert int(row.group(1).replace(",", "")) == exact
        packed = first[first.index("Read the documents below") :]  # a base model: the reading format
        total = int(re.search(r"^Total: ([\d,]+) tokens", first, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
        assert total == tokenizer.count(packed)
    finally:
        tokenizer.close()
    left_out = {
        "debug.log": "skipped  {}: ignored by mixed/.gitignore",
        "evil.sh": "skipped  {}: path leaves the archive (..)",
        "locked.pdf": "failed   {}: password required",
        "scan.pdf": "failed   {}: no text layer (scanned?)",
        "cut.mobi": "failed   {}: damaged: the file is cut short (1 of 4 MOBI records missing)",
        "blob.dat": "skipped  {}: binary content",
        "link": "skipped  {}: symbolic link out of the folder (not followed)",
        "fifo": "skipped  {}: not a regular file (FIFO, socket or device)",
    }
    for issue in corpus.issues:
        key = Path(issue.source.split("!")[-1]).name
        if key in left_out:
            assert left_out[key].format(issue.source) in first
    assert f"failed   {root / 'broken.epub'}: corrupt" in first
    assert "cut.mobi" in {Path(i.source).name for i in corpus.issues}
    assert "<c2>\nThe Land\nHills rise.\n" in packed  # the MOBI's second section
    assert "<p2>\nTides and winds.\n" in packed  # the XPS's second page
    assert f"Left out: {len(corpus.issues)} file(s)" in first
    # The same sources give byte-identical packed text (and listing) on a second run.
    assert main(["inspect", str(root), "--show-packed"]) == 0
    assert capsys.readouterr().out == first
