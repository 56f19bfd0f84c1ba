"""Folders: ignore files with git's semantics, default excludes, secrets, links, FIFOs, caps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from longdesk.engine.corpus.load import LoadOptions, load_sources
from longdesk.engine.corpus.model import Problem
from longdesk.engine.corpus.options import DEFAULT_EXCLUDES


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _reasons(corpus: object) -> dict[str, str]:
    return {i.source.rsplit("/proj/", 1)[-1]: i.reason for i in corpus.issues}  # type: ignore[attr-defined]


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "proj",
        {
            ".gitignore": "*.log\n!keep.log\nsecret_dir/\n/only_root.txt\n",
            "a.log": "x\n",
            "keep.log": "kept\n",
            "only_root.txt": "ignored at the root\n",
            "sub/only_root.txt": "kept below the root\n",
            "sub/.gitignore": "*.tmp\n!important.log\n",
            "sub/x.tmp": "x\n",
            "sub/important.log": "re-included below\n",
            "sub/other.log": "still ignored\n",
            "secret_dir/a.txt": "x\n",
            "docs/.ignore": "draft.md\n",
            "docs/draft.md": "x\n",
            "docs/final.md": "# Final\n",
            "node_modules/dep/index.js": "x\n",
            "build/out.txt": "x\n",
            "package-lock.json": "{}\n",
            "app.min.js": "x\n",
            "myenv/pyvenv.cfg": "home = /usr\n",
            "myenv/lib/site.py": "x\n",
            ".env": "API_KEY=abc\n",
            "certs/server.pem": "-----BEGIN PRIVATE KEY-----\n",
            "src/main.py": "print('hi')\n",
        },
    )


def test_ignore_files_at_every_level_with_git_semantics(proj: Path) -> None:
    corpus = load_sources([proj], options=LoadOptions(global_excludes=False))
    names = [d.name for d in corpus.documents]
    assert names == [
        "proj/.env",
        "proj/.gitignore",
        "proj/certs/server.pem",
        "proj/docs/.ignore",
        "proj/docs/final.md",
        "proj/keep.log",
        "proj/src/main.py",
        "proj/sub/.gitignore",
        "proj/sub/important.log",
        "proj/sub/only_root.txt",
    ]
    reasons = _reasons(corpus)
    assert reasons["a.log"] == "ignored by proj/.gitignore"
    assert reasons["only_root.txt"] == "ignored by proj/.gitignore"
    assert reasons["sub/x.tmp"] == "ignored by proj/sub/.gitignore"
    assert reasons["sub/other.log"] == "ignored by proj/.gitignore"
    assert reasons["secret_dir/"] == "ignored by proj/.gitignore"
    assert reasons["docs/draft.md"] == "ignored by proj/docs/.ignore"
    assert reasons["node_modules/"] == "excluded by default: installed dependencies (node_modules/)"
    assert reasons["build/"] == "excluded by default: build output (build/)"
    assert reasons["package-lock.json"] == "excluded by default: lock file (package-lock.json)"
    assert reasons["app.min.js"] == "excluded by default: minified bundle or source map (*.min.js)"
    assert reasons["myenv/"] == "excluded by default: virtual environment (pyvenv.cfg)"
    assert all(i.problem is Problem.SKIPPED for i in corpus.issues)


def test_secrets_are_flagged_or_left_out(proj: Path) -> None:
    corpus = load_sources([proj], options=LoadOptions(global_excludes=False))
    flagged = sorted(d.name for d in corpus.documents if "secret" in d.flags)
    assert flagged == ["proj/.env", "proj/certs/server.pem"]
    skipped = load_sources([proj], options=LoadOptions(global_excludes=False, skip_secrets=True))
    assert "proj/.env" not in [d.name for d in skipped.documents]
    assert _reasons(skipped)[".env"] == "looks like a secrets file (left out by option)"


def test_excludes_can_be_overridden(proj: Path) -> None:
    forced = load_sources(
        [proj], options=LoadOptions(force_include=("build/", "*.log"), global_excludes=False)
    )
    names = {d.name for d in forced.documents}
    assert {"proj/build/out.txt", "proj/a.log", "proj/sub/other.log"} <= names
    bare = load_sources(
        [proj], options=LoadOptions(default_excludes=(), respect_ignore_files=False, global_excludes=False)
    )
    assert "proj/node_modules/dep/index.js" in {d.name for d in bare.documents}
    assert len(DEFAULT_EXCLUDES) > 20
    assert all(e.reason for e in DEFAULT_EXCLUDES)


def test_links_fifos_binary_and_caps(tmp_path: Path) -> None:
    root = _write(
        tmp_path / "proj", {"a.txt": "alpha\n", "big.txt": "b" * 5000 + "\n", "sub/c.txt": "gamma\n"}
    )
    outside = _write(tmp_path / "outside", {"secret.txt": "outside\n"})
    (root / "out_link.txt").symlink_to(outside / "secret.txt")
    (root / "in_link.txt").symlink_to(root / "a.txt")
    (root / "loop").symlink_to(root)
    (root / "dangling").symlink_to(root / "nope")
    os.mkfifo(root / "pipe")
    (root / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" * 50)
    corpus = load_sources([root], options=LoadOptions(max_file_bytes=4096, global_excludes=False))
    assert [d.name for d in corpus.documents] == ["proj/a.txt", "proj/in_link.txt", "proj/sub/c.txt"]
    assert corpus.documents[1].text == "alpha\n"
    reasons = _reasons(corpus)
    assert reasons["out_link.txt"] == "symbolic link out of the folder (not followed)"
    assert reasons["loop"] == "symbolic link to a folder (not followed)"
    assert reasons["dangling"] == "broken symbolic link"
    assert reasons["pipe"] == "not a regular file (FIFO, socket or device)"
    assert reasons["image.bin"] == "binary content"
    assert reasons["big.txt"].startswith("larger than the per-file cap (5,001 > 4,096 bytes)")
    capped = load_sources([root], options=LoadOptions(max_files=1, global_excludes=False))
    assert len(capped.documents) == 1
    assert _reasons(capped)["sub/c.txt"] == "not read: the file count cap was reached"


def test_undecodable_file_names_are_shown_and_packed_as_text(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "caf\u00e9.txt").write_text("utf-8 name\n")
    with open(os.fsencode(root) + b"/bad\xff.txt", "w") as fh:  # noqa: PTH123 - a bytes name
        fh.write("latin-1 byte in the name\n")
    corpus = load_sources([root], options=LoadOptions(global_excludes=False))
    assert sorted(d.name for d in corpus.documents) == ["proj/bad\ufffd.txt", "proj/caf\u00e9.txt"]
    from longdesk.engine.context.pack import pack

    plan = pack(corpus, len, 10**6)
    plan.corpus_text.encode("utf-8")  # no lone surrogates reach a tokenizer
    with open(os.fsencode(root) + b"/blob\xfe.bin", "wb") as fh:  # noqa: PTH123 - a bytes name
        fh.write(b"\x00\x01")
    (issue,) = load_sources([root], options=LoadOptions(global_excludes=False)).issues
    assert issue.source.endswith("/blob\ufffd.bin")  # listed as printable text
