"""The headless path end to end: `longdesk ask / inspect / models` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ggufs import write_gguf

ROOT = Path(__file__).resolve().parents[2]


def longdesk(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the installed console entry point the way a user does."""
    exe = Path(sys.executable).with_name("longdesk")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "longdesk.ui.main", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), cwd=ROOT, check=False
    )


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.txt").write_text(
        "The garden has three apple trees and one pear tree.\nThe gate is painted green.\n"
    )
    (folder / "kitchen.md").write_text("# Kitchen\n\nThe kettle is blue. The oven is broken.\n")
    (folder / "tool.py").write_text("def add(a, b):\n    return a + b\n")
    return folder


@pytest.mark.model
def test_inspect_counts_match_llama_tokenize_of_the_packed_text(
    longdesk_home: Path, notes: Path, default_model: Path
) -> None:
    from llama_cpp import Llama

    from longdesk.engine.context.pack import document_block, pack
    from longdesk.engine.corpus.load import load_sources
    from longdesk.engine.models.prompt_encoder import reading_header

    r = longdesk("inspect", str(notes))
    assert r.returncode == 0, r.stderr
    assert "3 document(s)" in r.stdout
    llm = Llama(model_path=str(default_model), vocab_only=True, verbose=False)
    try:

        def count(text: str) -> int:
            return len(llm.tokenize(text.encode(), add_bos=False, special=False))

        corpus = load_sources([notes])
        plan = pack(corpus, count, 32768, instructions=reading_header())  # a base model's header
        for doc in corpus.documents:
            line = next(x for x in r.stdout.splitlines() if doc.name in x)
            assert line.split()[-1] == f"{count(document_block(doc)):,}"
        total = count(plan.system_text)
    finally:
        llm.close()
    assert f"Total: {total:,} tokens" in r.stdout
    assert "fits" in r.stdout


@pytest.mark.model
def test_ask_answers_from_a_folder_with_the_default_model(longdesk_home: Path, notes: Path) -> None:
    r = longdesk("ask", str(notes), "-q", "What colour is the kettle?", "--max-tokens", "40")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no answer was streamed"
    assert "prefill:" in r.stderr
    assert "tok/s" in r.stderr
    assert "read " in r.stderr


def test_missing_path_is_a_one_line_error(longdesk_home: Path, tmp_path: Path) -> None:
    r = longdesk("ask", str(tmp_path / "missing"), "-q", "hi")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"longdesk: error: no such file or folder: {tmp_path / 'missing'}"
    ]


def test_empty_folder_is_bad_input(longdesk_home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = longdesk("inspect", str(tmp_path / "empty"))
    assert r.returncode == 2
    assert "no readable documents" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_non_gguf_model_is_refused(longdesk_home: Path, notes: Path, tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("definitely not weights\n" * 50)
    r = longdesk("ask", str(notes), "-q", "hi", "--model", str(fake))
    assert r.returncode == 2
    assert "not a GGUF model file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_architecture_is_refused(longdesk_home: Path, notes: Path, tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "odd.gguf", "notanarch")
    r = longdesk("ask", str(notes), "-q", "hi", "--model", str(model))
    assert r.returncode == 2
    assert "unknown model architecture 'notanarch'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_model_file(longdesk_home: Path, notes: Path, tmp_path: Path) -> None:
    r = longdesk("inspect", str(notes), "--model", str(tmp_path / "nothere.gguf"))
    assert r.returncode == 2
    assert "no such model file" in r.stderr


@pytest.mark.model
def test_models_lists_default_and_explicit_files(longdesk_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 40)
    r = longdesk("models", "--model", str(bad))
    assert "gemma-3-270m-q4_k_m.gguf  [default]" in r.stdout
    assert "gemma3, Q" in r.stdout
    assert "context 32,768 tokens" in r.stdout
    assert "fits" in r.stdout
    assert "\nops: " in r.stdout  # which DeepSeek-V4 ops the installed llama.cpp carries
    assert f"{bad}  [--model]" in r.stdout
    assert "error:" in r.stdout
    assert r.returncode == 2


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from longdesk.ui.main import main; import longdesk.app.cli.commands; "
        "heavy = {'PySide6', 'llama_cpp', 'pymupdf', 'fitz', 'openai'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]"
